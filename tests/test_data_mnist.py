"""MNIST and ColorMNIST pipelines, on a small fake cache written into tmp_path."""

import numpy as np
import pytest

from tf_avae import data
from tf_avae.data import mnist
from tf_avae.data import prepare

SIZES = {"train": 140, "validation": 30, "test": 70}
# Written out here, independently of the package: the non-black corners of the RGB cube.
EXPECTED_COLOURS = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=np.float32
)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fake MNIST cache (random uint8 images, so every image identifies its example)."""
    rng = np.random.default_rng(1234)
    arrays = {}
    for split, n in SIZES.items():
        arrays[f"x_{split}"] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        arrays[f"y_{split}"] = rng.integers(0, 10, size=n).astype(np.uint8)
    np.savez(tmp_path / "mnist.npz", **arrays)
    monkeypatch.setenv("TF_AVAE_DATA_DIR", str(tmp_path))
    return arrays


def _collect(dataset):
    images, labels = [], {}
    for x, y in dataset.as_numpy_iterator():
        images.append(x)
        for task, values in y.items():
            labels.setdefault(task, []).append(values)
    return np.concatenate(images), {task: np.concatenate(v) for task, v in labels.items()}


def _source_indices(images, codes):
    """Index in the cache of each yielded (grey) image."""
    lookup = {codes[i].tobytes(): i for i in range(len(codes))}
    recovered = np.rint(images[..., 0] * 256).astype(np.uint8)
    return np.array([lookup[image.tobytes()] for image in recovered])


def test_mnist_arrays_are_the_cache_over_256(cache):
    info = data.dataset_info("mnist")
    assert info.image_shape == (28, 28, 1) and info.tasks == {"digit": 10}
    for split, n in SIZES.items():
        images, labels = data.load_arrays("mnist", split)
        assert images.shape == (n, 28, 28, 1) and images.dtype == np.float32
        assert 0.0 <= images.min() and images.max() <= 1.0
        np.testing.assert_array_equal(images[..., 0], cache[f"x_{split}"].astype(np.float32) / 256)
        assert set(labels) == {"digit"} and labels["digit"].dtype == np.int32
        np.testing.assert_array_equal(labels["digit"], cache[f"y_{split}"])


def test_mnist_pipeline_batches_in_order_without_shuffle(cache):
    dataset = data.build_dataset("mnist", "train", 32, shuffle=False)
    batches = list(dataset.as_numpy_iterator())
    assert [len(x) for x, _ in batches] == [32, 32, 32, 32, 12]
    x, y = batches[0]
    assert x.dtype == np.float32 and y["digit"].dtype == np.int32
    images, labels = _collect(dataset)
    np.testing.assert_array_equal(images[..., 0], cache["x_train"] / np.float32(256))
    np.testing.assert_array_equal(labels["digit"], cache["y_train"])
    dropped = data.build_dataset("mnist", "train", 32, shuffle=False, drop_remainder=True)
    assert [len(x) for x, _ in dropped.as_numpy_iterator()] == [32] * 4


def test_shuffled_pipeline_is_a_permutation_with_matching_labels(cache):
    images, labels = _collect(data.build_dataset("mnist", "train", 16, shuffle=True, seed=3))
    order = _source_indices(images, cache["x_train"])
    assert sorted(order) == list(range(SIZES["train"]))
    assert not np.array_equal(order, np.arange(SIZES["train"]))
    np.testing.assert_array_equal(labels["digit"], cache["y_train"][order])


def test_seeded_shuffle_repeats_and_reshuffles_each_epoch(cache):
    def first_epoch(seed):
        images, _ = _collect(data.build_dataset("mnist", "test", 10, seed=seed))
        return _source_indices(images, cache["x_test"])

    np.testing.assert_array_equal(first_epoch(7), first_epoch(7))
    assert not np.array_equal(first_epoch(7), first_epoch(8))

    n = SIZES["test"]
    repeated = data.build_dataset("mnist", "test", n, seed=7, repeat=True)
    epochs = [_source_indices(x, cache["x_test"]) for x, _ in repeated.take(2).as_numpy_iterator()]
    np.testing.assert_array_equal(epochs[0], first_epoch(7))
    assert sorted(epochs[1]) == list(range(n)) and not np.array_equal(epochs[0], epochs[1])


def test_limit_keeps_the_first_examples(cache):
    images, _ = _collect(data.build_dataset("mnist", "train", 4, seed=1, limit=10))
    assert sorted(_source_indices(images, cache["x_train"])) == list(range(10))
    images, labels = data.load_arrays("mnist", "validation", limit=5)
    np.testing.assert_array_equal(images[..., 0], cache["x_validation"][:5] / np.float32(256))
    np.testing.assert_array_equal(labels["digit"], cache["y_validation"][:5])
    images, _ = data.load_arrays("mnist", "validation", limit=10_000)  # more than there is: all of it
    assert len(images) == SIZES["validation"]


def test_color_mnist_pixels_are_digit_times_colour(cache):
    info = data.dataset_info("color_mnist")
    assert info.image_shape == (28, 28, 3) and info.tasks == {"digit": 10, "colour": 7}
    np.testing.assert_array_equal(data.COLOURS, EXPECTED_COLOURS)
    images, labels = _collect(data.build_dataset("color_mnist", "train", 32, shuffle=False, seed=5))
    assert images.shape == (SIZES["train"], 28, 28, 3) and images.dtype == np.float32
    assert set(labels) == {"digit", "colour"}
    assert labels["colour"].dtype == np.int32 and set(labels["colour"]) <= set(range(7))
    assert len(set(labels["colour"])) == 7  # 140 draws: every colour appears
    digits = cache["x_train"].astype(np.float32) / 256
    expected = digits[..., None] * EXPECTED_COLOURS[labels["colour"]][:, None, None, :]
    np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(labels["digit"], cache["y_train"])
    # load_arrays gives the same arrays as the pipeline.
    arrays, array_labels = data.load_arrays("color_mnist", "train", seed=5)
    np.testing.assert_array_equal(arrays, images)
    np.testing.assert_array_equal(array_labels["colour"], labels["colour"])


def test_color_mnist_colours_are_fixed_by_seed_and_split(cache):
    def colours(split, seed, **kwargs):
        return data.load_arrays("color_mnist", split, seed=seed, **kwargs)[1]["colour"]

    np.testing.assert_array_equal(colours("test", 0), colours("test", 0))
    assert not np.array_equal(colours("test", 0), colours("test", 1))
    assert not np.array_equal(colours("train", 0)[: SIZES["test"]], colours("test", 0))
    # Independent of limit and of shuffling: a function of (seed, split, example index).
    np.testing.assert_array_equal(colours("test", 0, limit=20), colours("test", 0)[:20])
    images, labels = _collect(data.build_dataset("color_mnist", "test", 8, shuffle=True, seed=0))
    grey = images.max(axis=-1, keepdims=True)  # every colour has a channel equal to 1
    order = _source_indices(grey, cache["x_test"])
    np.testing.assert_array_equal(labels["colour"], colours("test", 0)[order])


def test_colours_are_uniform():
    counts = np.bincount(data.colour_indices("train", 70_000, seed=0), minlength=7)
    assert len(counts) == 7
    # Expected 10000 each, standard deviation ~93: 5 sigma.
    assert np.all(np.abs(counts - 10_000) < 465), counts


def test_missing_cache_says_how_to_prepare(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    monkeypatch.setenv("TF_AVAE_DATA_DIR", str(empty))
    for call in (
        lambda: data.build_dataset("mnist", "train", 8),
        lambda: data.build_dataset("color_mnist", "test", 8),
        lambda: data.load_arrays("mnist", "test"),
    ):
        with pytest.raises(data.DatasetNotAvailableError) as error:
            call()
        assert isinstance(error.value, FileNotFoundError)
        assert "tf-avae-prepare-data mnist" in str(error.value) and str(empty) in str(error.value)


def test_corrupt_cache_is_refused(tmp_path, monkeypatch):
    arrays = {f"{k}_{s}": np.zeros((2, 28, 28) if k == "x" else (2,), np.uint8) for s in SIZES for k in "xy"}
    arrays["x_train"] = arrays["x_train"].astype(np.float32)  # wrong dtype
    np.savez(tmp_path / "mnist.npz", **arrays)
    monkeypatch.setenv("TF_AVAE_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DataIntegrityError, match="--force"):
        data.load_arrays("mnist", "test")


REAL_CACHE = mnist.mnist_cache_path()


@pytest.mark.skipif(not REAL_CACHE.is_file(), reason=f"no real MNIST cache {REAL_CACHE} (tf-avae-prepare-data mnist)")
def test_real_mnist_cache():
    directory = REAL_CACHE.parent
    with np.load(REAL_CACHE, allow_pickle=False) as npz:
        assert str(npz["source_sha256"]) == prepare.MNIST_MEMBER_SHA256
    for split, n in {"train": 50_000, "validation": 10_000, "test": 10_000}.items():
        images, labels = data.load_arrays("mnist", split, data_dir=directory)
        assert images.shape == (n, 28, 28, 1) and images.dtype == np.float32
        assert images.min() == 0.0 and images.max() == np.float32(255 / 256)
        assert 0.05 < images.mean() < 0.25  # mostly black digits
        np.testing.assert_array_equal(np.unique(labels["digit"]), np.arange(10))
