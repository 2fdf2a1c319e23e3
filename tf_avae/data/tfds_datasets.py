"""CIFAR-10, STL-10 and CelebA through tensorflow-datasets (tfds).

Data is only read, never downloaded: builders are opened with ``try_gcs=False`` and no
``download_and_prepare`` call happens here. A dataset that is not prepared in the tfds ``data_dir``
(``data_dir`` argument, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``) raises
:class:`DatasetNotAvailableError` naming the command that prepares it (``tf-avae-prepare-data NAME``,
which needs network access).

Pipelines: examples are read in file order (tfds file shuffling with ``seed`` is added when
``shuffle`` is on and no ``limit`` is set), the first ``limit`` are kept, then seeded shuffling in a
buffer of :data:`SHUFFLE_BUFFER` examples, batching, and one vectorised preprocessing op per batch:

- ``cifar10`` (32x32x3) and ``stl10`` (96x96x3): ``uint8 / 255``; task ``label`` (10 classes);
  the stl10 ``unlabelled`` split has no labels (empty dict).
- ``celeb_a`` (64x64x3): the 218x178 tfds images are centre-cropped to 178x178 (20 rows off the top
  and the bottom) and resized to 64x64 (bilinear with antialiasing); 17 binary tasks
  (:data:`CELEB_A_ATTRIBUTES`), each an int32 0/1.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import tensorflow as tf

from tf_avae.data.arrays import batch_pipeline
from tf_avae.data.errors import DatasetNotAvailableError

__all__ = ["CELEB_A_ATTRIBUTES", "TFDS_DATASETS", "build_dataset", "load_arrays"]

#: The 17 CelebA attributes used as binary tasks (tfds attribute names). They follow the AVAE paper,
#: which evaluates attributes such as Bald, Mustache, Wearing_Necklace, Eyeglasses, Smiling and
#: Wearing_Lipstick and leaves out sensitive or subjective ones (Attractive, Big_Nose, Chubby, Male,
#: Pale_Skin, Young, ...). The paper does not list its 17; this is our fixed, documented choice of
#: mostly objective appearance attributes.
CELEB_A_ATTRIBUTES = (
    "Bald",
    "Bangs",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Eyeglasses",
    "Gray_Hair",
    "Mouth_Slightly_Open",
    "Mustache",
    "No_Beard",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
)

#: tf_avae name -> tfds builder name.
TFDS_DATASETS = {"cifar10": "cifar10", "stl10": "stl10", "celeb_a": "celeb_a"}

IMAGE_SHAPES = {"cifar10": (32, 32, 3), "stl10": (96, 96, 3), "celeb_a": (64, 64, 3)}
SPLITS = {
    "cifar10": ("train", "test"),
    "stl10": ("unlabelled", "train", "test"),
    "celeb_a": ("train", "validation", "test"),
}
UNLABELLED_SPLITS = {"stl10": ("unlabelled",)}

#: Shuffle-buffer size (examples) per dataset: about 128 MiB of decoded uint8 images at most.
SHUFFLE_BUFFER = {"cifar10": 10_000, "stl10": 4_096, "celeb_a": 1_024}


def is_labelled(name: str, split: str) -> bool:
    return split not in UNLABELLED_SPLITS.get(name, ())


def tasks(name: str) -> dict[str, int]:
    if name == "celeb_a":
        return {attribute: 2 for attribute in CELEB_A_ATTRIBUTES}
    return {"label": 10}


def _builder(name: str, data_dir: Any):
    import tensorflow_datasets as tfds

    directory = None if data_dir is None else os.path.expanduser(os.fspath(data_dir))
    return tfds.builder(TFDS_DATASETS[name], data_dir=directory, try_gcs=False)


def not_available_message(name: str, data_dir_root: str) -> str:
    return (
        f"Dataset {name!r} is not prepared in the tensorflow-datasets data_dir {data_dir_root!r}, and "
        f"tf_avae never downloads implicitly. With network access run `tf-avae-prepare-data {name}` "
        f"(add `--tfds_data_dir DIR` to choose where it goes), or put an already prepared tfds copy "
        f"under DIR/{TFDS_DATASETS[name]}/<version>/ and pass data_dir=DIR or set $TFDS_DATA_DIR=DIR."
    )


def _raw_dataset(name: str, split: str, *, data_dir: Any, shuffle_files: bool, seed: int) -> tf.data.Dataset:
    import tensorflow_datasets as tfds

    builder = _builder(name, data_dir)
    read_config = tfds.ReadConfig(shuffle_seed=seed)
    try:
        return builder.as_dataset(split=split, shuffle_files=shuffle_files, read_config=read_config)
    except AssertionError as error:  # tfds: "Dataset X: could not find data in DIR ..."
        raise DatasetNotAvailableError(not_available_message(name, str(builder.data_dir_root))) from error


def _batch_fn(name: str, split: str):
    """The vectorised per-batch preprocessing: raw tfds batch dict -> (images, labels)."""
    labelled = is_labelled(name, split)

    def to_float(images):
        return tf.cast(images, tf.float32) / 255.0

    if name == "celeb_a":
        height, width, _ = IMAGE_SHAPES[name]

        def fn(batch):
            images = to_float(batch["image"])
            side = min(images.shape[1], images.shape[2])  # 178 for the 218x178 tfds images
            images = tf.image.resize_with_crop_or_pad(images, side, side)
            images = tf.image.resize(images, (height, width), method="bilinear", antialias=True)
            images = tf.clip_by_value(images, 0.0, 1.0)
            attributes = batch["attributes"]
            return images, {a: tf.cast(attributes[a], tf.int32) for a in CELEB_A_ATTRIBUTES}

        return fn

    def fn(batch):
        labels = {"label": tf.cast(batch["label"], tf.int32)} if labelled else {}
        return to_float(batch["image"]), labels

    return fn


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
    """tfds pipeline for ``cifar10`` / ``stl10`` / ``celeb_a`` (arguments assumed checked)."""
    raw = _raw_dataset(name, split, data_dir=data_dir, shuffle_files=shuffle and limit is None, seed=seed)
    if limit is not None:
        raw = raw.take(limit)
    return batch_pipeline(
        raw,
        _batch_fn(name, split),
        batch_size=batch_size,
        shuffle=shuffle,
        shuffle_buffer=SHUFFLE_BUFFER[name],
        seed=seed,
        repeat=repeat,
        drop_remainder=drop_remainder,
        prefetch=prefetch,
    )


def load_arrays(
    name: str, split: str, *, limit: int | None = None, seed: int = 0, data_dir: Any = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The split (first ``limit`` examples, file order) as numpy float32 images and int32 labels.

    Beware of memory: the full stl10 ``unlabelled`` split is 100k x 96x96x3 float32 (11 GB).
    """
    dataset = build_dataset(
        name,
        split,
        256,
        shuffle=False,
        seed=seed,
        limit=limit,
        repeat=False,
        drop_remainder=False,
        data_dir=data_dir,
        prefetch=True,
    )
    image_batches, label_batches = [], {}
    for images, labels in dataset.as_numpy_iterator():
        image_batches.append(images)
        for task, values in labels.items():
            label_batches.setdefault(task, []).append(values)
    if not image_batches:
        empty_tasks = tasks(name) if is_labelled(name, split) else {}
        return np.zeros((0, *IMAGE_SHAPES[name]), np.float32), {t: np.zeros((0,), np.int32) for t in empty_tasks}
    return np.concatenate(image_batches), {task: np.concatenate(v) for task, v in label_batches.items()}
