"""Helpers every model test reuses: small networks, one factory per model, round trips."""

from __future__ import annotations

import contextlib
import importlib.util
import pathlib

import keras
import numpy as np
import tensorflow as tf

from tf_avae import models
from tf_avae.networks import build_networks

IMAGE_SHAPE = (28, 28, 3)
CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs"


def load_config(name, arg=None):
    """`get_config(arg)` of configs/<name>.py (`name` may also be the config file's path)."""
    path = pathlib.Path(name) if str(name).endswith(".py") else CONFIG_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def images(n=8, shape=IMAGE_SHAPE, seed=0):
    return np.random.default_rng(seed).random((n, *shape)).astype(np.float32)


def networks(architecture="conv", image_shape=IMAGE_SHAPE, latent_dim=8, **kwargs):
    if architecture == "conv":
        kwargs.setdefault("filters", (8, 16))
        kwargs.setdefault("dense_units", 32)
    if architecture == "mlp":
        kwargs.setdefault("hidden_sizes", (32, 32))
    if architecture == "resnet":
        kwargs.setdefault("width", 4)
        kwargs.setdefault("blocks_per_stage", (1, 1, 1, 1))
        kwargs.setdefault("head_units", 16)
    return build_networks(architecture, image_shape, latent_dim, **kwargs)


class Shift(keras.layers.Layer):
    """A deterministic 'augmentation' for tests: adds a constant in training, identity otherwise."""

    def __init__(self, amount=0.25, **kwargs):
        super().__init__(**kwargs)
        self.amount = amount

    def call(self, x, training=None):
        return x + self.amount if training else x

    def get_config(self):
        return {**super().get_config(), "amount": self.amount}


keras.saving.register_keras_serializable(package="tf_avae_tests")(Shift)


def _augmentation():
    from tf_avae.augment import SimCLRAugment

    return SimCLRAugment(crop_scale=(0.5, 1.0), flip=True, seed=3)


def _noise():
    from tf_avae.augment import GaussianNoiseAugment

    return GaussianNoiseAugment(0.3, seed=2)


MODEL_FACTORIES = {
    "VAE": lambda e, d: models.VAE(e, d, beta=1.0, seed=1),
    "AE": lambda e, d: models.AE(e, d, seed=1),
    "AAVAE": lambda e, d: models.AAVAE(e, d, augmentation=_augmentation(), seed=1),
    "AVAE": lambda e, d: models.AVAE(e, d, rho=0.9, seed=1),
    "AVAE_mean": lambda e, d: models.AVAE(e, d, rho=0.9, delusion="mean", seed=1),
    "AVAE_noise": lambda e, d: models.AVAE(e, d, rho=0.9, augmentation=_noise(), seed=1),
    "AVAE_moved": lambda e, d: models.AVAE(e, d, rho=0.9, delusion_offset="random", offset_scale=0.5, seed=1),
    "SE": lambda e, d: models.SmoothEncoder(e, d, epsilon=0.1, pgd_steps=2, rho=0.9, seed=1),
    "SEAVAE": lambda e, d: models.SEAVAE(e, d, rho=0.9, se_rho=0.8, epsilon=0.1, pgd_steps=2, seed=1),
}


def make_model(name, architecture="conv", **network_kwargs):
    encoder, decoder = networks(architecture, **network_kwargs)
    return MODEL_FACTORIES[name](encoder, decoder)


def compiled(model, learning_rate=1e-3, optimizer="adam"):
    opt = keras.optimizers.SGD(learning_rate) if optimizer == "sgd" else keras.optimizers.Adam(learning_rate)
    model.compile(optimizer=opt)
    return model


def loss_terms_at(model, batch, step=0, training=False):
    return {k: v.numpy() for k, v in model.compute_loss_terms(tf.constant(batch), tf.constant(step, tf.int64),
                                                              training=training).items()}


@contextlib.contextmanager
def recorded_inputs(obj, method):
    """Patches `obj.<method>` for the block to record (as numpy) the first argument of every call."""
    seen, original = [], getattr(obj, method)

    def recording(x, *args, **kwargs):
        seen.append(x.numpy())
        return original(x, *args, **kwargs)

    setattr(obj, method, recording)
    try:
        yield seen
    finally:
        setattr(obj, method, original)


def save_and_reload(model, path):
    path = str(path)
    model.save(path)
    return keras.saving.load_model(path)
