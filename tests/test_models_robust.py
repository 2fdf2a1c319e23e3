"""The robust-encoder family: SE (smooth encoder), SE-AVAE and AVAE-SS.

Every loss is checked against a recomputation from the networks' outputs with `tf_avae.objectives`
(the model's own code is used only to obtain its auxiliary images, captured from inside the loss);
the data-less AVAE-SS `fit` runs with every Keras data adapter and `tf.data` entry point patched to
raise.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.trainers import data_adapters as keras_data_adapters

import helpers
from tf_avae import models, objectives, rng
from tf_avae.adversarial import encoding_distance_objective
from tf_avae.models import smooth

STEP = 3
LOG_OBSERVATION_VARIANCE = np.log(0.5)  # helpers' decoders: Gaussian likelihood, variance 0.5, sigmoid mean


def _batch(n=6, seed=0):
    """Random images with about a third of the pixels saturated at 0 or 1 (so the [0, 1] clip matters)."""
    x = helpers.images(n, seed=seed)
    mask = np.random.default_rng(seed + 1).random(x.shape)
    x[mask < 0.15], x[mask > 0.85] = 0.0, 1.0
    return x


def _capture_method(model, name):
    """Records every output of `model.<name>` while the model's own loss code calls it."""
    seen, original = [], getattr(model, name)

    def recorder(*args, **kwargs):
        seen.append(original(*args, **kwargs))
        return seen[-1]

    setattr(model, name, recorder)
    return seen


def _model_loss_and_gradients(model, batch):
    variables = model.encoder.trainable_variables + model.decoder.trainable_variables
    with tf.GradientTape() as tape:
        terms = model.compute_loss_terms(tf.constant(batch), tf.constant(STEP, tf.int64), training=True)
        loss = tf.reduce_mean(terms["loss"])
    return {k: v.numpy() for k, v in terms.items()}, tape.gradient(loss, variables)


def _independent_loss_and_gradients(model, batch, beta, auxiliaries):
    """ELBO + sum over auxiliaries of (coupling - entropy), from the encoder/decoder outputs only.

    `auxiliaries` maps a term prefix to (auxiliary images as a numpy constant, rho).
    """
    variables = model.encoder.trainable_variables + model.decoder.trainable_variables
    x = tf.constant(batch)
    with tf.GradientTape() as tape:
        mean, log_variance = model.encoder(x, training=True)
        noise = rng.normal(tf.shape(mean), rng.step_seed(model.seed, STEP, rng.POSTERIOR_STREAM))
        latents = mean + tf.exp(0.5 * log_variance) * noise
        terms = {
            "reconstruction": -objectives.gaussian_log_likelihood(x, model.decoder(latents), LOG_OBSERVATION_VARIANCE),
            "kl": objectives.gaussian_kl_to_standard_normal(mean, log_variance),
        }
        total = terms["reconstruction"] + beta * terms["kl"]
        for prefix, (images, rho) in auxiliaries.items():
            mean_aux, log_variance_aux = model.encoder(tf.constant(images), training=True)
            terms[f"{prefix}_coupling"] = -objectives.expected_coupling_log_density(
                mean, log_variance, mean_aux, log_variance_aux, rho)
            terms[f"{prefix}_entropy"] = objectives.gaussian_entropy(log_variance_aux)
            total = total + terms[f"{prefix}_coupling"] - terms[f"{prefix}_entropy"]
        terms["loss"] = total
        loss = tf.reduce_mean(total)
    return {k: v.numpy() for k, v in terms.items()}, tape.gradient(loss, variables)


def _assert_same(terms, gradients, expected_terms, expected_gradients):
    assert sorted(terms) == sorted(expected_terms)
    for key in expected_terms:
        np.testing.assert_allclose(terms[key], expected_terms[key], rtol=1e-5, atol=1e-4, err_msg=key)
    for got, want in zip(gradients, expected_gradients):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------------------ SE


@pytest.mark.parametrize("norm, epsilon", [("inf", 0.1), (2, 1.0)])
def test_se_auxiliary_image_is_a_perturbation_within_epsilon_inside_the_unit_box(norm, epsilon):
    encoder, decoder = helpers.networks("conv")
    model = models.SmoothEncoder(encoder, decoder, epsilon=epsilon, pgd_steps=3, norm=norm, seed=4)
    batch = _batch(8)
    seen = _capture_method(model, "adversarial_images")
    helpers.loss_terms_at(model, batch, step=STEP, training=True)
    assert len(seen) == 1
    perturbed = seen[0].numpy()
    delta = (perturbed - batch).reshape(len(batch), -1)
    size = np.abs(delta).max(axis=1) if norm == "inf" else np.linalg.norm(delta, axis=1)
    assert np.all(size <= epsilon * (1 + 1e-5)), size
    assert np.all(size > 0.5 * epsilon), size  # it did move
    assert perturbed.min() >= 0.0 and perturbed.max() <= 1.0
    # the attack pushes the encodings apart more than a random point of the same ball
    distance = encoding_distance_objective(lambda x: encoder(x, training=False), batch)
    noise = np.random.default_rng(0).uniform(-1.0, 1.0, batch.shape).astype(np.float32)
    if norm == 2:
        noise *= epsilon / np.linalg.norm(noise.reshape(len(batch), -1), axis=1)[:, None, None, None]
    else:
        noise *= epsilon
    random_point = np.clip(batch + noise, 0.0, 1.0)
    assert float(tf.reduce_mean(distance(perturbed))) > float(tf.reduce_mean(distance(random_point)))
    # a pure function of (seed, step): the same step attacks the same way, another step does not
    np.testing.assert_array_equal(model.adversarial_images(tf.constant(batch), tf.constant(STEP, tf.int64)).numpy(),
                                  perturbed)
    assert np.abs(model.adversarial_images(tf.constant(batch), tf.constant(STEP + 1, tf.int64)).numpy()
                  - perturbed).max() > 0


@pytest.mark.parametrize("norm, epsilon", [("inf", 0.1), (2, 1.0)])
def test_se_loss_and_gradients_equal_a_recomputation_with_the_attack_as_a_constant(norm, epsilon):
    encoder, decoder = helpers.networks("mlp")
    model = models.SmoothEncoder(encoder, decoder, epsilon=epsilon, pgd_steps=3, norm=norm, rho=0.8, beta=0.5,
                                 seed=2)
    batch = _batch(6)
    seen = _capture_method(model, "adversarial_images")
    terms, gradients = _model_loss_and_gradients(model, batch)
    # the second computation gets x~ as a numpy constant: no path from the weights to it exists
    expected, expected_gradients = _independent_loss_and_gradients(
        model, batch, beta=0.5, auxiliaries={"adversarial": (seen[0].numpy(), 0.8)})
    _assert_same(terms, gradients, expected, expected_gradients)
    assert np.all(np.isfinite(terms["adversarial_coupling"]))


# ------------------------------------------------------------------------------------------------ SE-AVAE


@pytest.mark.parametrize("delusion", ["sample", "mean"])
def test_seavae_loss_and_gradients_are_elbo_plus_delusion_plus_adversarial_terms(delusion, monkeypatch):
    encoder, decoder = helpers.networks("mlp")
    model = models.SEAVAE(encoder, decoder, rho=0.9, se_rho=0.7, epsilon=0.1, pgd_steps=2, beta=0.5,
                          delusion=delusion, seed=6)
    batch = _batch(6)
    adversarial_seen = _capture_method(model, "adversarial_images")
    delusion_seen = []
    original = smooth.delusion_images
    monkeypatch.setattr(smooth, "delusion_images",
                        lambda *args: delusion_seen.append(original(*args)) or delusion_seen[-1])
    terms, gradients = _model_loss_and_gradients(model, batch)
    assert len(adversarial_seen) == 1 and len(delusion_seen) == 1
    expected, expected_gradients = _independent_loss_and_gradients(
        model, batch, beta=0.5, auxiliaries={"delusion": (delusion_seen[0].numpy(), 0.9),
                                             "adversarial": (adversarial_seen[0].numpy(), 0.7)})
    _assert_same(terms, gradients, expected, expected_gradients)


@pytest.mark.parametrize("name", ["SE", "SEAVAE"])
def test_auxiliary_terms_reach_the_encoder_only(name):
    encoder, decoder = helpers.networks("conv")
    model = (models.SmoothEncoder(encoder, decoder, pgd_steps=2, rho=0.9, seed=5) if name == "SE"
             else models.SEAVAE(encoder, decoder, rho=0.9, pgd_steps=2, seed=5))
    vae = models.VAE(encoder, decoder, beta=1.0, seed=5)  # same weights, same seed -> same sampled z
    batch = _batch(6)
    _, gradients = _model_loss_and_gradients(model, batch)
    _, vae_gradients = _model_loss_and_gradients(vae, batch)
    n = len(encoder.trainable_variables)
    for got, want in zip(gradients[n:], vae_gradients[n:]):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    assert max(float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(gradients[:n], vae_gradients[:n])) > 1e-3


# ------------------------------------------------------------------------------------------------ bad input

_SE = lambda e, d, **kw: models.SmoothEncoder(e, d, **kw)  # noqa: E731
_SEAVAE = lambda e, d, **kw: models.SEAVAE(e, d, **kw)  # noqa: E731
_AVAESS = lambda e, d, **kw: models.AVAESS(e, d, **kw)  # noqa: E731


@pytest.mark.parametrize("factory", [_SE, _SEAVAE], ids=["SE", "SEAVAE"])
@pytest.mark.parametrize("kwargs, message", [
    ({"epsilon": -0.1}, r"epsilon must be >= 0; got -0.1"),
    ({"pgd_steps": 0}, r"pgd_steps must be an integer >= 1; got 0"),
    ({"pgd_steps": 2.5}, r"pgd_steps must be an integer >= 1; got 2.5"),
    ({"norm": 1}, r"norm must be one of .*got 1"),
    ({"rho": 1.0}, r"rho must lie in the open interval \(-1.0, 1.0\); got 1.0"),
    ({"step_size": 0.0}, r"step_size must be > 0; got 0.0"),
    ({"beta": -1.0}, r"beta must be >= 0; got -1.0"),
])
def test_bad_robust_hyperparameters_fail_at_construction_by_name(factory, kwargs, message):
    encoder, decoder = helpers.networks("mlp")
    with pytest.raises((ValueError, TypeError), match=message):
        factory(encoder, decoder, **kwargs)


@pytest.mark.parametrize("factory, kwargs, message", [
    (_SEAVAE, {"se_rho": 1.0}, r"se_rho must lie in the open interval .*got 1.0"),
    (_SEAVAE, {"delusion": "noise"}, r"delusion must be one of \['sample', 'mean'\]; got 'noise'"),
    (_AVAESS, {"rho": 1.0}, r"rho must lie in the open interval .*got 1.0"),
    (_AVAESS, {"batch_size": 0}, r"batch_size must be an integer >= 1; got 0"),
    (_AVAESS, {"delusion": "noise"}, r"delusion must be one of"),
])
def test_bad_model_specific_hyperparameters_fail_at_construction_by_name(factory, kwargs, message):
    encoder, decoder = helpers.networks("mlp")
    with pytest.raises((ValueError, TypeError), match=message):
        factory(encoder, decoder, **kwargs)


# ------------------------------------------------------------------------------------------------ AVAE-SS


@pytest.fixture(scope="module")
def trained_vae():
    """A conv VAE with batch normalisation (so the decoder has moving statistics) after 2 steps."""
    keras.utils.set_random_seed(1)
    encoder, decoder = helpers.networks("conv", batch_norm=True)
    vae = helpers.compiled(models.VAE(encoder, decoder, beta=1.0, seed=7))
    vae.fit(helpers.images(8), batch_size=4, epochs=1, shuffle=False, verbose=0)
    return vae


def _copies(weights):
    return [np.array(w, copy=True) for w in weights]


def _forbid(monkeypatch, seen_adapters):
    """Makes every way into data raise: Keras' data adapters, tf.data and dataset distribution."""
    def forbidden(what):
        def raise_(*args, **kwargs):
            raise AssertionError(f"data was touched: {what}")
        return raise_

    for name in ("ArrayDataAdapter", "TFDatasetAdapter", "GeneratorDataAdapter", "PyDatasetAdapter",
                 "TorchDataLoaderAdapter", "GrainDatasetAdapter"):
        monkeypatch.setattr(getattr(keras_data_adapters, name), "__init__", forbidden(name))
    for name in ("__iter__", "from_tensors", "from_tensor_slices", "from_generator", "range", "zip"):
        monkeypatch.setattr(tf.data.Dataset, name, forbidden(f"tf.data.Dataset.{name}"))
    for name in ("experimental_distribute_dataset", "distribute_datasets_from_function"):
        monkeypatch.setattr(tf.distribute.Strategy, name, forbidden(f"Strategy.{name}"))
    original = keras_data_adapters.get_data_adapter

    def spy(x, *args, **kwargs):
        seen_adapters.append(type(x).__name__)
        return original(x, *args, **kwargs)

    monkeypatch.setattr(keras_data_adapters, "get_data_adapter", spy)


def test_avaess_trains_the_encoder_only_with_fit_and_no_data(trained_vae, monkeypatch):
    vae_weights = _copies(trained_vae.get_weights())
    model = models.AVAESS.from_vae(trained_vae, rho=0.9, batch_size=8)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    assert not set(map(id, model.encoder.weights)) & set(map(id, trained_vae.weights))  # copies, not shared
    assert [v.path for v in model.trainable_parameters()] == [v.path for v in model.encoder.trainable_variables]
    assert [v.path for v in model.trainable_variables] == [v.path for v in model.encoder.trainable_variables]
    assert any("moving" in w.path for w in model.decoder.weights)  # BN statistics are covered below
    decoder_before, encoder_before = _copies(model.decoder.get_weights()), _copies(model.encoder.get_weights())

    seen_adapters, step_inputs = [], []
    _forbid(monkeypatch, seen_adapters)
    other = helpers.compiled(helpers.make_model("VAE", "mlp"))
    with pytest.raises(AssertionError, match="data was touched"):  # the patches do block a normal fit
        other.fit(helpers.images(4), batch_size=2, verbose=0)
    seen_adapters.clear()
    original_step = model.train_step
    model.train_step = lambda data: step_inputs.append(data) or original_step(data)

    history = model.fit(epochs=2, steps_per_epoch=3, verbose=0)

    assert int(model.optimizer.iterations) == 6
    assert seen_adapters == ["_NoData"]  # Keras was given nothing but the internal step clock
    assert step_inputs and all(data is None for data in step_inputs)  # the step received no data at all
    assert set(history.history) == {"loss", "reconstruction", "kl", "delusion_coupling", "delusion_entropy"}
    assert all(np.isfinite(history.history["loss"])) and len(history.history["loss"]) == 2
    for before, after in zip(decoder_before, model.decoder.get_weights()):
        np.testing.assert_array_equal(after, before)  # bit for bit, moving statistics included
    moved = [float(np.abs(after - before).max()) for before, after in zip(encoder_before, model.encoder.get_weights())]
    assert min(moved) > 0  # every encoder weight moved (BN statistics too: the encoder trains in training mode)
    for before, after in zip(vae_weights, trained_vae.get_weights()):
        np.testing.assert_array_equal(after, before)  # the source VAE is untouched
    result = model.evaluate(steps=2, verbose=0, return_dict=True)
    assert np.isfinite(result["loss"]) and seen_adapters[-1] == "_NoData"


def test_avaess_draws_its_batch_from_the_frozen_decoder_and_scores_it_as_an_avae(trained_vae):
    model = models.AVAESS.from_vae(trained_vae, rho=0.9, batch_size=2000, delusion="sample")
    step = tf.constant(STEP, tf.int64)
    images = model.generated_images(step).numpy()
    assert images.shape == (2000, *helpers.IMAGE_SHAPE)
    # x ~ p(x|z0): the decoder mean at z0 ~ N(0, I) (drawn from the step's prior stream) + noise of variance 0.5
    prior_seed = tf.random.experimental.stateless_split(rng.step_seed(model.seed, step, rng.PRIOR_STREAM), 2)[0]
    latents = rng.normal([2000, model.latent_dim], prior_seed)
    residual = images - trained_vae.decoder(latents, training=False).numpy()
    assert abs(residual.mean()) < 0.01 and abs(residual.var() - 0.5) < 0.01
    np.testing.assert_array_equal(model.generated_images(step).numpy(), images)  # a function of the step
    mean_model = models.AVAESS.from_vae(trained_vae, rho=0.9, batch_size=4, delusion="mean")
    np.testing.assert_allclose(mean_model.generated_images(step).numpy(),
                               trained_vae.decoder(latents[:4], training=False).numpy(), rtol=1e-5, atol=1e-6)
    # the loss on its own batch is the AVAE loss of that batch (same networks, same seed)
    avae = models.AVAE(mean_model.encoder, mean_model.decoder, rho=0.9, beta=trained_vae.beta, delusion="mean",
                       seed=mean_model.seed)
    own = mean_model.compute_loss_terms(None, step, training=False)
    reference = avae.compute_loss_terms(mean_model.generated_images(step), step, training=False)
    for key in reference:
        np.testing.assert_allclose(own[key].numpy(), reference[key].numpy(), rtol=1e-6)


def test_avaess_from_vae_rejects_what_is_not_a_trained_vae(trained_vae):
    encoder, decoder = helpers.networks("mlp")
    with pytest.raises(TypeError, match=r"vae must be a trained tf_avae.models.VAE; got AE"):
        models.AVAESS.from_vae(models.AE(encoder, decoder))
    with pytest.raises(TypeError, match=r"vae must be a trained tf_avae.models.VAE; got Sequential"):
        models.AVAESS.from_vae(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    with pytest.raises(TypeError, match=r"vae must be a trained tf_avae.models.VAE; got str"):
        models.AVAESS.from_vae("vae.keras")
    untrained = models.VAE(encoder, decoder)
    with pytest.raises(ValueError, match=r"vae must be a trained VAE .*never compiled"):
        models.AVAESS.from_vae(untrained)
    with pytest.raises(ValueError, match=r"vae must be a trained VAE .*iterations == 0"):
        models.AVAESS.from_vae(helpers.compiled(untrained))


def test_avaess_fit_refuses_data_and_needs_a_step_count(trained_vae):
    model = models.AVAESS.from_vae(trained_vae, batch_size=4)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"AVAESS.fit reads no data.*got x"):
        model.fit(helpers.images(4), steps_per_epoch=1)
    with pytest.raises(ValueError, match=r"AVAESS.fit reads no data.*got validation_data"):
        model.fit(steps_per_epoch=1, validation_data=helpers.images(4))
    with pytest.raises(TypeError, match=r"steps_per_epoch must be an integer >= 1; got None"):
        model.fit(epochs=1)
    with pytest.raises(TypeError, match=r"steps must be an integer >= 1; got None"):
        model.evaluate()
    assert int(model.optimizer.iterations) == 0


def test_avaess_survives_keras_save_and_load(trained_vae, tmp_path):
    model = models.AVAESS.from_vae(trained_vae, rho=0.9, batch_size=4, seed=3)
    model.compile(optimizer="adam")
    model.fit(steps_per_epoch=1, verbose=0)
    reloaded = helpers.save_and_reload(model, tmp_path / "avaess.keras")
    assert type(reloaded) is models.AVAESS and reloaded.get_config()["batch_size"] == 4
    assert [v.path for v in reloaded.trainable_variables] == [v.path for v in reloaded.encoder.trainable_variables]
    assert int(reloaded.optimizer.iterations) == 1  # the optimizer state (encoder variables only) was restored
    for saved, restored in zip(model.optimizer.variables, reloaded.optimizer.variables):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy())
    step = tf.constant(7, tf.int64)
    for images in (None, tf.constant(helpers.images(4))):
        before = model.compute_loss_terms(images, step, training=False)
        after = reloaded.compute_loss_terms(images, step, training=False)
        for key in before:
            np.testing.assert_array_equal(after[key].numpy(), before[key].numpy())


def test_one_mirrored_avaess_step_equals_one_single_device_step(mirrored_strategy):
    def build():
        keras.utils.set_random_seed(0)
        encoder, decoder = helpers.networks("conv")
        model = models.AVAESS(encoder, decoder, rho=0.9, batch_size=8, seed=4)
        model.compile(optimizer=keras.optimizers.SGD(0.05))
        return model

    single = build()
    initial = single.get_weights()
    single.fit(steps_per_epoch=1, verbose=0)
    with mirrored_strategy.scope():
        mirrored = build()
    mirrored.set_weights(initial)
    mirrored.fit(steps_per_epoch=1, verbose=0)
    for w_single, w_mirrored in zip(single.get_weights(), mirrored.get_weights()):
        np.testing.assert_allclose(w_mirrored, w_single, atol=1e-5, rtol=1e-4)
    assert max(float(np.abs(a - b).max()) for a, b in zip(single.get_weights(), initial)) > 1e-4
