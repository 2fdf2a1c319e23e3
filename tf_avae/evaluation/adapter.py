"""What the evaluation needs from a model, and the adapter that gets it from whatever it is given.

The evaluation reads a model only through :class:`EncoderAdapter`:

* ``encode(images) -> (mean, log_variance)`` (required; differentiable: PGD attacks through it),
* ``decode(latents) -> images`` (optional: prior samples for the classifier FID),
* ``reconstruct(images) -> images`` = decoder mean at the posterior mean (optional: reconstruction
  MSE and latent consistency; derived from ``encode`` + ``decode`` when both exist),
* ``features(images) -> [B, F]`` (optional: the backbone feature a probe may read, e.g. the pooled
  ResNet feature of AAVAE).

:func:`as_encoder_adapter` builds one from

* a tf_avae :class:`~tf_avae.models.RepresentationModel` (or any object with ``encode``, and optionally
  ``decode`` and ``encoder.features``),
* a SavedModel loaded with ``tf.saved_model.load``: an object with an ``encode`` function (and
  optionally ``decode``/``features``); or a ``serve`` function, images -> dict ``mean``/``log_variance``
  (``tf_avae.export``, which also saves ``decode`` and ``reconstruct`` functions returning
  ``{"images": ...}``; ``keras.Model.export``, whose ``serve`` also returns ``reconstruction``); or
  only named ``signatures`` (``encode`` or ``serving_default``, optionally ``decode``, ``reconstruct``,
  ``features``),
* any callable ``images -> (mean, log_variance)`` or ``-> {"mean": ..., "log_variance": ...}``.

Outputs that are dicts may carry ``reconstruction`` too; then reconstruction-based metrics work
even without a ``decode(z)`` function.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import tensorflow as tf

from tf_avae.validation import check_choice

__all__ = ["EncoderAdapter", "FEATURES", "as_encoder_adapter"]

FEATURES = ("mean", "backbone")

_MEAN_KEYS = ("mean", "z_mean", "loc")
_LOG_VARIANCE_KEYS = ("log_variance", "logvar", "log_var", "z_log_var")


class EncoderAdapter:
    """The evaluation's view of a model: ``encode`` and optionally ``decode``/``reconstruct``/``features``.

    Every function maps a float32 tensor batch to tensors and must be differentiable w.r.t. its input
    where the evaluation attacks it (``encode``, ``features``). Functions are wrapped lazily in one
    ``tf.function`` each (batch dimension ``None``) for the batched numpy helpers.
    """

    def __init__(
        self,
        encode: Callable[[tf.Tensor], Any],
        decode: Callable[[tf.Tensor], Any] | None = None,
        features: Callable[[tf.Tensor], Any] | None = None,
        reconstruct: Callable[[tf.Tensor], Any] | None = None,
        name: str = "model",
    ):
        for arg_name, fn in (("encode", encode), ("decode", decode), ("features", features),
                             ("reconstruct", reconstruct)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{arg_name} must be callable or None; got {fn!r}.")
        if encode is None:
            raise TypeError("encode must be callable (images -> (mean, log_variance)); got None.")
        self._encode = encode
        self._decode = decode
        self._features = features
        self._reconstruct = reconstruct
        self.name = name
        self._compiled: dict[str, Any] = {}

    # ---------------------------------------------------------------- capabilities
    @property
    def can_decode(self) -> bool:
        return self._decode is not None

    @property
    def can_reconstruct(self) -> bool:
        return self._reconstruct is not None or self._decode is not None

    @property
    def has_backbone(self) -> bool:
        return self._features is not None

    # ---------------------------------------------------------------- differentiable functions
    def encode(self, images) -> tuple[tf.Tensor, tf.Tensor]:
        mean, log_variance = split_encoding(self._encode(images))
        return tf.cast(mean, tf.float32), tf.cast(log_variance, tf.float32)

    def mean(self, images) -> tf.Tensor:
        return self.encode(images)[0]

    def decode(self, latents) -> tf.Tensor:
        if self._decode is None:
            raise ValueError(f"{self.name} has no decoder: decode(z) is not available.")
        return tf.cast(self._decode(latents), tf.float32)

    def reconstruct(self, images) -> tf.Tensor:
        """Decoder mean at the posterior mean."""
        if self._reconstruct is not None:
            return tf.cast(self._reconstruct(images), tf.float32)
        return self.decode(self.mean(images))

    def features(self, images) -> tf.Tensor:
        if self._features is None:
            raise ValueError(
                f"feature must be 'mean' for {self.name}: it exposes no backbone feature (encoder.features)."
            )
        return tf.cast(self._features(images), tf.float32)

    def representation(self, images, feature: str = "mean") -> tf.Tensor:
        """The representation a probe reads: the posterior mean or the backbone feature, [B, F]."""
        check_feature(feature)
        out = self.mean(images) if feature == "mean" else self.features(images)
        return tf.reshape(out, [tf.shape(out)[0], -1])

    def check_feature(self, feature: str) -> str:
        check_feature(feature)
        if feature == "backbone" and not self.has_backbone:
            raise ValueError(
                f"feature='backbone' needs a model exposing encoder.features (a ResNet/Conv tf_avae encoder) "
                f"or an adapter with features=...; {self.name} has none. Use feature='mean'."
            )
        return feature

    # ---------------------------------------------------------------- compiled batch functions
    def compiled(self, what: str) -> Callable[[tf.Tensor], Any]:
        """One ``tf.function`` per operation ('mean', 'backbone', 'encode', 'decode', 'reconstruct')."""
        if what not in self._compiled:
            fns = {
                "mean": lambda x: self.representation(x, "mean"),
                "backbone": lambda x: self.representation(x, "backbone"),
                "encode": self.encode,
                "decode": self.decode,
                "reconstruct": self.reconstruct,
            }
            self._compiled[what] = tf.function(fns[what], reduce_retracing=True, autograph=False)
        return self._compiled[what]


def check_feature(feature: Any) -> str:
    return check_choice("feature", feature, FEATURES)


def split_encoding(outputs: Any) -> tuple[Any, Any]:
    """(mean, log_variance) from a tuple/list or a dict output of an encoder."""
    if isinstance(outputs, Mapping):
        mean = _first_key(outputs, _MEAN_KEYS)
        log_variance = _first_key(outputs, _LOG_VARIANCE_KEYS)
        if mean is None or log_variance is None:
            keys = sorted(outputs)
            if len(keys) == 2 and all(k.startswith("output_") for k in keys):  # unnamed signature outputs
                return outputs[keys[0]], outputs[keys[1]]
            raise TypeError(
                f"an encoder returning a dict must hold 'mean' and 'log_variance'; got keys {keys}."
            )
        return mean, log_variance
    if isinstance(outputs, (tuple, list)) and len(outputs) >= 2:
        return outputs[0], outputs[1]
    raise TypeError(
        "an encoder must return (mean, log_variance) or a dict with 'mean' and 'log_variance'; "
        f"got {type(outputs).__name__}."
    )


def _first_key(mapping: Mapping, keys: tuple[str, ...]):
    for key in keys:
        if key in mapping:
            return mapping[key]
    return None


def _signature_callable(signature) -> Callable[[tf.Tensor], Any]:
    """A SavedModel signature takes keyword arguments; call it with its single input."""
    kwargs_spec = signature.structured_input_signature[1]
    if len(kwargs_spec) != 1:
        raise TypeError(
            f"a serving signature used as an encoder must take exactly one input (images); "
            f"got inputs {sorted(kwargs_spec)}."
        )
    (input_name,) = kwargs_spec
    return lambda x: signature(**{input_name: x})


def _single_output(fn: Callable[[tf.Tensor], Any]) -> Callable[[tf.Tensor], Any]:
    def call(x):
        out = fn(x)
        if isinstance(out, Mapping):
            if len(out) != 1:
                raise TypeError(f"expected a single output; got keys {sorted(out)}.")
            return next(iter(out.values()))
        return out

    return call


def _output_structure(fn: Any) -> Any:
    """The declared outputs of a SavedModel function or signature, or None when they are unknown."""
    structure = getattr(fn, "structured_outputs", None)
    if structure is None:
        concrete = getattr(fn, "concrete_functions", None)
        if concrete:
            structure = concrete[0].structured_outputs
    return structure


def as_encoder_adapter(model: Any, name: str | None = None) -> EncoderAdapter:
    """An :class:`EncoderAdapter` for a tf_avae model, a loaded SavedModel or a callable (see module doc)."""
    if isinstance(model, EncoderAdapter):
        return model
    from tf_avae.models.base import RepresentationModel  # same floor; imported here to keep this module light

    if isinstance(model, RepresentationModel):
        return EncoderAdapter(
            encode=lambda x: model.encode(x, training=False),
            decode=lambda z: model.decode(z, training=False),
            features=lambda x: model.encoder.features(x, training=False),
            name=name or model.name,
        )
    name = name or type(model).__name__
    if callable(getattr(model, "encode", None)):
        features = getattr(model, "features", None)
        encoder = getattr(model, "encoder", None)
        if features is None and callable(getattr(encoder, "features", None)):
            features = encoder.features
        decode = getattr(model, "decode", None)
        return EncoderAdapter(
            encode=model.encode,
            decode=_single_output(decode) if callable(decode) else None,
            features=_single_output(features) if callable(features) else None,
            name=name,
        )
    if callable(getattr(model, "serve", None)):
        extras = {key: getattr(model, key, None) for key in ("decode", "features", "reconstruct")}
        extras = {key: _single_output(fn) if callable(fn) else None for key, fn in extras.items()}
        return _from_endpoint(model.serve, model.serve, name=name, **extras)
    signatures = getattr(model, "signatures", None)
    if signatures and not callable(model):
        for key in ("encode", "serving_default", "serve"):
            if key in signatures:
                extras = {extra: _single_output(_signature_callable(signatures[extra])) if extra in signatures else None
                          for extra in ("decode", "features", "reconstruct")}
                return _from_endpoint(_signature_callable(signatures[key]), signatures[key], name=name, **extras)
    if callable(model):
        return _from_endpoint(model, model, name=name)
    raise TypeError(
        "model must be a tf_avae model, an object with encode(images) -> (mean, log_variance), a loaded "
        "SavedModel with an 'encode'/'serve' function or signature, or a callable images -> "
        f"(mean, log_variance); got {type(model).__name__}."
    )


def _from_endpoint(endpoint, declared, *, name, decode=None, features=None, reconstruct=None) -> EncoderAdapter:
    """An endpoint images -> (mean, log_variance) or dict; a declared 'reconstruction' output is used too."""
    structure = _output_structure(declared)
    if reconstruct is None and isinstance(structure, Mapping) and "reconstruction" in structure:
        reconstruct = lambda x: endpoint(x)["reconstruction"]  # noqa: E731
    return EncoderAdapter(encode=endpoint, decode=decode, features=features, reconstruct=reconstruct, name=name)
