"""Batched, compiled application of a model to numpy arrays; the representation a probe reads."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import tensorflow as tf

from tf_avae.evaluation.adapter import as_encoder_adapter
from tf_avae.validation import check_image_array, check_positive_int

__all__ = ["encode_features", "map_batches"]


def map_batches(
    fn: Callable[[tf.Tensor], Any],
    array: np.ndarray,
    batch_size: int = 256,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """``fn`` applied to ``array`` in batches of ``batch_size``, concatenated as float32 numpy.

    ``fn`` should be a ``tf.function``; it sees at most two batch sizes (full and last).
    """
    batch_size = check_positive_int("batch_size", batch_size)
    outputs = []
    for start in range(0, array.shape[0], batch_size):
        batch = tf.convert_to_tensor(array[start : start + batch_size])
        outputs.append(np.asarray(fn(batch), dtype=np.float32))
        if on_batch is not None:
            on_batch(batch.shape[0])
    if not outputs:
        raise ValueError("array must contain at least one example; got 0.")
    return np.concatenate(outputs, axis=0)


def encode_features(model: Any, images: Any, feature: str = "mean", batch_size: int = 256) -> np.ndarray:
    """The representation ``[N, F]`` (float32 numpy) of ``images`` that a linear probe reads.

    Args:
      model: a tf_avae model, a loaded SavedModel or an :class:`~tf_avae.evaluation.EncoderAdapter`.
      images: float ``[N, H, W, C]`` in [0, 1].
      feature: ``"mean"`` (posterior mean mu(x), DESIGN section 4) or ``"backbone"`` (``encoder.features``,
        e.g. AAVAE's pooled ResNet feature).
      batch_size: examples per forward pass.
    """
    adapter = as_encoder_adapter(model)
    feature = adapter.check_feature(feature)
    images = check_image_array("images", images)
    return map_batches(adapter.compiled(feature), images, batch_size)
