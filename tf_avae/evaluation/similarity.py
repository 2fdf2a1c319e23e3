"""AAVAE analysis: are augmented views of one image closer in latent space than views of different images?

For each image two views are drawn with ``augmentation``; the cosine similarity of their
representations (posterior means by default) is the "same" sample. Each first view is also paired
with the second view of another image (a random derangement), the "different" sample. DESIGN
section 4: AAVAE separates the two distributions, a VAE does not.
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from tf_avae.evaluation.adapter import as_encoder_adapter
from tf_avae.validation import check_image_array, check_positive_int

__all__ = ["augmentation_similarity", "cosine_similarity", "similarity_summary"]


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of ``[N, F]`` arrays (0 for a zero row)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / np.maximum(norms, 1e-12)


def similarity_summary(same: np.ndarray, different: np.ndarray) -> dict[str, float]:
    """Means, standard deviations, their gap and the AUC P(same > different) (0.5 = indistinguishable)."""
    from sklearn.metrics import roc_auc_score

    scores = np.concatenate([same, different])
    truth = np.concatenate([np.ones(len(same)), np.zeros(len(different))])
    return {
        "similarity/same_mean": float(np.mean(same)),
        "similarity/same_std": float(np.std(same)),
        "similarity/different_mean": float(np.mean(different)),
        "similarity/different_std": float(np.std(different)),
        "similarity/gap": float(np.mean(same) - np.mean(different)),
        "similarity/auc": float(roc_auc_score(truth, scores)),
    }


def _augment_fn(augmentation: Any) -> Callable[[tf.Tensor], tf.Tensor]:
    if isinstance(augmentation, keras.layers.Layer):
        return lambda x: augmentation(x, training=True)
    if callable(augmentation):
        return augmentation
    raise TypeError(f"augmentation must be a Keras layer or a callable images -> images; got {augmentation!r}.")


def augmentation_similarity(
    model: Any,
    images: Any,
    augmentation: Any,
    *,
    feature: str = "mean",
    batch_size: int = 256,
    seed: int = 0,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Cosine similarity of two augmented views, same image vs different images.

    Args:
      model: tf_avae model, loaded SavedModel or adapter.
      images: float ``[N, H, W, C]`` in [0, 1], N >= 2.
      augmentation: a Keras layer (called with ``training=True``, e.g. ``SimCLRAugment``) or a callable;
        it is called twice per batch and must draw fresh randomness each call.
      feature: ``"mean"`` or ``"backbone"``.
      seed: numpy seed of the pairing of different images.

    Returns:
      ``(metrics, arrays)``: ``metrics`` as :func:`similarity_summary` (floats), ``arrays`` holds the raw
      ``"same"`` and ``"different"`` similarities ``[N]`` for a histogram.
    """
    adapter = as_encoder_adapter(model)
    feature = adapter.check_feature(feature)
    images = check_image_array("images", images)
    if images.shape[0] < 2:
        raise ValueError(f"images must hold at least 2 examples to pair different images; got {images.shape[0]}.")
    augment = _augment_fn(augmentation)
    represent = adapter.compiled(feature)

    def two_views(batch):
        return represent(augment(batch)), represent(augment(batch))

    views = [], []
    for start in range(0, images.shape[0], check_positive_int("batch_size", batch_size)):
        first, second = two_views(tf.constant(images[start : start + batch_size]))
        views[0].append(np.asarray(first))
        views[1].append(np.asarray(second))
    first, second = (np.concatenate(v) for v in views)
    order = np.random.default_rng(seed).permutation(images.shape[0])
    partner = np.empty_like(order)
    partner[order] = np.roll(order, -1)  # a derangement: every image is paired with another one
    same = cosine_similarity(first, second)
    different = cosine_similarity(first, second[partner])
    return similarity_summary(same, different), {"same": same, "different": different}
