"""Models trained with `model.fit`: VAE, AE, AAVAE, AVAE (and the robust-encoder family)."""

from tf_avae.models.aavae import AAVAE
from tf_avae.models.avae import AVAE
from tf_avae.models.avae_ss import AVAESS
from tf_avae.models.base import RepresentationModel
from tf_avae.models.smooth import SEAVAE, SmoothEncoder
from tf_avae.models.vae import AE, VAE

__all__ = ["AAVAE", "AE", "AVAE", "AVAESS", "RepresentationModel", "SEAVAE", "SmoothEncoder", "VAE"]
