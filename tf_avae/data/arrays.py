"""Datasets from user-supplied in-memory arrays, and the pipeline helpers shared by all datasets.

Every dataset of :mod:`tf_avae.data` yields ``(images, labels)`` with ``images`` float32
``[B, H, W, C]`` in [0, 1] and ``labels`` a dict ``task -> int32 [B]`` (empty for unlabelled data).

In-memory pipelines shuffle example *indices* (seeded, reshuffled every epoch), batch them and
gather a whole batch at once with one vectorised op, so the shuffle buffer holds integers, not
images, and every epoch is a full permutation of the data.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import tensorflow as tf

from tf_avae.validation import check_image_array, check_positive_int

__all__ = ["from_arrays"]

_INT32_MAX = np.iinfo(np.int32).max


def check_seed(seed: Any) -> int:
    """A seed is an integer >= 0 (used for tf.data shuffling and numpy Generators)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer >= 0; got {seed!r} of type {type(seed).__name__}.")
    if seed < 0 or seed > np.iinfo(np.int64).max:
        raise ValueError(f"seed must be an integer in [0, 2**63 - 1]; got {seed!r}.")
    return int(seed)


def check_limit(limit: Any) -> int | None:
    """``limit`` is ``None`` (all examples) or a positive integer (the first ``limit`` examples)."""
    if limit is None:
        return None
    return check_positive_int("limit", limit)


def check_labels(labels: Any, num_examples: int) -> dict[str, np.ndarray]:
    """Validates labels once, where they enter; returns ``{task: int32 [N]}``.

    ``labels`` is ``None`` (no labels), a mapping ``task -> 1-D integer array``, or a single 1-D
    integer array (the task is then called ``"label"``). Every array must have one non-negative
    integer class index per image.
    """
    if labels is None:
        return {}
    if isinstance(labels, Mapping):
        items = [(key, value, f"labels[{key!r}]") for key, value in labels.items()]
    else:
        items = [("label", labels, "labels")]
    checked = {}
    for key, value, arg_name in items:
        if not isinstance(key, str) or not key:
            raise TypeError(f"labels must map task names (non-empty str) to arrays; got key {key!r}.")
        array = np.asarray(value)
        if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
            raise TypeError(
                f"{arg_name} must be an integer array of class indices; got dtype {array.dtype}."
            )
        if array.ndim != 1:
            raise ValueError(f"{arg_name} must have rank 1 [num_examples]; got shape {array.shape}.")
        if array.shape[0] != num_examples:
            raise ValueError(
                f"{arg_name} must have one label per image: images has {num_examples} examples, "
                f"{arg_name} has {array.shape[0]}."
            )
        if array.size and (array.min() < 0 or array.max() > _INT32_MAX):
            raise ValueError(
                f"{arg_name} must hold class indices in [0, {_INT32_MAX}]; "
                f"got values in [{array.min()}, {array.max()}]."
            )
        checked[key] = array.astype(np.int32)
    return checked


def batch_pipeline(
    dataset: tf.data.Dataset,
    batch_fn: Callable[[Any], Any],
    *,
    batch_size: int,
    shuffle: bool,
    shuffle_buffer: int,
    seed: int,
    repeat: bool,
    drop_remainder: bool,
    prefetch: bool,
) -> tf.data.Dataset:
    """Shuffle (seeded, every epoch) -> repeat -> batch -> vectorised ``batch_fn`` -> prefetch."""
    if shuffle:
        dataset = dataset.shuffle(max(int(shuffle_buffer), 1), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(batch_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if prefetch:
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset


def index_pipeline(
    num_examples: int,
    gather_fn: Callable[[tf.Tensor], Any],
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    repeat: bool,
    drop_remainder: bool,
    prefetch: bool,
) -> tf.data.Dataset:
    """A pipeline over in-memory data: shuffles indices ``0..num_examples-1`` (full permutation per
    epoch) and calls ``gather_fn(int64 indices [B])`` once per batch."""
    indices = tf.data.Dataset.range(num_examples)
    return batch_pipeline(
        indices,
        gather_fn,
        batch_size=batch_size,
        shuffle=shuffle,
        shuffle_buffer=num_examples,
        seed=seed,
        repeat=repeat,
        drop_remainder=drop_remainder,
        prefetch=prefetch,
    )


def from_arrays(
    images: Any,
    labels: Any = None,
    *,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    limit: int | None = None,
    repeat: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of ``(images, labels)`` batches from in-memory arrays.

    Args:
      images: float array ``[N, H, W, C]``, finite, values in [0, 1] (checked once, here).
      labels: ``None``, a dict ``task -> integer array [N]`` or one integer array ``[N]``
        (task ``"label"``). Yielded as int32.
      batch_size: examples per batch.
      shuffle: shuffle with ``seed``; the order is reshuffled every epoch and repeats for a seed.
      seed: integer >= 0.
      limit: keep only the first ``limit`` examples (before shuffling).
      repeat: repeat forever.
      drop_remainder: drop the last incomplete batch.

    Returns:
      Dataset of ``(float32 [B, H, W, C], {task: int32 [B]})``, prefetched.
    """
    images = check_image_array("images", images)
    labels = check_labels(labels, images.shape[0])
    batch_size = check_positive_int("batch_size", batch_size)
    seed = check_seed(seed)
    limit = check_limit(limit)

    num_examples = images.shape[0] if limit is None else min(limit, images.shape[0])
    images_t = tf.constant(images[:num_examples])
    labels_t = {task: tf.constant(values[:num_examples]) for task, values in labels.items()}

    def gather(indices):
        return (
            tf.gather(images_t, indices),
            {task: tf.gather(values, indices) for task, values in labels_t.items()},
        )

    return index_pipeline(
        num_examples,
        gather,
        batch_size=batch_size,
        shuffle=bool(shuffle),
        seed=seed,
        repeat=bool(repeat),
        drop_remainder=bool(drop_remainder),
        prefetch=True,
    )
