"""Convolutional encoder/decoder for small images (28x28 colorMNIST, 64x64 CelebA).

Each of the `filters` stages halves (encoder) or doubles (decoder) the spatial size, so the image
size must be divisible by 2 ** len(filters): 28 with two stages (7x7 bottleneck), 64 with four (4x4).
"""

from __future__ import annotations

import keras

from tf_avae.networks.normalization import SyncBatchNormalization
from tf_avae.networks.base import GaussianEncoder, ImageDecoder
from tf_avae.validation import check_positive_int


def default_filters(image_shape):
    """Two stages for 28x28, four for 64x64; otherwise as many halvings as keep the size >= 4."""
    height = image_shape[0]
    if height == 28:
        return (32, 64)
    stages = 0
    while height % 2 == 0 and height // 2 >= 4 and stages < 4:
        height //= 2
        stages += 1
    return tuple([32, 32, 64, 64][:stages]) or (32,)


def _check_divisible(image_shape, filters):
    factor = 2 ** len(filters)
    if image_shape[0] % factor or image_shape[1] % factor:
        raise ValueError(
            f"image_shape {tuple(image_shape)} must have height and width divisible by 2**len(filters) = {factor} "
            f"for filters={tuple(filters)}."
        )
    return image_shape[0] // factor, image_shape[1] // factor


def _normalisation(batch_norm, name):
    # Statistics are all-reduced across replicas, so distributed steps equal single-device ones.
    return SyncBatchNormalization(name=name) if batch_norm else None


@keras.saving.register_keras_serializable(package="tf_avae")
class ConvEncoder(GaussianEncoder):
    def __init__(self, image_shape, latent_dim=64, filters=None, dense_units=256, batch_norm=False, **kwargs):
        super().__init__(image_shape, latent_dim, **kwargs)
        self.filters = tuple(int(f) for f in (filters or default_filters(self.image_shape)))
        self.dense_units = check_positive_int("dense_units", dense_units)
        self.batch_norm = bool(batch_norm)
        _check_divisible(self.image_shape, self.filters)
        self.convs = [keras.layers.Conv2D(f, 4, strides=2, padding="same", name=f"conv_{i}")
                      for i, f in enumerate(self.filters)]
        self.norms = [_normalisation(self.batch_norm, f"norm_{i}") for i in range(len(self.filters))]
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(self.dense_units, activation="relu", name="dense")
        self.out = keras.layers.Dense(2 * self.latent_dim, name="gaussian_params")

    def features(self, images, training=None):
        h = images
        for conv, norm in zip(self.convs, self.norms):
            h = conv(h)
            if norm is not None:
                h = norm(h, training=training)
            h = keras.activations.relu(h)
        return self.dense(self.flatten(h))

    def head(self, features, training=None):
        return self.out(features)

    def get_config(self):
        return {**super().get_config(), "filters": list(self.filters), "dense_units": self.dense_units,
                "batch_norm": self.batch_norm}


@keras.saving.register_keras_serializable(package="tf_avae")
class ConvDecoder(ImageDecoder):
    def __init__(self, image_shape, latent_dim=64, filters=None, dense_units=256, batch_norm=False, **kwargs):
        super().__init__(image_shape, latent_dim, **kwargs)
        self.filters = tuple(int(f) for f in (filters or default_filters(self.image_shape)))
        self.dense_units = check_positive_int("dense_units", dense_units)
        self.batch_norm = bool(batch_norm)
        start_h, start_w = _check_divisible(self.image_shape, self.filters)
        deepest = self.filters[-1]
        self.dense = keras.layers.Dense(self.dense_units, activation="relu", name="dense")
        self.project = keras.layers.Dense(start_h * start_w * deepest, activation="relu", name="project")
        self.reshape = keras.layers.Reshape((start_h, start_w, deepest))
        up_filters = list(reversed(self.filters))[1:] + [self.filters[0]]
        self.deconvs = [keras.layers.Conv2DTranspose(f, 4, strides=2, padding="same", name=f"deconv_{i}")
                        for i, f in enumerate(up_filters)]
        self.norms = [_normalisation(self.batch_norm, f"norm_{i}") for i in range(len(up_filters))]
        self.out = keras.layers.Conv2D(self.image_shape[-1], 3, padding="same", name="pixels")

    def raw_outputs(self, latents, training=None):
        h = self.reshape(self.project(self.dense(latents)))
        for deconv, norm in zip(self.deconvs, self.norms):
            h = deconv(h)
            if norm is not None:
                h = norm(h, training=training)
            h = keras.activations.relu(h)
        return self.out(h)

    def get_config(self):
        return {**super().get_config(), "filters": list(self.filters), "dense_units": self.dense_units,
                "batch_norm": self.batch_norm}
