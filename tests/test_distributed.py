"""Under MirroredStrategy over two logical CPUs, one step equals a single-device step.

The deep ResNet case runs in float64: there the two agree to ~1e-14, while in float32 the
different summation order of the all-reduced batch statistics, amplified through a dozen batch
normalisations, leaves ~0.5% of the (large) first SGD update; the shallow conv+BN case agrees
to 1e-5 in float32.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from tf_avae import models

# name -> (model class, architecture, model kwargs, network kwargs)
CASES = {
    "VAE-conv": (models.VAE, "conv", {}, {}),
    "AVAE-conv-sample": (models.AVAE, "conv", {"rho": 0.9}, {}),
    "AVAE-conv-random-offset": (models.AVAE, "conv",
                                {"rho": 0.9, "delusion_offset": "random", "offset_scale": 0.5}, {}),
    "AVAE-conv-fixed-offset": (models.AVAE, "conv", {"rho": 0.9, "delusion_offset": "fixed"}, {}),
    "AVAE-conv-signed-offset": (models.AVAE, "conv", {"rho": 0.9, "delusion_offset": "signed"}, {}),
    "AVAE-conv-batchnorm": (models.AVAE, "conv", {"rho": 0.9, "delusion": "mean"}, {"batch_norm": True}),
    "AE-resnet-float64": (models.AE, "resnet", {}, {}),
}


def _shape(architecture):
    return (32, 32, 3) if architecture == "resnet" else helpers.IMAGE_SHAPE


def _build(model_cls, architecture, model_kwargs, network_kwargs):
    keras.utils.set_random_seed(0)
    encoder, decoder = helpers.networks(architecture, image_shape=_shape(architecture), **network_kwargs)
    model = model_cls(encoder, decoder, seed=4, **model_kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    return model


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_mirrored_step_equals_one_single_device_step(case, mirrored_strategy, request):
    spec = CASES[case]
    if case.endswith("float64"):
        # Keras caches its global dtype policy at the first layer it builds: set both.
        keras.config.set_floatx("float64")
        keras.config.set_dtype_policy("float64")
        request.addfinalizer(lambda: (keras.config.set_floatx("float32"), keras.config.set_dtype_policy("float32")))
    batch = helpers.images(8, shape=_shape(spec[1]), seed=1).astype(keras.config.floatx())

    single = _build(*spec)
    initial = single.get_weights()
    single.fit(batch, batch_size=8, epochs=1, shuffle=False, verbose=0)

    with mirrored_strategy.scope():
        mirrored = _build(*spec)
    mirrored.set_weights(initial)
    assert mirrored.distribute_strategy.num_replicas_in_sync == 2
    mirrored.fit(batch, batch_size=8, epochs=1, shuffle=False, verbose=0)

    moved = 0.0
    for w_single, w_mirrored, w_initial in zip(single.get_weights(), mirrored.get_weights(), initial):
        np.testing.assert_allclose(w_mirrored, w_single, atol=1e-5, rtol=1e-4)
        moved = max(moved, float(np.abs(w_single - w_initial).max()))
    assert moved > 1e-4  # the step really changed the weights
