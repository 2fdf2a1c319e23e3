"""Observation models p(x|z) that a decoder owns: how raw decoder outputs become a mean,
a log-likelihood and a sample."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tf_avae import objectives, rng
from tf_avae.validation import check_choice, check_positive

LIKELIHOODS = ("gaussian", "bernoulli")


class GaussianLikelihood(keras.layers.Layer):
    """N(x; mean, v I) with mean = sigmoid(raw) (or raw) and a fixed or learned scalar variance v."""

    def __init__(self, variance: float = 0.5, learn_variance: bool = False, mean_activation: str = "sigmoid", **kwargs):
        super().__init__(**kwargs)
        self.variance = check_positive("observation_variance", variance)
        self.learn_variance = bool(learn_variance)
        self.mean_activation = check_choice("mean_activation", mean_activation, ("sigmoid", "linear"))

    def build(self, input_shape=None):
        self.log_variance = self.add_weight(
            name="log_variance",
            shape=(),
            initializer=keras.initializers.Constant(math.log(self.variance)),
            trainable=self.learn_variance,
        )
        self.built = True

    def mean(self, raw):
        return tf.sigmoid(raw) if self.mean_activation == "sigmoid" else raw

    def log_prob(self, x, raw):
        return objectives.gaussian_log_likelihood(x, self.mean(raw), self.log_variance)

    def sample(self, raw, seed):
        noise = rng.normal(tf.shape(raw), seed, raw.dtype)
        return self.mean(raw) + tf.exp(0.5 * tf.cast(self.log_variance, raw.dtype)) * noise

    def get_config(self):
        return {
            **super().get_config(),
            "variance": self.variance,
            "learn_variance": self.learn_variance,
            "mean_activation": self.mean_activation,
        }


class BernoulliLikelihood(keras.layers.Layer):
    """Bernoulli(x; sigmoid(raw)); its mean is sigmoid(raw) and a sample is binary."""

    def mean(self, raw):
        return tf.sigmoid(raw)

    def log_prob(self, x, raw):
        return objectives.bernoulli_log_likelihood(x, raw)

    def sample(self, raw, seed):
        uniform = rng.uniform(tf.shape(raw), seed, raw.dtype)
        return tf.cast(uniform < tf.sigmoid(raw), raw.dtype)


def make_likelihood(name: str, variance: float = 0.5, learn_variance: bool = False, mean_activation: str = "sigmoid"):
    check_choice("likelihood", name, LIKELIHOODS)
    if name == "gaussian":
        return GaussianLikelihood(variance, learn_variance, mean_activation, name="likelihood")
    return BernoulliLikelihood(name="likelihood")
