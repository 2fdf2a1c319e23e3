"""The one base class every model derives from.

It owns the encoder and decoder, the seed, the metric trackers, `train_step` / `test_step`, the
loss scaling that keeps distributed gradients equal to single-device ones, input checks and
`get_config`. A model subclass only says how its per-example loss terms are computed
(`compute_loss_terms`), using the shared building blocks below.
"""

from __future__ import annotations

import warnings
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tf_avae import objectives, rng
from tf_avae.networks.base import GaussianEncoder, ImageDecoder
from tf_avae.networks.likelihoods import GaussianLikelihood
from tf_avae.validation import (check_choice, check_image_array, check_non_negative, check_open_interval,
                                check_tensor_image_spec)

# log sigma^2 of q(z|x) is clipped to this range where z is sampled (`sample_posterior`): sigma in [3e-7, 2.2e4].
LOG_VARIANCE_RANGE = (-30.0, 20.0)

# How a posterior sample is scaled (`posterior_scale`): "std" draws z = mu + sigma * eps, the reparameterisation
# the losses assume; "variance" draws z = mu + sigma^2 * eps, as DeepMind's public AVAE code does (its encoder's
# `sample` multiplies eps by the variance). The second exists to test whether that difference matters.
POSTERIOR_SCALES = ("std", "variance")


class RepresentationModel(keras.Model):
    """Base of VAE, AE, AAVAE, AVAE, SE, SE-AVAE and AVAE-SS.

    Subclasses set `loss_term_names` (tracked besides the total `loss`) and implement
    `compute_loss_terms(images, step, training) -> dict` of per-example tensors [B] with a
    `"loss"` entry plus one entry per name in `loss_term_names`.

    `call(images)` is deterministic: it returns the posterior mean, its log-variance and the
    decoder mean at the posterior mean (the reconstruction).
    """

    loss_term_names: tuple[str, ...] = ("reconstruction", "kl")

    def __init__(self, encoder: GaussianEncoder, decoder: ImageDecoder, seed: int = 0, posterior_scale: str = "std",
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(encoder, GaussianEncoder):
            raise TypeError(f"encoder must be a tf_avae GaussianEncoder; got {type(encoder).__name__}.")
        if not isinstance(decoder, ImageDecoder):
            raise TypeError(f"decoder must be a tf_avae ImageDecoder; got {type(decoder).__name__}.")
        if tuple(encoder.image_shape) != tuple(decoder.image_shape):
            raise ValueError(
                f"decoder.image_shape {tuple(decoder.image_shape)} must equal encoder.image_shape "
                f"{tuple(encoder.image_shape)}."
            )
        if encoder.latent_dim != decoder.latent_dim:
            raise ValueError(
                f"decoder.latent_dim ({decoder.latent_dim}) must equal encoder.latent_dim ({encoder.latent_dim})."
            )
        self.encoder = encoder.ensure_built()
        self.decoder = decoder.ensure_built()
        self.seed = int(seed)
        self.posterior_scale = check_choice("posterior_scale", posterior_scale, POSTERIOR_SCALES)
        self.image_shape = tuple(encoder.image_shape)
        self.latent_dim = encoder.latent_dim
        self.augmentation = None  # AAVAE's, or an AVAE's optional one: those set it (`built_augmentation`)
        self._trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss",) + tuple(self.loss_term_names)
        }

    def built_augmentation(self, augmentation):
        """`augmentation` checked (a Keras layer) and built on this model's image shape, for AAVAE and AVAE."""
        if not isinstance(augmentation, keras.layers.Layer):
            raise TypeError(f"augmentation must be a keras Layer; got {type(augmentation).__name__}.")
        augmentation(keras.ops.zeros((1, *self.image_shape)), training=False)
        return augmentation

    def _finish_build(self):
        """Runs one forward pass so every weight exists before `fit`, a strategy or an export."""
        self(tf.zeros((1, *self.image_shape)), training=False)

    # ----------------------------------------------------------------- public helpers
    def encode(self, images, training=False):
        """(mean, log_variance) of q(z|images)."""
        return self.encoder(images, training=training)

    def decode(self, latents, training=False):
        """Decoder mean g(z)."""
        return self.decoder(latents, training=training)

    def call(self, images, training=False):
        mean, log_variance = self.encoder(images, training=training)
        return {"mean": mean, "log_variance": log_variance, "reconstruction": self.decoder(mean, training=training)}

    # ----------------------------------------------------------------- loss building blocks
    def loss_precision(self, *tensors):
        """Casts network outputs to the variable dtype (float32 under mixed precision) for the loss terms."""
        return tuple(tf.cast(t, self.dtype) for t in tensors)

    def sample_posterior(self, mean, log_variance, seed):
        """z = mean + sigma * eps (reparameterised), with log sigma^2 clipped to `LOG_VARIANCE_RANGE`; with
        `posterior_scale="variance"`, z = mean + sigma^2 * eps (the reference code's draw, `POSTERIOR_SCALES`).

        The clip is the identity in any healthy run (|log sigma^2| stays far inside it). It matters when nothing
        bounds the variance: with beta = 0 (AAVAE's default) the encoder's outputs, variance included, can grow
        without limit, and exp(log sigma^2 / 2) overflowed to inf within 20 steps on colorMNIST (lr 1e-3).
        """
        log_variance = tf.clip_by_value(log_variance, *LOG_VARIANCE_RANGE)
        log_scale = 0.5 * log_variance if self.posterior_scale == "std" else log_variance
        return mean + tf.exp(log_scale) * rng.normal(tf.shape(mean), seed, mean.dtype)

    def elbo_terms(self, encoder_input, target, step, training, beta):
        """Negative-ELBO pieces for q(z|encoder_input) and p(target|z).

        Returns (terms, state): terms holds per-example `reconstruction` (-log p(target|z)) and `kl`;
        state holds `mean`, `log_variance`, `latents` and the decoder's `raw` outputs at z, which
        the auxiliary terms of subclasses reuse.
        """
        mean, log_variance = self.loss_precision(*self.encoder(encoder_input, training=training))
        latents = self.sample_posterior(mean, log_variance, rng.step_seed(self.seed, step, rng.POSTERIOR_STREAM))
        # A frozen decoder (AVAE-SS) runs in inference mode: its batch statistics never move.
        (raw,) = self.loss_precision(self.decoder.raw_outputs(latents, training=training and self.decoder.trainable))
        reconstruction = -self.decoder.log_prob(self.loss_precision(target)[0], raw)
        kl = objectives.gaussian_kl_to_standard_normal(mean, log_variance)
        # beta = 0 leaves the KL out of the loss (0 * inf would be NaN); it is still reported.
        loss = reconstruction + beta * kl if beta else reconstruction
        terms = {"reconstruction": reconstruction, "kl": kl, "loss": loss}
        state = {"mean": mean, "log_variance": log_variance, "latents": latents, "raw": raw}
        return terms, state

    def coupling_terms(self, mean, log_variance, auxiliary_images, rho, training):
        """The smoothness terms of AVAE / SE for an auxiliary observation x~ (a constant input).

        Returns per-example (-E[log p_rho(z'|z)], H[q(z'|x~)]); the loss adds the first and
        subtracts the second. Gradients reach the encoder through both encodings.
        """
        mean_aux, log_variance_aux = self.loss_precision(*self.encoder(auxiliary_images, training=training))
        coupling = -objectives.expected_coupling_log_density(mean, log_variance, mean_aux, log_variance_aux, rho)
        entropy = objectives.gaussian_entropy(log_variance_aux)
        return coupling, entropy

    def compute_loss_terms(self, images, step, training):
        raise NotImplementedError

    # ----------------------------------------------------------------- Keras steps
    def _images_from(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        if isinstance(images, dict):
            raise TypeError("x must be a batch of images, not a dict; got keys " + str(sorted(images)))
        check_tensor_image_spec("x", images.shape, images.dtype, self.image_shape)
        return tf.cast(images, self.compute_dtype)

    def trainable_parameters(self):
        """The variables a train step updates (every model but AVAE-SS: all trainable ones)."""
        return self.trainable_variables

    def batch_images(self, data, step, training):
        """The images a step trains on: by default the `x` of the batch Keras hands the step.

        AVAE-SS overrides this to draw its batch from its frozen decoder instead.
        """
        return self._images_from(data)

    def train_step(self, data):
        step = self.optimizer.iterations
        images = self.batch_images(data, step, training=True)
        variables = self.trainable_parameters()
        with tf.GradientTape() as tape:
            terms = self.compute_loss_terms(images, step, training=True)
            loss = tf.reduce_mean(tf.cast(terms["loss"], tf.float32))
            # Each replica holds 1/R of the global batch and the optimizer sums replica gradients:
            # dividing by R makes the summed gradient that of the global-batch mean.
            scaled = loss / tf.cast(self.distribute_strategy.num_replicas_in_sync, loss.dtype)
            scaled = self.optimizer.scale_loss(scaled)
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply(gradients, variables)
        return self._update_trackers(terms)

    def test_step(self, data):
        # Evaluation noise uses negative step numbers, apart from every training step's noise.
        step = -1 - tf.cast(self.optimizer.iterations, tf.int64) if self.optimizer is not None else -1
        images = self.batch_images(data, step, training=False)
        terms = self.compute_loss_terms(images, step, training=False)
        return self._update_trackers(terms)

    def _update_trackers(self, terms):
        for name, tracker in self._trackers.items():
            tracker.update_state(tf.cast(terms[name], tf.float32))
        return {name: tracker.result() for name, tracker in self._trackers.items()}

    @property
    def metrics(self):
        return list(self._trackers.values())

    # ----------------------------------------------------------------- boundary checks
    def _checked_inputs(self, x):
        if isinstance(x, np.ndarray) or (tf.is_tensor(x) and not isinstance(x, tf.data.Dataset)):
            return check_image_array("x", np.asarray(x), self.image_shape)
        return x

    def saturation_risk(self) -> str | None:
        """Why this model's training may stall, or None.

        Without a KL term (beta = 0, or the AE) nothing bounds the codes. With a Gaussian decoder whose mean is
        a sigmoid they grow until it saturates: on colorMNIST at lr 1e-3, |mu| reached hundreds within a few
        hundred Adam steps, the gradient norm fell to ~1e-12 and the AE and the beta-0 AAVAE stalled at the mean
        image (docs/results.md, "The decoder mean must be linear without a KL term").
        """
        likelihood = self.decoder.likelihood
        if (getattr(self, "beta", 0.0) == 0.0 and self.decoder.trainable and self.encoder.trainable
                and isinstance(likelihood, GaussianLikelihood) and likelihood.mean_activation == "sigmoid"):
            return (f"{type(self).__name__} has no KL term (beta = 0) and a Gaussian decoder with "
                    "mean_activation='sigmoid': nothing bounds its codes, and such runs stalled at the mean image "
                    "once the sigmoid saturated. Build the decoder with mean_activation='linear' (the AAVAE "
                    "authors' decoder) or give the model beta > 0.")
        return None

    def fit(self, x=None, y=None, *args, **kwargs):
        risk = self.saturation_risk()
        if risk:
            warnings.warn(risk, UserWarning, stacklevel=2)
        return super().fit(self._checked_inputs(x), y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        return super().evaluate(self._checked_inputs(x), y, *args, **kwargs)

    # ----------------------------------------------------------------- serialisation
    def get_config(self) -> dict[str, Any]:
        config = {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "seed": self.seed,
            "posterior_scale": self.posterior_scale,
        }
        if self.augmentation is not None:  # deserialised by `from_config`
            config["augmentation"] = keras.saving.serialize_keras_object(self.augmentation)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder", "augmentation"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def check_beta(beta) -> float:
    return check_non_negative("beta", beta)


def check_rho(rho, name: str = "rho") -> float:
    return check_open_interval(name, rho, -1.0, 1.0)
