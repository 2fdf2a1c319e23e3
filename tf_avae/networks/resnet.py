"""ResNet-18 encoder with the CIFAR stem (3x3 conv, stride 1, no max-pool) and a mirrored
upsampling decoder, as AAVAE uses for 32x32 (CIFAR-10) and 96x96 (STL-10) images.

The encoder's `features` are the globally pooled backbone activations (8 * width channels);
the linear probe of AAVAE reads those, not the latent mean. The projection head is
features -> Dense(head_units) -> BN -> ReLU -> (mean, log_variance).
"""

from __future__ import annotations

import keras

from tf_avae.networks.normalization import SyncBatchNormalization
from tf_avae.networks.base import GaussianEncoder, ImageDecoder
from tf_avae.validation import check_positive_int


def _bn(name):
    # Statistics are all-reduced across replicas, so distributed steps equal single-device ones.
    return SyncBatchNormalization(name=name)


class _BasicBlock(keras.layers.Layer):
    """Two 3x3 convolutions with a residual connection; `resample` is 'down' (stride 2), 'up' or None."""

    def __init__(self, filters, resample=None, project=False, **kwargs):
        super().__init__(**kwargs)
        stride = 2 if resample == "down" else 1
        self.resample = resample
        self.upsample = keras.layers.UpSampling2D(2, interpolation="nearest") if resample == "up" else None
        self.conv1 = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)
        self.bn1 = _bn("bn1")
        self.conv2 = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.bn2 = _bn("bn2")
        self.shortcut = None
        if project:
            self.shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False)
            self.shortcut_bn = _bn("shortcut_bn")

    def call(self, x, training=None):
        if self.upsample is not None:
            x = self.upsample(x)
        h = keras.activations.relu(self.bn1(self.conv1(x), training=training))
        h = self.bn2(self.conv2(h), training=training)
        skip = x if self.shortcut is None else self.shortcut_bn(self.shortcut(x), training=training)
        return keras.activations.relu(h + skip)


@keras.saving.register_keras_serializable(package="tf_avae")
class ResNetEncoder(GaussianEncoder):
    """ResNet-18 (2 blocks per stage, 4 stages) with a CIFAR stem; `width` is the first stage's channels (64)."""

    def __init__(self, image_shape, latent_dim=128, width=64, blocks_per_stage=(2, 2, 2, 2), head_units=512, **kwargs):
        super().__init__(image_shape, latent_dim, **kwargs)
        self.width = check_positive_int("width", width)
        self.blocks_per_stage = tuple(int(b) for b in blocks_per_stage)
        self.head_units = check_positive_int("head_units", head_units)
        self.stem = keras.layers.Conv2D(self.width, 3, padding="same", use_bias=False, name="stem")
        self.stem_bn = _bn("stem_bn")
        self.blocks = []
        in_channels = self.width
        for stage, count in enumerate(self.blocks_per_stage):
            filters = self.width * 2**stage
            for i in range(count):
                down = stage > 0 and i == 0
                self.blocks.append(_BasicBlock(filters, "down" if down else None, project=filters != in_channels or down,
                                               name=f"stage{stage}_block{i}"))
                in_channels = filters
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.head_dense = keras.layers.Dense(self.head_units, use_bias=False, name="head_dense")
        self.head_bn = _bn("head_bn")
        self.out = keras.layers.Dense(2 * self.latent_dim, name="gaussian_params")

    def features(self, images, training=None):
        h = keras.activations.relu(self.stem_bn(self.stem(images), training=training))
        for block in self.blocks:
            h = block(h, training=training)
        return self.pool(h)

    def head(self, features, training=None):
        h = keras.activations.relu(self.head_bn(self.head_dense(features), training=training))
        return self.out(h)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "blocks_per_stage": list(self.blocks_per_stage),
                "head_units": self.head_units}


@keras.saving.register_keras_serializable(package="tf_avae")
class ResNetDecoder(ImageDecoder):
    """Mirror of the encoder: latent -> Dense -> (H/8, W/8, 8*width) -> 3 upsampling stages -> 3x3 conv."""

    def __init__(self, image_shape, latent_dim=128, width=64, blocks_per_stage=(2, 2, 2, 2), **kwargs):
        super().__init__(image_shape, latent_dim, **kwargs)
        self.width = check_positive_int("width", width)
        self.blocks_per_stage = tuple(int(b) for b in blocks_per_stage)
        stages = len(self.blocks_per_stage)
        factor = 2 ** (stages - 1)
        height, width_px = self.image_shape[:2]
        if height % factor or width_px % factor:
            raise ValueError(f"image_shape {tuple(self.image_shape)} must be divisible by {factor} for "
                             f"{stages} ResNet stages.")
        deepest = self.width * 2 ** (stages - 1)
        self.project = keras.layers.Dense((height // factor) * (width_px // factor) * deepest, name="project")
        self.reshape = keras.layers.Reshape((height // factor, width_px // factor, deepest))
        self.blocks = []
        in_channels = deepest
        for stage in reversed(range(stages)):
            filters = self.width * 2**stage
            for i in range(self.blocks_per_stage[stage]):
                up = stage < stages - 1 and i == 0
                self.blocks.append(_BasicBlock(filters, "up" if up else None, project=filters != in_channels,
                                               name=f"stage{stage}_block{i}"))
                in_channels = filters
        self.out = keras.layers.Conv2D(self.image_shape[-1], 3, padding="same", name="pixels")

    def raw_outputs(self, latents, training=None):
        h = keras.activations.relu(self.reshape(self.project(latents)))
        for block in self.blocks:
            h = block(h, training=training)
        return self.out(h)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "blocks_per_stage": list(self.blocks_per_stage)}
