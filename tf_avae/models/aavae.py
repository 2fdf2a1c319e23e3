"""AAVAE: the encoder sees an augmented image, the decoder must rebuild the original."""

from __future__ import annotations

import keras

from tf_avae.models.base import RepresentationModel, check_beta


@keras.saving.register_keras_serializable(package="tf_avae")
class AAVAE(RepresentationModel):
    """loss = -E_{q(z|A(x))}[log p(x|z)] + beta * KL(q(z|A(x)) || N(0, I)), beta = 0 by default.

    `augmentation` is any Keras layer mapping images to images that is random when called with
    `training=True` (e.g. `tf_avae.augment.SimCLRAugment`, or `GaussianNoiseAugment` for the
    noise-augmentation control). It runs inside the train step, so on the accelerator.
    Evaluation (`test_step`) feeds the encoder the un-augmented image.
    """

    def __init__(self, encoder, decoder, augmentation: keras.layers.Layer, beta: float = 0.0, seed: int = 0,
                 **kwargs):
        super().__init__(encoder, decoder, seed=seed, **kwargs)
        self.beta = check_beta(beta)
        self.augmentation = self.built_augmentation(augmentation)
        self._finish_build()

    def compute_loss_terms(self, images, step, training):
        augmented = self.augmentation(images, training=training)
        terms, _ = self.elbo_terms(augmented, images, step, training, self.beta)
        return terms

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}
