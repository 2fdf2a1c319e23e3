"""AVAE-SS: post-train the encoder of a trained VAE on its own decoder's samples (self-supervised).

Each step draws z0 ~ N(0, I) (`batch_size` of them), generates x from the frozen decoder at z0
(x ~ p(x|z0) with observation noise for `delusion="sample"`, the mean g(z0) for `"mean"`) and takes
one step on the AVAE loss of that x (ELBO with the frozen decoder + delusion coupling - entropy).
Only the encoder trains. No training data is read.

Decisions
---------
* **It is an AVAE.** `AVAESS` subclasses `AVAE`: its loss on a batch is the AVAE loss, unchanged;
  all it adds is where the batch comes from. `compute_loss_terms(images, step, training)` with
  `images=None` draws the batch from the generative model with the step's seed, and with a tensor
  computes the AVAE loss on it (what tests and `loss_terms_at` use).
* **Where the batch comes from.** The base `train_step`/`test_step` get their images from the
  `batch_images(data, step, training)` hook; AVAE-SS overrides it to ignore `data` and draw the
  step's batch from the decoder, so the base step (trackers, loss scaling across replicas,
  `trainable_parameters`) runs unchanged.
* **Frozen decoder.** `decoder.trainable = False` and `trainable_parameters()` returns the
  encoder's trainable variables only. Both the generating pass and the base's ELBO pass call a
  non-trainable decoder with `training=False`, so its batch statistics never move. A test checks
  every decoder weight, moving statistics included, bit for bit.
* **Data-less `fit`.** Keras 3.15 has no data-less fit: `fit(x=None, steps_per_epoch=S)` fails
  inside `ArrayDataAdapter` ("pop from an empty set"). `AVAESS.fit(epochs=E, steps_per_epoch=S)`
  (and `evaluate(steps=S)`) therefore hands Keras an internal `_NoData` adapter. It is a Keras
  `DataAdapter` (Keras passes those through unchanged) whose "dataset" is a
  `tf.distribute.DistributedDataset` (so Keras does not distribute it) yielding Python `None` once
  per step. For a plain Python iterator Keras' train function calls the compiled step with
  `data=None`; no `tf.data` pipeline, iterator or user data exists at any point, and the step
  ignores its `data` argument. Passing `x`, `y`, `validation_data`, ... raises. This relies on three
  behaviours of the Keras 3.15 TensorFlow trainer, read in its source (`get_data_adapter` returns a
  `DataAdapter` as is; `TFEpochIterator` does not re-distribute a `DistributedDataset`; the train
  function feeds a non-`tf.data` iterator's items to the compiled step one by one); the tests fail
  loudly if a Keras upgrade changes them.
* **Batch size under a strategy.** `batch_size` is the global batch; each of R replicas draws
  `batch_size / R` examples (it must divide) with `tf_avae.rng`, which keeps a distributed step
  equal to a single-device step.
"""

from __future__ import annotations

import itertools

import keras
import tensorflow as tf
from keras.src.trainers.data_adapters.data_adapter import DataAdapter

from tf_avae import rng
from tf_avae.models.avae import AVAE
from tf_avae.models.vae import VAE
from tf_avae.validation import check_positive_int


class _NoData(DataAdapter):
    """What AVAE-SS gives Keras instead of data: one `None` per step, no tf.data, no user data."""

    def __init__(self, steps: int, batch_size: int):
        self._steps = steps
        self._batch_size = batch_size

    def _ticks(self):
        return itertools.repeat(None)

    def get_tf_dataset(self):
        return _NoDataTicks(self._ticks)

    def get_numpy_iterator(self):
        return self._ticks()

    get_jax_iterator = get_numpy_iterator
    get_torch_dataloader = get_numpy_iterator

    @property
    def num_batches(self):
        return self._steps

    @property
    def batch_size(self):
        return self._batch_size

    @property
    def has_partial_batch(self):
        return False

    @property
    def partial_batch_size(self):
        return None


class _NoDataTicks(tf.distribute.DistributedDataset):
    """Already 'distributed' (nothing to distribute): iterating gives a Python iterator of `None`."""

    def __init__(self, ticks):
        self._make_ticks = ticks

    def __iter__(self):
        return self._make_ticks()

    @property
    def element_spec(self):
        return None


_DATA_ARGUMENTS = ("y", "sample_weight", "validation_data", "validation_split", "validation_steps",
                   "validation_batch_size", "validation_freq", "class_weight", "batch_size", "shuffle")


@keras.saving.register_keras_serializable(package="tf_avae")
class AVAESS(AVAE):
    """AVAE loss on x drawn from the frozen decoder (z0 ~ N(0, I)); only the encoder trains.

    Train with `model.fit(epochs=E, steps_per_epoch=S)` (no `x`): each step draws its own
    `batch_size` images. Build one from a trained VAE with `AVAESS.from_vae(vae)` (which copies the
    networks); the constructor itself freezes the `decoder` object it is given.
    """

    def __init__(self, encoder, decoder, rho: float = 0.975, beta: float = 1.0, delusion: str = "sample",
                 batch_size: int = 64, seed: int = 0, **kwargs):
        batch_size = check_positive_int("batch_size", batch_size)
        super().__init__(encoder, decoder, rho=rho, beta=beta, delusion=delusion, seed=seed, **kwargs)
        self.batch_size = batch_size
        # Through the property's setter: TF's AutoTrackable skips `decoder.trainable = False` when the flag is
        # already False (a decoder deserialised from a saved AVAE-SS), which would leave its sub-layers trainable.
        keras.layers.Layer.trainable.fset(self.decoder, False)
        replicas = self.distribute_strategy.num_replicas_in_sync
        if batch_size % replicas:
            raise ValueError(f"batch_size ({batch_size}) must be divisible by the number of replicas ({replicas}).")

    @classmethod
    def from_vae(cls, vae, rho: float = 0.975, beta: float | None = None, delusion: str = "sample",
                 batch_size: int = 64, seed: int | None = None, **kwargs):
        """An AVAE-SS on copies of a trained VAE's encoder and decoder (the VAE is left untouched).

        `beta` and `seed` default to the VAE's. Raises if `vae` is not a trained `tf_avae` VAE.
        Under a distribution strategy, call it inside `strategy.scope()` (the copies' variables are
        created here).
        """
        if not isinstance(vae, VAE):
            raise TypeError(
                f"vae must be a trained tf_avae.models.VAE; got {type(vae).__name__}"
                + (" (an AE has no posterior variance to post-train)" if type(vae).__name__ == "AE" else "") + "."
            )
        optimizer = getattr(vae, "optimizer", None)  # an uncompiled Keras model has no `optimizer` attribute
        if optimizer is None or int(optimizer.iterations) == 0:
            raise ValueError(
                "vae must be a trained VAE (its optimizer has taken no step: "
                + ("it was never compiled" if optimizer is None else "optimizer.iterations == 0")
                + "); train it with fit first."
            )
        encoder, decoder = vae.encoder, vae.decoder
        if tuple(decoder.image_shape) != tuple(encoder.image_shape) or decoder.latent_dim != encoder.latent_dim:
            raise ValueError(
                f"vae's decoder (image_shape {tuple(decoder.image_shape)}, latent_dim {decoder.latent_dim}) must "
                f"match its encoder (image_shape {tuple(encoder.image_shape)}, latent_dim {encoder.latent_dim})."
            )
        kwargs.setdefault("posterior_scale", vae.posterior_scale)
        return cls(_copy_network(encoder), _copy_network(decoder), rho=rho,
                   beta=vae.beta if beta is None else beta, delusion=delusion, batch_size=batch_size,
                   seed=vae.seed if seed is None else seed, **kwargs)

    # ------------------------------------------------------------------ where the batch comes from
    def generated_images(self, step):
        """This replica's share of the step's batch: x drawn from the frozen decoder at z0 ~ N(0, I)."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        prior_seed, observation_seed = tf.unstack(
            tf.random.experimental.stateless_split(rng.step_seed(self.seed, step, rng.PRIOR_STREAM), num=2))
        latents = rng.normal([self.batch_size // replicas, self.latent_dim], prior_seed, self.compute_dtype)
        raw = self.decoder.raw_outputs(latents, training=False)
        if self.delusion == "sample":
            images = self.decoder.sample(raw, observation_seed)
        else:
            images = self.decoder.likelihood.mean(raw)
        return tf.stop_gradient(images)

    def batch_images(self, data, step, training):
        return self.generated_images(step)  # `data` is the placeholder of a data-less fit

    def compute_loss_terms(self, images, step, training):
        """AVAE terms on `images`, or on a batch drawn from the frozen decoder when `images` is None."""
        if images is None:
            images = self.generated_images(step)
        return super().compute_loss_terms(images, step, training)

    def trainable_parameters(self):
        return self.encoder.trainable_variables

    # ------------------------------------------------------------------ data-less fit / evaluate
    def fit(self, x=None, *args, steps_per_epoch=None, **kwargs):
        _reject_data("fit", x, args, kwargs)
        steps = check_positive_int("steps_per_epoch", steps_per_epoch)
        return super().fit(_NoData(steps, self.batch_size), steps_per_epoch=steps, **kwargs)

    def evaluate(self, x=None, *args, steps=None, **kwargs):
        _reject_data("evaluate", x, args, kwargs)
        steps = check_positive_int("steps", steps)
        return super().evaluate(_NoData(steps, self.batch_size), steps=steps, **kwargs)

    def get_config(self):
        return {**super().get_config(), "batch_size": self.batch_size}


def _reject_data(method, x, args, kwargs):
    # `validation_data=None` or `shuffle=...` (what a generic training loop passes) bring no data.
    given = [name for name in _DATA_ARGUMENTS if name != "shuffle" and kwargs.get(name) is not None]
    kwargs.pop("shuffle", None)
    if x is None and not args and not given:
        return
    what = "x" if x is not None else (f"{len(args)} positional argument(s)" if args else ", ".join(given))
    call = "epochs=..., steps_per_epoch=..." if method == "fit" else "steps=..."
    raise ValueError(
        f"AVAESS.{method} reads no data: every step draws its batch from the frozen decoder (batch_size is "
        f"set in the constructor). Call {method}({call}) with keyword arguments and no data; got {what}."
    )


def _copy_network(network):
    """A new network with the same config and weights (the original is not shared or modified)."""
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(network))
    copy.ensure_built()
    copy.set_weights(network.get_weights())
    return copy
