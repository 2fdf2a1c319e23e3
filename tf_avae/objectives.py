"""Pure loss terms on tensors. Each returns one value per example (shape [B]).

Notation: a diagonal Gaussian posterior q(z|x) = N(mean, diag(exp(log_variance))) over
latent dimensions that are the last axis; images are summed over every non-batch axis.
"""

from __future__ import annotations

import math

import tensorflow as tf

_LOG_2PI = math.log(2.0 * math.pi)


def _sum_over_non_batch_axes(values: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def gaussian_log_likelihood(x: tf.Tensor, mean: tf.Tensor, log_variance: tf.Tensor | float) -> tf.Tensor:
    """log N(x; mean, diag(exp(log_variance))), summed over all non-batch axes.

    `log_variance` broadcasts against `x` (a scalar for a fixed observation variance).
    """
    log_variance = tf.cast(log_variance, x.dtype)
    log_variance = tf.broadcast_to(log_variance, tf.shape(x))
    squared = tf.square(x - mean) * tf.exp(-log_variance)
    return -0.5 * _sum_over_non_batch_axes(squared + log_variance + _LOG_2PI)


def bernoulli_log_likelihood(x: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """log Bernoulli(x; sigmoid(logits)) for x in [0, 1] (continuous x gives the usual cross-entropy)."""
    return -_sum_over_non_batch_axes(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits))


def gaussian_kl_to_standard_normal(mean: tf.Tensor, log_variance: tf.Tensor) -> tf.Tensor:
    """KL(N(mean, diag exp(log_variance)) || N(0, I)), summed over the last axis."""
    return 0.5 * tf.reduce_sum(tf.exp(log_variance) + tf.square(mean) - 1.0 - log_variance, axis=-1)


def gaussian_entropy(log_variance: tf.Tensor) -> tf.Tensor:
    """H[N(., diag exp(log_variance))] = sum_d 0.5 log(2 pi e sigma_d^2)."""
    return 0.5 * tf.reduce_sum(log_variance + _LOG_2PI + 1.0, axis=-1)


def expected_coupling_log_density(
    mean: tf.Tensor,
    log_variance: tf.Tensor,
    mean_aux: tf.Tensor,
    log_variance_aux: tf.Tensor,
    rho: float,
) -> tf.Tensor:
    """E_{z ~ q(z|x), z' ~ q(z'|x~)}[log N(z'; rho z, (1 - rho^2) I)] in closed form.

    The AVAE coupling term (paper eq. 10): with q(z|x) = N(mu, sigma^2), q(z'|x~) = N(mu', sigma'^2),
        sum_d -[sigma'_d^2 + rho^2 sigma_d^2 + (mu'_d - rho mu_d)^2] / (2 (1 - rho^2))
              - 0.5 log(2 pi (1 - rho^2)).
    """
    rho = tf.cast(rho, mean.dtype)
    one_minus_rho_sq = 1.0 - tf.square(rho)
    spread = tf.exp(log_variance_aux) + tf.square(rho) * tf.exp(log_variance) + tf.square(mean_aux - rho * mean)
    per_dim = -spread / (2.0 * one_minus_rho_sq) - 0.5 * (tf.math.log(one_minus_rho_sq) + _LOG_2PI)
    return tf.reduce_sum(per_dim, axis=-1)


def squared_wasserstein2_diagonal_gaussians(
    mean: tf.Tensor, log_variance: tf.Tensor, mean_other: tf.Tensor, log_variance_other: tf.Tensor
) -> tf.Tensor:
    """W_2^2 between two diagonal Gaussians: sum_d (mu_d - mu'_d)^2 + (sigma_d - sigma'_d)^2."""
    sigma = tf.exp(0.5 * log_variance)
    sigma_other = tf.exp(0.5 * log_variance_other)
    return tf.reduce_sum(tf.square(mean - mean_other) + tf.square(sigma - sigma_other), axis=-1)
