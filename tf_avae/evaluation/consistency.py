"""Latent consistency under repeated encode -> decode (paper Figure 1).

Chain: ``x_0 = x``, ``mu_k = mean(x_k)``, ``x_{k+1} = g(mu_k)`` (decoder mean at the posterior mean).
A consistent autoencoder keeps ``mu_k`` near ``mu_0``; the paper shows a VAE drifting and an AVAE
staying put.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from tf_avae.evaluation.adapter import as_encoder_adapter
from tf_avae.validation import check_image_array, check_positive_int

__all__ = ["latent_consistency", "encode_decode_chain"]


def _next_images(adapter, images, mean):
    # decode(mu) when a decoder exists (saves one encoder pass); a reconstruct-only SavedModel re-encodes.
    return adapter.decode(mean) if adapter.can_decode else adapter.reconstruct(images)


def _check(model, images, steps):
    adapter = as_encoder_adapter(model)
    if not adapter.can_reconstruct:
        raise ValueError(f"model {adapter.name} has no decoder: latent consistency needs decode or reconstruct.")
    return adapter, check_image_array("images", images), check_positive_int("steps", steps)


def latent_consistency(model: Any, images: Any, steps: int = 5, batch_size: int = 256) -> dict[str, float]:
    """``{"consistency/step=<k>": mean_x ||mu_k(x) - mu_0(x)||_2}`` for ``k = 1..steps``.

    Step 1 is ``||mean(x) - mean(g(mean(x)))||``; later steps show how the drift grows.
    """
    adapter, images, steps = _check(model, images, steps)
    batch_size = check_positive_int("batch_size", batch_size)

    @tf.function(reduce_retracing=True, autograph=False)
    def distances(batch):
        mean0 = adapter.mean(batch)
        x, mean, out = batch, mean0, []
        for _ in range(steps):
            x = _next_images(adapter, x, mean)
            mean = adapter.mean(x)
            out.append(tf.norm(tf.reshape(mean - mean0, [tf.shape(mean)[0], -1]), axis=1))
        return tf.stack(out, axis=1)  # [B, steps]

    totals = np.zeros(steps)
    for start in range(0, images.shape[0], batch_size):
        totals += distances(tf.constant(images[start : start + batch_size])).numpy().astype(np.float64).sum(axis=0)
    means = totals / images.shape[0]
    return {f"consistency/step={k + 1}": float(means[k]) for k in range(steps)}


def encode_decode_chain(model: Any, images: Any, steps: int = 5) -> np.ndarray:
    """The images of the chain, float32 ``[steps + 1, N, H, W, C]``: ``x_0 = images``, ``x_k = g(mu_{k-1})``."""
    adapter, images, steps = _check(model, images, steps)
    x = tf.constant(images)
    chain = [images]
    for _ in range(steps):
        x = _next_images(adapter, x, adapter.mean(x))
        chain.append(np.asarray(x, np.float32))
    return np.stack(chain)
