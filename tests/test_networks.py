"""Encoders and decoders: shapes per architecture and image size, likelihood options, argument errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_avae import models, objectives
from tf_avae.networks import build_networks

SMALL = {"mlp": {"hidden_sizes": (16, 16)}, "conv": {"dense_units": 16},
         "resnet": {"width": 4, "blocks_per_stage": (1, 1, 1, 1), "head_units": 8}}


@pytest.mark.parametrize("architecture, shape", [
    ("mlp", (28, 28, 3)), ("conv", (28, 28, 3)), ("conv", (28, 28, 1)), ("conv", (64, 64, 3)),
    ("resnet", (32, 32, 3)), ("resnet", (96, 96, 3)),
])
def test_encoder_and_decoder_shapes(architecture, shape):
    encoder, decoder = build_networks(architecture, shape, 6, **SMALL[architecture])
    images = np.random.default_rng(0).random((3, *shape)).astype(np.float32)
    mean, log_variance = encoder(images)
    assert mean.shape == (3, 6) and log_variance.shape == (3, 6)
    reconstruction = decoder(mean).numpy()
    assert reconstruction.shape == (3, *shape)
    assert reconstruction.min() >= 0.0 and reconstruction.max() <= 1.0  # sigmoid mean
    assert encoder.features(images).shape[0] == 3


def test_a_learned_observation_variance_is_trained_and_enters_the_likelihood():
    encoder, decoder = build_networks("mlp", (28, 28, 1), 4, learn_variance=True, observation_variance=0.5,
                                      **SMALL["mlp"])
    model = models.VAE(encoder, decoder, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    log_variance = decoder.likelihood.log_variance
    assert any(v is log_variance for v in decoder.trainable_variables)
    before = float(log_variance.numpy())
    np.testing.assert_allclose(before, np.log(0.5), rtol=1e-6)
    images = np.random.default_rng(1).random((64, 28, 28, 1)).astype(np.float32)
    model.fit(images, batch_size=32, epochs=3, verbose=0)
    assert abs(float(log_variance.numpy()) - before) > 1e-3
    raw = decoder.raw_outputs(tf.zeros((2, 4)))
    expected = objectives.gaussian_log_likelihood(images[:2], tf.sigmoid(raw), log_variance)
    np.testing.assert_allclose(decoder.log_prob(images[:2], raw), expected, rtol=1e-6)


def test_fixed_variance_is_not_trainable():
    _, decoder = build_networks("mlp", (28, 28, 1), 4, **SMALL["mlp"])
    decoder.ensure_built()
    assert not any(v is decoder.likelihood.log_variance for v in decoder.trainable_variables)
    assert any(v is decoder.likelihood.log_variance for v in decoder.weights)


def test_bernoulli_decoder_samples_binary_images_with_the_mean_as_frequency():
    _, decoder = build_networks("mlp", (28, 28, 1), 4, likelihood="bernoulli", **SMALL["mlp"])
    raw = decoder.raw_outputs(tf.zeros((1, 4)))
    raw = tf.repeat(raw, 4000, axis=0)
    sample = decoder.sample(raw, tf.constant([1, 2], tf.int64)).numpy()
    assert set(np.unique(sample)) <= {0.0, 1.0}
    np.testing.assert_allclose(sample.mean(0), tf.sigmoid(raw[0]).numpy(), atol=0.04)
    x = (np.random.default_rng(0).random((1, 28, 28, 1)) > 0.5).astype(np.float32)
    np.testing.assert_allclose(decoder.log_prob(x, raw[:1]), objectives.bernoulli_log_likelihood(x, raw[:1]),
                               rtol=1e-6)


@pytest.mark.parametrize("architecture, shape, kwargs, message", [
    ("conv", (30, 30, 3), {"filters": (8, 8)}, "divisible"),
    ("resnet", (36, 36, 3), {"width": 4}, "divisible"),
    ("mlp", (28, 28), {}, "image_shape"),
    ("mlp", (28, 28, 3), {"likelihood": "poisson"}, "likelihood"),
    ("mlp", (28, 28, 3), {"observation_variance": 0.0}, "observation_variance"),
    ("vit", (28, 28, 3), {}, "architecture"),
    ("mlp", (28, 28, 3), {"no_such_width": 3}, "no_such_width"),
])
def test_bad_network_arguments_are_named(architecture, shape, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build_networks(architecture, shape, 4, **kwargs)


def test_an_encoder_rejects_images_of_another_size_by_name():
    encoder, _ = build_networks("conv", (28, 28, 3), 4, **SMALL["conv"])
    with pytest.raises(ValueError, match=r"images must have images of shape \(28, 28, 3\)"):
        encoder(np.zeros((2, 32, 32, 3), np.float32))
