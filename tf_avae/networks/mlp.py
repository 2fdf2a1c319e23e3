"""Fully connected encoder and decoder (the AVAE reference: 4 hidden layers of 200 ReLU units)."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tf_avae.networks.base import GaussianEncoder, ImageDecoder
from tf_avae.validation import check_positive_int


def _dense_stack(hidden_sizes, prefix):
    return [keras.layers.Dense(check_positive_int("hidden_sizes", h), activation="relu", name=f"{prefix}_{i}")
            for i, h in enumerate(hidden_sizes)]


@keras.saving.register_keras_serializable(package="tf_avae")
class MLPEncoder(GaussianEncoder):
    def __init__(self, image_shape, latent_dim=64, hidden_sizes=(200, 200, 200, 200), **kwargs):
        super().__init__(image_shape, latent_dim, **kwargs)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.flatten = keras.layers.Flatten()
        self.hidden = _dense_stack(self.hidden_sizes, "hidden")
        self.out = keras.layers.Dense(2 * self.latent_dim, name="gaussian_params")

    def features(self, images, training=None):
        h = self.flatten(images)
        for layer in self.hidden:
            h = layer(h)
        return h

    def head(self, features, training=None):
        return self.out(features)

    def get_config(self):
        return {**super().get_config(), "hidden_sizes": list(self.hidden_sizes)}


@keras.saving.register_keras_serializable(package="tf_avae")
class MLPDecoder(ImageDecoder):
    def __init__(self, image_shape, latent_dim=64, hidden_sizes=(200, 200, 200, 200), **kwargs):
        super().__init__(image_shape, latent_dim, **kwargs)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.hidden = _dense_stack(self.hidden_sizes, "hidden")
        self.out = keras.layers.Dense(math.prod(self.image_shape), name="pixels")
        self.reshape = keras.layers.Reshape(self.image_shape)

    def raw_outputs(self, latents, training=None):
        h = latents
        for layer in self.hidden:
            h = layer(h)
        return self.reshape(self.out(h))

    def get_config(self):
        return {**super().get_config(), "hidden_sizes": list(self.hidden_sizes)}
