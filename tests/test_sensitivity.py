"""Encoder sensitivity against closed forms for a linear encoder."""

import numpy as np
import pytest
import tensorflow as tf

from tf_avae.evaluation import EncoderAdapter
from tf_avae.evaluation.sensitivity import encoder_sensitivity, latent_displacement


def _linear_encoder(weights):
    w = tf.constant(weights, tf.float32)

    def encode(images):
        flat = tf.reshape(images, [tf.shape(images)[0], -1])
        mean = flat @ w
        return mean, tf.zeros_like(mean)

    return EncoderAdapter(encode)


def test_linear_encoder_worst_is_the_top_singular_value_and_random_the_rms_gain():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(8 * 8 * 3, 5)) * np.array([3.0, 1.0, 0.5, 0.2, 0.1])  # anisotropic
    images = rng.random((16, 8, 8, 3)).astype(np.float32)
    result = encoder_sensitivity(_linear_encoder(weights), images, iterations=50, random_directions=64)
    singular = np.linalg.svd(weights, compute_uv=False)
    np.testing.assert_allclose(result["sensitivity/worst"], singular[0], rtol=1e-3)
    # for a unit isotropic direction, E||W^T v||^2 = ||W||_F^2 / d; the mean norm concentrates near its root
    rms_gain = np.sqrt((singular**2).sum() / weights.shape[0])
    np.testing.assert_allclose(result["sensitivity/random"], rms_gain, rtol=0.15)
    assert result["sensitivity/ratio"] > 5


def test_a_constant_encoder_has_zero_sensitivity():
    encoder = EncoderAdapter(lambda x: (tf.zeros([tf.shape(x)[0], 3]), tf.zeros([tf.shape(x)[0], 3])))
    result = encoder_sensitivity(encoder, np.random.default_rng(1).random((4, 6, 6, 1)).astype(np.float32))
    assert result["sensitivity/random"] == 0.0 and result["sensitivity/worst"] == 0.0


def test_latent_displacement_of_a_one_dimensional_linear_code_matches_the_closed_forms():
    # mu(x) = w . x: the worst L-inf perturbation moves it by eps ||w||_1 (delta = eps sign(w); images kept
    # away from the [0, 1] bounds so clipping never binds); uniform noise moves it by |w . u|, u ~ U[-eps, eps]^d,
    # close to Gaussian with variance eps^2 ||w||^2 / 3, whose absolute value has median 0.6745 sigma.
    rng = np.random.default_rng(2)
    weights = rng.normal(size=(8 * 8 * 3, 1))
    images = (0.3 + 0.4 * rng.random((400, 8, 8, 3))).astype(np.float32)
    eps = 0.05
    result = latent_displacement(_linear_encoder(weights), images, epsilon=eps, pgd_steps=10)
    codes = images.reshape(len(images), -1) @ weights
    spread = np.sqrt(np.mean((codes - codes.mean()) ** 2))
    np.testing.assert_allclose(result["displacement/spread"], spread, rtol=1e-4)
    np.testing.assert_allclose(result["displacement/pgd"], eps * np.abs(weights).sum() / spread, rtol=1e-3)
    noise = 0.6745 * eps * np.linalg.norm(weights) / np.sqrt(3) / spread
    np.testing.assert_allclose(result["displacement/noise"], noise, rtol=0.12)
    np.testing.assert_allclose(result["displacement/ratio"], result["displacement/pgd"] / result["displacement/noise"])


def test_latent_displacement_refuses_a_non_positive_radius():
    with pytest.raises(ValueError, match="epsilon"):
        latent_displacement(_linear_encoder(np.ones((12, 1))), np.zeros((2, 2, 2, 3), np.float32), epsilon=0.0)
