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


def test_latent_displacement_inside_the_pixel_box_and_without_it_match_the_closed_forms():
    # Black images: inside [0, 1] a perturbation can only brighten, so the worst L-inf move of w . x is
    # eps * max(sum w+, sum |w-|); without bounds it is eps * ||w||_1. Codes are constant: the unit is given.
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(4 * 4 * 3, 1)) + 0.3  # unequal positive and negative mass
    images = np.zeros((64, 4, 4, 3), np.float32)
    eps = 0.1
    encoder = _linear_encoder(weights)
    boxed = latent_displacement(encoder, images, epsilon=eps, pgd_steps=20, spread=2.0)
    free = latent_displacement(encoder, images, epsilon=eps, pgd_steps=20, spread=2.0, bounds=None)
    positive, negative = weights[weights > 0].sum(), -weights[weights < 0].sum()
    np.testing.assert_allclose(boxed["displacement/pgd"], eps * max(positive, negative) / 2.0, rtol=1e-3)
    np.testing.assert_allclose(free["displacement/pgd"], eps * np.abs(weights).sum() / 2.0, rtol=1e-3)
    assert boxed["displacement/spread"] == free["displacement/spread"] == 2.0
    # the noise: clipped to [0, eps] inside the box, symmetric without it (numpy Monte Carlo of both)
    u = rng.uniform(-eps, eps, size=(20000, weights.shape[0]))
    np.testing.assert_allclose(boxed["displacement/noise"], np.median(np.abs(np.maximum(u, 0) @ weights)) / 2.0,
                               rtol=0.15)
    np.testing.assert_allclose(free["displacement/noise"], np.median(np.abs(u @ weights)) / 2.0, rtol=0.15)


def test_latent_displacement_of_one_region_matches_the_closed_forms():
    # Left half black in every channel (the background), right half inside (0, 1) (the foreground). With a 1-D
    # linear code the worst move of the background is eps * max(sum w+, sum |w-|) over its pixels (it can only
    # brighten), that of the foreground eps * sum |w| over its pixels; uniform noise stays in its region too.
    rng = np.random.default_rng(4)
    weights = rng.normal(size=(4, 4, 3)) + 0.3
    images = np.concatenate([np.zeros((400, 4, 2, 3)), 0.3 + 0.4 * rng.random((400, 4, 2, 3))], axis=2)
    images = images.astype(np.float32)
    encoder, eps = _linear_encoder(weights.reshape(-1, 1)), 0.1
    background, foreground = weights[:, :2], weights[:, 2:]
    result = {region: latent_displacement(encoder, images, epsilon=eps, pgd_steps=20, spread=2.0, region=region)
              for region in ("background", "foreground")}
    worst_background = eps * max(background[background > 0].sum(), -background[background < 0].sum())
    np.testing.assert_allclose(result["background"]["displacement/pgd"], worst_background / 2.0, rtol=1e-3)
    np.testing.assert_allclose(result["foreground"]["displacement/pgd"], eps * np.abs(foreground).sum() / 2.0,
                               rtol=1e-3)
    u = rng.uniform(-eps, eps, size=(20000, 4, 2, 3))
    np.testing.assert_allclose(result["background"]["displacement/noise"],
                               np.median(np.abs(np.einsum("nhwc,hwc->n", np.maximum(u, 0), background))) / 2.0,
                               rtol=0.15)
    np.testing.assert_allclose(result["foreground"]["displacement/noise"],
                               np.median(np.abs(np.einsum("nhwc,hwc->n", u, foreground))) / 2.0, rtol=0.15)
    with pytest.raises(ValueError, match="region"):
        latent_displacement(encoder, images, region="digit")


def test_latent_displacement_refuses_bad_bounds_and_images_off_them():
    encoder = _linear_encoder(np.ones((12, 1)))
    with pytest.raises(ValueError, match="bounds"):
        latent_displacement(encoder, np.zeros((2, 2, 2, 3), np.float32), bounds=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"images must have values in \[0, 1\]"):
        latent_displacement(encoder, np.full((2, 2, 2, 3), 1.5, np.float32))
    with pytest.raises(ValueError, match="images contains 1 NaN"):
        latent_displacement(encoder, np.array([[[[np.nan, 0, 0]]]], np.float32), bounds=None)
    with pytest.raises(ValueError, match="spread"):
        latent_displacement(encoder, np.zeros((2, 2, 2, 3), np.float32), spread=0.0)


def _gaussian_avae(variance):
    from helpers import networks

    from tf_avae import models

    encoder, decoder = networks("mlp", image_shape=(4, 4, 3), latent_dim=4, observation_variance=variance)
    model = models.AVAE(encoder, decoder, rho=0.9, seed=1)
    for weight in model.decoder.trainable_weights:  # a decoder whose output varies visibly with the code
        weight.assign(4.0 * weight)
    return model


def test_delusion_points_follow_the_decoder_at_sampled_codes_plus_observation_noise():
    # A second implementation in numpy: z = mu + sigma * e with numpy's normals, g(z) by the decoder; the
    # delusions x~ = g(z) + sqrt(v) n must have the same mean per pixel and v more variance.
    from tf_avae.evaluation import displacement_points

    variance, draws = 0.3, 600
    model = _gaussian_avae(variance)
    base = np.random.default_rng(4).random((3, 4, 4, 3)).astype(np.float32)
    points = displacement_points(model, np.repeat(base, draws, axis=0), "delusion", seed=5)
    assert points.shape == (3 * draws, 4, 4, 3) and points.dtype == np.float32
    points = points.reshape(3, draws, -1)
    mean, log_variance = (t.numpy() for t in model.encode(base))
    codes = mean[:, None] + np.exp(0.5 * log_variance)[:, None] * np.random.default_rng(6).normal(
        size=(3, draws, mean.shape[-1]))
    decoded = model.decode(codes.reshape(3 * draws, -1).astype(np.float32)).numpy().reshape(3, draws, -1)
    assert decoded.var(axis=1).mean() > 0.01  # the sampled code matters: z = mu would be told apart
    standard_error = np.sqrt((2 * decoded.var(axis=1) + variance) / draws)
    np.testing.assert_array_less(np.abs(points.mean(axis=1) - decoded.mean(axis=1)), 5 * standard_error)
    np.testing.assert_allclose((points.var(axis=1) - decoded.var(axis=1)).mean(), variance, rtol=0.05)


def test_noisy_points_add_the_observation_noise_and_data_points_are_the_images():
    from tf_avae.evaluation import displacement_points

    model = _gaussian_avae(0.2)
    images = np.random.default_rng(7).random((500, 4, 4, 3)).astype(np.float32)
    noise = displacement_points(model, images, "noisy", seed=1) - images
    assert abs(noise.mean()) < 0.01
    np.testing.assert_allclose(noise.std(), np.sqrt(0.2), rtol=0.02)
    assert not np.allclose(displacement_points(model, images, "noisy", seed=2) - images, noise)
    np.testing.assert_array_equal(displacement_points(model, images, "data"), images)
    with pytest.raises(ValueError, match="points must be one of"):
        displacement_points(model, images, "adversarial")
    with pytest.raises(TypeError, match="needs a tf_avae model"):
        displacement_points(_linear_encoder(np.ones((48, 1))), images, "delusion")
