"""Base classes: a Gaussian encoder returns (mean, log_variance); a decoder returns the image mean
and owns the likelihood of its observation model."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_avae.networks.likelihoods import make_likelihood
from tf_avae.validation import check_image_shape, check_positive_int, check_tensor_image_spec


class GaussianEncoder(keras.Model):
    """q(z|x) = N(mean(x), diag exp(log_variance(x))).

    Subclasses create their layers in `__init__` and implement `features(x)` (the backbone
    representation a linear probe may read) and `head(features)` -> [B, 2 * latent_dim]; they
    name their last layer `self.out` (its being built tells that every weight exists).
    """

    def __init__(self, image_shape, latent_dim: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = check_image_shape("image_shape", image_shape)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)

    def features(self, images, training=None):
        raise NotImplementedError

    def head(self, features, training=None):
        raise NotImplementedError

    def call(self, images, training=None):
        check_tensor_image_spec("images", images.shape, images.dtype, self.image_shape)
        params = self.head(self.features(images, training=training), training=training)
        mean, log_variance = tf.split(params, 2, axis=-1)
        return mean, log_variance

    def build(self, input_shape=None):
        # Sublayers create their weights on the first call (ensure_built runs one).
        self.built = True

    def ensure_built(self):
        """Creates every weight by running one example through the network."""
        if not self.out.built:
            self(tf.zeros((1, *self.image_shape)), training=False)
        return self

    def get_config(self):
        return {**super().get_config(), "image_shape": list(self.image_shape), "latent_dim": self.latent_dim}


class ImageDecoder(keras.Model):
    """p(x|z): `raw_outputs(z)` gives the likelihood's parameters, `call(z)` the image mean.

    Subclasses create their layers in `__init__`, implement `raw_outputs` and name their last
    layer `self.out`.
    """

    def __init__(
        self,
        image_shape,
        latent_dim: int = 64,
        likelihood: str = "gaussian",
        observation_variance: float = 0.5,
        learn_variance: bool = False,
        mean_activation: str = "sigmoid",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_shape = check_image_shape("image_shape", image_shape)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.likelihood_name = likelihood
        self.observation_variance = observation_variance
        self.learn_variance = learn_variance
        self.mean_activation = mean_activation
        self.likelihood = make_likelihood(likelihood, observation_variance, learn_variance, mean_activation)

    def raw_outputs(self, latents, training=None):
        raise NotImplementedError

    def call(self, latents, training=None):
        return self.likelihood.mean(self.raw_outputs(latents, training=training))

    def log_prob(self, images, raw):
        """log p(images | z) per example, for decoder outputs `raw = raw_outputs(z)`."""
        return self.likelihood.log_prob(images, raw)

    def sample(self, raw, seed):
        """x ~ p(x|z): the mean plus the observation noise, from a stateless seed."""
        return self.likelihood.sample(raw, seed)

    def build(self, input_shape=None):
        # Sublayers create their weights on the first call (ensure_built runs one).
        self.built = True

    def ensure_built(self):
        """Creates every weight (the likelihood's too) by decoding one latent vector."""
        if not self.likelihood.built:
            self.likelihood.build()
        if not self.out.built:
            self(tf.zeros((1, self.latent_dim)), training=False)
        return self

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": list(self.image_shape),
            "latent_dim": self.latent_dim,
            "likelihood": self.likelihood_name,
            "observation_variance": self.observation_variance,
            "learn_variance": self.learn_variance,
            "mean_activation": self.mean_activation,
        }
