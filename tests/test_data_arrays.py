"""`from_arrays` and the argument checks of the dataset registry."""

import numpy as np
import pytest

from tf_avae import data


def _images(n=10, shape=(4, 4, 3), seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def test_from_arrays_yields_the_arrays_in_order():
    images = _images(10)
    labels = {"a": np.arange(10), "b": np.arange(10, dtype=np.uint8) % 3}
    batches = list(data.from_arrays(images, labels, batch_size=4, shuffle=False).as_numpy_iterator())
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), images)
    for task in labels:
        got = np.concatenate([y[task] for _, y in batches])
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, labels[task])


def test_from_arrays_shuffle_keeps_pairs_and_repeats_for_a_seed():
    images = _images(50)
    index = np.arange(50)

    def epoch(seed, **kwargs):
        dataset = data.from_arrays(images, {"i": index}, batch_size=7, seed=seed, **kwargs)
        pairs = list(dataset.as_numpy_iterator())
        return np.concatenate([x for x, _ in pairs]), np.concatenate([y["i"] for _, y in pairs])

    x, order = epoch(3)
    np.testing.assert_array_equal(x, images[order])  # each image still carries its own label
    assert sorted(order) == list(range(50)) and not np.array_equal(order, index)
    np.testing.assert_array_equal(epoch(3)[1], order)
    assert not np.array_equal(epoch(4)[1], order)
    x, order = epoch(3, limit=6)
    assert sorted(order) == list(range(6))
    np.testing.assert_array_equal(x, images[order])


def test_from_arrays_without_labels_or_with_one_array():
    images = _images(6)
    for _, y in data.from_arrays(images, batch_size=4).as_numpy_iterator():
        assert y == {}
    _, y = next(data.from_arrays(images, np.arange(6), batch_size=6, shuffle=False).as_numpy_iterator())
    assert set(y) == {"label"}
    np.testing.assert_array_equal(y["label"], np.arange(6))
    batches = data.from_arrays(images, batch_size=4, repeat=True, drop_remainder=True).take(5)
    assert [len(x) for x, _ in batches.as_numpy_iterator()] == [4] * 5


def _with_nan():
    images = _images(4)
    images[1, 2, 3, 0] = np.nan
    return images


@pytest.mark.parametrize(
    "images, labels, error, argument",
    [
        (_with_nan(), None, ValueError, "images"),
        (_images(4) + 0.5, None, ValueError, "images"),  # values above 1
        (_images(4) - 1.0, None, ValueError, "images"),  # values below 0
        (_images(4)[:, :, :, 0], None, ValueError, "images"),  # rank 3
        ((_images(4) * 255).astype(np.uint8), None, TypeError, "images"),  # integer pixels
        (_images(4), {"digit": np.arange(5)}, ValueError, "labels['digit']"),  # 5 labels for 4 images
        (_images(4), {"digit": np.zeros(4, np.float32)}, TypeError, "labels['digit']"),
        (_images(4), {"digit": np.zeros((4, 1), np.int64)}, ValueError, "labels['digit']"),
        (_images(4), {"digit": -np.ones(4, np.int64)}, ValueError, "labels['digit']"),
        (_images(4), np.arange(3), ValueError, "labels"),
    ],
    ids=[
        "nan", "above-1", "below-0", "rank-3", "uint8",
        "label-length", "float-labels", "label-rank", "negative", "bare-length",
    ],  # fmt: skip
)
def test_from_arrays_rejects_bad_input_naming_the_argument(images, labels, error, argument):
    with pytest.raises(error) as info:
        data.from_arrays(images, labels, batch_size=2)
    assert argument in str(info.value)


@pytest.mark.parametrize(
    "kwargs, error, argument",
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 2.0}, TypeError, "batch_size"),
        ({"batch_size": 2, "seed": -1}, ValueError, "seed"),
        ({"batch_size": 2, "seed": 1.5}, TypeError, "seed"),
        ({"batch_size": 2, "limit": 0}, ValueError, "limit"),
    ],
)
def test_from_arrays_rejects_bad_options(kwargs, error, argument):
    with pytest.raises(error, match=argument):
        data.from_arrays(_images(4), **kwargs)


def test_unknown_name_or_split_names_the_argument_and_choices(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_AVAE_DATA_DIR", str(tmp_path))  # no cache: the argument check comes first
    with pytest.raises(ValueError) as info:
        data.build_dataset("imagenet", "train", 8)
    message = str(info.value)
    assert "name" in message and "'imagenet'" in message
    assert all(name in message for name in data.DATASET_NAMES)
    with pytest.raises(ValueError) as info:
        data.load_arrays("cifar10", "validation")
    message = str(info.value)
    assert "split" in message and "'validation'" in message and "'train'" in message and "'test'" in message
    with pytest.raises(ValueError, match="split"):
        data.build_dataset("mnist", "unlabelled", 8)
    with pytest.raises(ValueError, match="name"):
        data.dataset_info("svhn")


def test_dataset_info_table():
    assert data.DATASET_NAMES == ("mnist", "color_mnist", "cifar10", "stl10", "celeb_a")
    expected = {
        "mnist": ((28, 28, 1), {"digit": 10}, ("train", "validation", "test")),
        "color_mnist": ((28, 28, 3), {"digit": 10, "colour": 7}, ("train", "validation", "test")),
        "cifar10": ((32, 32, 3), {"label": 10}, ("train", "test")),
        "stl10": ((96, 96, 3), {"label": 10}, ("unlabelled", "train", "test")),
    }
    for name, (shape, tasks, splits) in expected.items():
        info = data.dataset_info(name)
        assert (info.name, info.image_shape, info.tasks, info.splits) == (name, shape, tasks, splits)
    assert len(data.dataset_info("celeb_a").tasks) == 17
    assert not data.dataset_info("stl10").has_labels("unlabelled") and data.dataset_info("stl10").has_labels("train")
    with pytest.raises(AttributeError):
        data.dataset_info("mnist").name = "other"  # frozen
