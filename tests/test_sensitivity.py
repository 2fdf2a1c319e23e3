"""Encoder sensitivity against closed forms for a linear encoder."""

import numpy as np
import tensorflow as tf

from tf_avae.evaluation import EncoderAdapter
from tf_avae.evaluation.sensitivity import encoder_sensitivity


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
