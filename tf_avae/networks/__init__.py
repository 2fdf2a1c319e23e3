"""Encoders (images -> mean, log_variance) and decoders (latents -> image mean, with a likelihood)."""

from __future__ import annotations

from tf_avae.networks.base import GaussianEncoder, ImageDecoder
from tf_avae.networks.conv import ConvDecoder, ConvEncoder
from tf_avae.networks.likelihoods import BernoulliLikelihood, GaussianLikelihood
from tf_avae.networks.mlp import MLPDecoder, MLPEncoder
from tf_avae.networks.resnet import ResNetDecoder, ResNetEncoder
from tf_avae.validation import check_choice

ARCHITECTURES = {
    "mlp": (MLPEncoder, MLPDecoder),
    "conv": (ConvEncoder, ConvDecoder),
    "resnet": (ResNetEncoder, ResNetDecoder),
}

_DECODER_ONLY_KEYS = ("likelihood", "observation_variance", "learn_variance", "mean_activation")
_ENCODER_ONLY_KEYS = ("head_units",)


def build_networks(architecture: str, image_shape, latent_dim: int = 64, **kwargs):
    """Returns (encoder, decoder) of one architecture, sharing width arguments.

    Likelihood arguments go to the decoder only, `head_units` to the encoder only.
    """
    check_choice("architecture", architecture, tuple(ARCHITECTURES))
    encoder_cls, decoder_cls = ARCHITECTURES[architecture]
    shared = {k: v for k, v in kwargs.items() if k not in _DECODER_ONLY_KEYS + _ENCODER_ONLY_KEYS}
    encoder_kwargs = {**shared, **{k: v for k, v in kwargs.items() if k in _ENCODER_ONLY_KEYS}}
    decoder_kwargs = {**shared, **{k: v for k, v in kwargs.items() if k in _DECODER_ONLY_KEYS}}
    try:
        encoder = encoder_cls(image_shape, latent_dim, name="encoder", **encoder_kwargs)
        decoder = decoder_cls(image_shape, latent_dim, name="decoder", **decoder_kwargs)
    except TypeError as error:
        raise TypeError(f"Unknown argument for the {architecture!r} networks: {error}") from None
    return encoder, decoder


__all__ = [
    "ARCHITECTURES",
    "BernoulliLikelihood",
    "ConvDecoder",
    "ConvEncoder",
    "GaussianEncoder",
    "GaussianLikelihood",
    "ImageDecoder",
    "MLPDecoder",
    "MLPEncoder",
    "ResNetDecoder",
    "ResNetEncoder",
    "build_networks",
]
