"""Datasets by name: :func:`dataset_info`, :func:`build_dataset`, :func:`load_arrays`.

Every dataset yields ``(images, labels)``: images float32 ``[B, H, W, C]`` in [0, 1], labels a dict
``task -> int32 [B]`` (empty for a split without labels, e.g. stl10 ``unlabelled``).

=============  ==========  ==================================  =============================
name           image_shape tasks (classes)                     splits
=============  ==========  ==================================  =============================
mnist          28x28x1     digit (10)                          train/validation/test
color_mnist    28x28x3     digit (10), colour (7)              train/validation/test
cifar10        32x32x3     label (10)                          train/test
stl10          96x96x3     label (10)                          unlabelled (no labels)/train/test
celeb_a        64x64x3     17 attributes (2 each)              train/validation/test
=============  ==========  ==================================  =============================

``mnist``/``color_mnist`` come from the local cache (``tf-avae-prepare-data mnist``; ``data_dir`` is
the tf_avae cache directory, default ``$TF_AVAE_DATA_DIR`` or ``~/.cache/tf_avae``); the others from
tensorflow-datasets (``tf-avae-prepare-data NAME``; ``data_dir`` is the tfds data_dir, default
``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``). Nothing is ever downloaded by these functions: a
dataset that is not on the machine raises :class:`DatasetNotAvailableError`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf

from tf_avae.data import mnist, tfds_datasets
from tf_avae.data.arrays import check_limit, check_seed
from tf_avae.data.errors import DatasetNotAvailableError
from tf_avae.validation import check_choice, check_positive_int

__all__ = ["DATASET_NAMES", "DatasetInfo", "DatasetNotAvailableError", "build_dataset", "dataset_info", "load_arrays"]

DATASET_NAMES = ("mnist", "color_mnist", "cifar10", "stl10", "celeb_a")
_LOCAL = ("mnist", "color_mnist")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a dataset yields.

    Attributes:
      name: the registry name.
      image_shape: ``(height, width, channels)`` of the yielded images.
      tasks: label task -> number of classes (the keys of the labels dict of a labelled split).
      splits: the valid split names.
    """

    name: str
    image_shape: tuple[int, int, int]
    tasks: dict[str, int] = dataclasses.field(hash=False)
    splits: tuple[str, ...]

    def has_labels(self, split: str) -> bool:
        """False for a split without labels (stl10 ``unlabelled``), whose labels dict is empty."""
        return tfds_datasets.is_labelled(self.name, split)


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of a dataset; raises ``ValueError`` for an unknown ``name``."""
    check_choice("name", name, DATASET_NAMES)
    if name == "mnist":
        return DatasetInfo(name, mnist.MNIST_IMAGE_SHAPE, {"digit": mnist.NUM_DIGITS}, mnist.MNIST_SPLITS)
    if name == "color_mnist":
        return DatasetInfo(
            name,
            mnist.COLOR_MNIST_IMAGE_SHAPE,
            {"digit": mnist.NUM_DIGITS, "colour": mnist.NUM_COLOURS},
            mnist.MNIST_SPLITS,
        )
    return DatasetInfo(
        name, tfds_datasets.IMAGE_SHAPES[name], tfds_datasets.tasks(name), tfds_datasets.SPLITS[name]
    )


def _check_name_split(name: str, split: str) -> None:
    check_choice("name", name, DATASET_NAMES)
    check_choice("split", split, dataset_info(name).splits)


def build_dataset(
    name: str,
    split: str,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    limit: int | None = None,
    repeat: bool = False,
    drop_remainder: bool = False,
    data_dir: Any = None,
    prefetch: bool = True,
) -> tf.data.Dataset:
    """A batched ``tf.data.Dataset`` of ``(images, labels)`` for a named dataset and split.

    Args:
      name: one of :data:`DATASET_NAMES`.
      split: one of ``dataset_info(name).splits``.
      batch_size: examples per batch.
      shuffle: seeded shuffling, reshuffled every epoch; the order repeats for a given ``seed``.
      seed: integer >= 0; also fixes the ColorMNIST colours.
      limit: keep only the first ``limit`` examples of the split (before shuffling).
      repeat: repeat forever (each epoch reshuffled).
      drop_remainder: drop the last incomplete batch.
      data_dir: tf_avae cache dir (mnist, color_mnist) or tfds data_dir (others); ``None`` = default.
      prefetch: add ``prefetch(AUTOTUNE)``.

    Raises:
      ValueError / TypeError: bad arguments (the message names the argument).
      DatasetNotAvailableError: the data is not on this machine (the message says how to get it).
    """
    _check_name_split(name, split)
    kwargs = dict(
        shuffle=bool(shuffle),
        seed=check_seed(seed),
        limit=check_limit(limit),
        repeat=bool(repeat),
        drop_remainder=bool(drop_remainder),
        data_dir=data_dir,
        prefetch=bool(prefetch),
    )
    batch_size = check_positive_int("batch_size", batch_size)
    module = mnist if name in _LOCAL else tfds_datasets
    return module.build_dataset(name, split, batch_size, **kwargs)


def load_arrays(
    name: str, split: str, *, limit: int | None = None, seed: int = 0, data_dir: Any = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A split as numpy arrays, in stored order (no shuffling).

    Returns:
      ``(images, labels)``: float32 ``[N, H, W, C]`` in [0, 1] and ``{task: int32 [N]}``.
    """
    _check_name_split(name, split)
    module = mnist if name in _LOCAL else tfds_datasets
    return module.load_arrays(name, split, limit=check_limit(limit), seed=check_seed(seed), data_dir=data_dir)
