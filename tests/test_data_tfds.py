"""CIFAR-10 / STL-10 / CelebA pipelines on tfds mock data; never any network."""

import socket
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_avae import data

ATTRIBUTES_17 = {
    "Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Eyeglasses", "Gray_Hair", "Mouth_Slightly_Open",
    "Mustache", "No_Beard", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace",
}  # fmt: skip


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _collect(dataset):
    images, labels = [], {}
    for x, y in dataset.as_numpy_iterator():
        images.append(x)
        for task, values in y.items():
            labels.setdefault(task, []).append(values)
    return np.concatenate(images), {task: np.concatenate(v) for task, v in labels.items()}


@pytest.mark.parametrize("name, shape", [("cifar10", (32, 32, 3)), ("stl10", (96, 96, 3))])
def test_labelled_pipeline_is_raw_tfds_over_255(name, shape):
    assert data.dataset_info(name).image_shape == shape
    with tfds.testing.mock_data(num_examples=10):
        dataset = data.build_dataset(name, "train", 4, shuffle=False)
        batches = list(dataset.as_numpy_iterator())
        raw = list(tfds.load(name, split="train").as_numpy_iterator())  # same deterministic mock examples
    assert [x.shape for x, _ in batches] == [(4, *shape), (4, *shape), (2, *shape)]
    images = np.concatenate([x for x, _ in batches])
    labels = np.concatenate([y["label"] for _, y in batches])
    assert images.dtype == np.float32 and 0.0 <= images.min() and images.max() <= 1.0
    assert all(set(y) == {"label"} and y["label"].dtype == np.int32 for _, y in batches)
    np.testing.assert_allclose(images, np.stack([r["image"] for r in raw]) / 255.0, atol=1e-7)
    np.testing.assert_array_equal(labels, [r["label"] for r in raw])
    assert set(labels) <= set(range(10))


def test_stl10_unlabelled_has_no_labels():
    assert data.dataset_info("stl10").splits == ("unlabelled", "train", "test")
    with tfds.testing.mock_data(num_examples=6):
        for x, y in data.build_dataset("stl10", "unlabelled", 3).as_numpy_iterator():
            assert x.shape == (3, 96, 96, 3) and x.dtype == np.float32
            assert y == {}
        images, labels = data.load_arrays("stl10", "unlabelled")
    assert images.shape == (6, 96, 96, 3) and labels == {}


def test_seeded_shuffle_and_limit():
    with tfds.testing.mock_data(num_examples=30):
        raw = np.stack([r["image"] for r in tfds.load("cifar10", split="test").as_numpy_iterator()]) / 255.0
        first = _collect(data.build_dataset("cifar10", "test", 30, seed=1))[0]
        again = _collect(data.build_dataset("cifar10", "test", 30, seed=1))[0]
        other = _collect(data.build_dataset("cifar10", "test", 30, seed=2))[0]
        limited = _collect(data.build_dataset("cifar10", "test", 2, seed=1, limit=5))[0]
        arrays, labels = data.load_arrays("cifar10", "test", limit=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.allclose(first, raw)  # shuffled ...
    key = lambda images: sorted(image.tobytes() for image in images.astype(np.float32))  # noqa: E731
    assert key(first) == key(raw)  # ... but the same examples
    assert key(limited) == key(raw[:5])  # limit: the first 5 examples, then shuffled
    np.testing.assert_allclose(arrays, raw[:4], atol=1e-7)
    assert arrays.shape == (4, 32, 32, 3) and set(labels) == {"label"} and labels["label"].dtype == np.int32


def test_celeb_a_centre_crop_resize_and_17_binary_tasks():
    info = data.dataset_info("celeb_a")
    assert info.image_shape == (64, 64, 3) and info.splits == ("train", "validation", "test")
    assert set(data.CELEB_A_ATTRIBUTES) == ATTRIBUTES_17 == set(info.tasks) and set(info.tasks.values()) == {2}

    n = 5
    centre = np.array([10, 60, 110, 160, 210], dtype=np.uint8)
    images = np.full((n, 218, 178, 3), 255, np.uint8)  # bright 20-row bands above and below ...
    images[:, 20:198] = centre[:, None, None, None]  # ... a uniform 178x178 centre
    images[:, 20:198, :, 1] = 0  # green channel of the centre is black
    all_attributes = sorted(ATTRIBUTES_17 | {"Attractive", "Big_Nose", "Male", "Young"})
    attributes = {a: (np.arange(n) + j) % 3 == 0 for j, a in enumerate(all_attributes)}

    def as_dataset(self, *args, **kwargs):
        return tf.data.Dataset.from_tensor_slices({"image": images, "attributes": attributes})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        x, y = _collect(data.build_dataset("celeb_a", "validation", 2, shuffle=False))
    assert x.shape == (n, 64, 64, 3) and x.dtype == np.float32
    expected = np.broadcast_to((centre / 255.0)[:, None, None, None], x.shape).copy()
    expected[..., 1] = 0.0
    np.testing.assert_allclose(x, expected, atol=1e-5)  # no trace of the bands: centre crop
    assert set(y) == ATTRIBUTES_17
    for attribute in ATTRIBUTES_17:
        assert y[attribute].dtype == np.int32
        np.testing.assert_array_equal(y[attribute], attributes[attribute].astype(np.int32))


@pytest.mark.parametrize("name", ["cifar10", "stl10", "celeb_a"])
def test_not_prepared_raises_quickly_with_the_prepare_command(tmp_path, name):
    start = time.monotonic()
    with pytest.raises(data.DatasetNotAvailableError) as error:
        data.build_dataset(name, "test", 8, data_dir=tmp_path)
    with pytest.raises(data.DatasetNotAvailableError):
        data.load_arrays(name, "test", data_dir=tmp_path)
    assert time.monotonic() - start < 10
    assert isinstance(error.value, FileNotFoundError)
    message = str(error.value)
    assert f"tf-avae-prepare-data {name}" in message and str(tmp_path) in message
    assert list(tmp_path.iterdir()) == []  # nothing downloaded or created
