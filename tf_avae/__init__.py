"""tf_avae: representation learning with (augmentation-augmented / autoencoding) VAEs in Keras 3."""

__version__ = "0.1.0"
