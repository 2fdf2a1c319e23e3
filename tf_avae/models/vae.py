"""VAE (beta-VAE) and a deterministic autoencoder."""

from __future__ import annotations

import keras

from tf_avae.models.base import RepresentationModel, check_beta


@keras.saving.register_keras_serializable(package="tf_avae")
class VAE(RepresentationModel):
    """loss = -E_q[log p(x|z)] + beta * KL(q(z|x) || N(0, I))."""

    def __init__(self, encoder, decoder, beta: float = 1.0, seed: int = 0, **kwargs):
        super().__init__(encoder, decoder, seed=seed, **kwargs)
        self.beta = check_beta(beta)
        self._finish_build()

    def compute_loss_terms(self, images, step, training):
        terms, _ = self.elbo_terms(images, images, step, training, self.beta)
        return terms

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


@keras.saving.register_keras_serializable(package="tf_avae")
class AE(RepresentationModel):
    """Deterministic autoencoder: the code is the encoder mean; loss = -log p(x | g(mean(x)))."""

    loss_term_names = ("reconstruction",)

    def __init__(self, encoder, decoder, seed: int = 0, **kwargs):
        super().__init__(encoder, decoder, seed=seed, **kwargs)
        self._finish_build()

    def compute_loss_terms(self, images, step, training):
        mean, _ = self.encoder(images, training=training)
        raw, target = self.loss_precision(self.decoder.raw_outputs(mean, training=training), images)
        reconstruction = -self.decoder.log_prob(target, raw)
        return {"loss": reconstruction, "reconstruction": reconstruction}
