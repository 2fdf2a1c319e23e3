"""Model behaviour: gradient flow, what each part is fed, round trips, bad input."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from tf_avae import models


def _gradients(model, batch, step=3):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model.compute_loss_terms(tf.constant(batch), tf.constant(step, tf.int64), training=True)["loss"])
    variables = model.encoder.trainable_variables + model.decoder.trainable_variables
    grads = tape.gradient(loss, variables)
    n = len(model.encoder.trainable_variables)
    return grads[:n], grads[n:]


@pytest.mark.parametrize("delusion", ["sample", "mean"])
def test_avae_delusion_terms_reach_the_encoder_only(delusion):
    encoder, decoder = helpers.networks("conv")
    avae = models.AVAE(encoder, decoder, rho=0.9, beta=1.0, delusion=delusion, seed=5)
    vae = models.VAE(encoder, decoder, beta=1.0, seed=5)  # same weights, same seed -> same sampled z
    batch = helpers.images(6)
    enc_avae, dec_avae = _gradients(avae, batch)
    enc_vae, dec_vae = _gradients(vae, batch)
    for g_avae, g_vae in zip(dec_avae, dec_vae):
        np.testing.assert_allclose(g_avae.numpy(), g_vae.numpy(), rtol=1e-5, atol=1e-6)
    differences = [float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(enc_avae, enc_vae)]
    assert max(differences) > 1e-3


def test_avae_loss_is_vae_loss_plus_coupling_minus_entropy_from_the_encoders_outputs():
    encoder, decoder = helpers.networks("mlp")
    avae = models.AVAE(encoder, decoder, rho=0.8, beta=0.5, delusion="mean", seed=2)
    batch = helpers.images(4)
    terms = helpers.loss_terms_at(avae, batch)
    # independent recomputation in numpy from the networks' outputs
    mean, log_var = (t.numpy() for t in encoder(batch))
    np.testing.assert_allclose(terms["loss"], terms["reconstruction"] + 0.5 * terms["kl"]
                               + terms["delusion_coupling"] - terms["delusion_entropy"], rtol=1e-5)
    kl = 0.5 * (np.exp(log_var) + mean**2 - 1 - log_var).sum(-1)
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-4)
    assert np.all(np.isfinite(terms["delusion_coupling"]))


def test_avae_sample_delusion_adds_observation_noise_and_mean_delusion_does_not():
    from tf_avae.models.avae import delusion_images

    encoder, decoder = helpers.networks("mlp", observation_variance=0.5)
    model = models.AVAE(encoder, decoder, seed=0)
    raw = decoder.raw_outputs(tf.zeros((2000, 8)))
    mean_image = delusion_images(model, raw, tf.constant(0, tf.int64), "mean").numpy()
    sample = delusion_images(model, raw, tf.constant(0, tf.int64), "sample").numpy()
    np.testing.assert_allclose(mean_image, tf.sigmoid(raw).numpy(), rtol=1e-6)
    residual = sample - mean_image
    assert abs(residual.mean()) < 0.01 and abs(residual.var() - 0.5) < 0.01


def _unit_rows(offsets):
    """Each example's offset as a unit vector [B, H*W*C]."""
    flat = offsets.reshape(len(offsets), -1)
    return flat / np.linalg.norm(flat, axis=1, keepdims=True)


def _moved_delusion(model, batch, step=4):
    """x~ of `model` at `batch` (what its encoder gets on its second call), with the decoder mean g(z) and the
    observation noise of the same draw, both recomputed outside the model."""
    from tf_avae import rng

    encoder, decoder = model.encoder, model.decoder
    with helpers.recorded_inputs(encoder, "call") as encoded:
        helpers.loss_terms_at(model, batch, step=step)
    mean, log_var = encoder(batch)
    z = mean + tf.exp(0.5 * log_var) * rng.normal(tf.shape(mean), rng.step_seed(model.seed, step, rng.POSTERIOR_STREAM))
    raw = decoder.raw_outputs(z)
    decoded = tf.sigmoid(raw).numpy()
    noise = decoder.sample(raw, rng.step_seed(model.seed, step, rng.DELUSION_STREAM)).numpy() - decoded
    return encoded[1], decoded, noise


def _offset(model, batch, step=4):
    """The offset of x~'s centre from x (x~ - x - the noise draw) and the decoder's residual g(z) - x, [B, H*W*C]."""
    moved, decoded, noise = _moved_delusion(model, batch, step)
    return (moved - batch - noise).reshape(len(batch), -1), (decoded - batch).reshape(len(batch), -1)


def _assert_residuals_length_not_its_direction(offset, residual, scale):
    np.testing.assert_allclose(np.linalg.norm(offset, axis=1), scale * np.linalg.norm(residual, axis=1), rtol=1e-4)
    cosine = (_unit_rows(offset) * _unit_rows(residual)).sum(1)
    assert np.abs(cosine).max() < 0.2  # not the decoder's direction (random directions in 2352-d: |cos| ~ 0.02)


def test_avae_delusion_offset_moves_the_centre_of_the_same_noise():
    encoder, decoder = helpers.networks("mlp", observation_variance=0.5)
    batch = helpers.images(6)
    paper, decoded, noise = _moved_delusion(models.AVAE(encoder, decoder, seed=7), batch)
    np.testing.assert_allclose(paper, decoded + noise, atol=1e-5)  # eq. 10's x~ = g(z) + noise
    assert abs(noise.var() - 0.5) < 0.05
    for scale in (1.0, 0.5, 0.0):  # x + scale (g(z) - x) + the same noise; 1 is eq. 10's, 0 centres it at x
        moved, _, _ = _moved_delusion(models.AVAE(encoder, decoder, seed=7, offset_scale=scale), batch)
        np.testing.assert_allclose(moved, batch + scale * (decoded - batch) + noise, atol=1e-5)
    shuffled, _, _ = _moved_delusion(models.AVAE(encoder, decoder, seed=7, delusion_offset="shuffled"), batch)
    np.testing.assert_allclose(shuffled, batch + np.roll(decoded - batch, -1, axis=0) + noise, atol=1e-5)
    model = models.AVAE(encoder, decoder, seed=7, delusion_offset="random", offset_scale=2.0)
    (offset, residual), (again, _) = _offset(model, batch), _offset(model, batch)
    np.testing.assert_array_equal(offset, again)  # a function of (seed, step)
    _assert_residuals_length_not_its_direction(offset, residual, 2.0)


def test_avae_fixed_offset_is_one_direction_for_every_image_and_step_with_the_residuals_length():
    encoder, decoder = helpers.networks("mlp", observation_variance=0.5)
    batch = helpers.images(6)
    model = models.AVAE(encoder, decoder, seed=7, delusion_offset="fixed", offset_scale=2.0)
    directions = []
    for step in (4, 9):  # another posterior draw and noise draw, the same direction
        offset, residual = _offset(model, batch, step)
        _assert_residuals_length_not_its_direction(offset, residual, 2.0)
        directions.append(_unit_rows(offset))
    for unit in directions[0][1:].tolist() + directions[1].tolist():  # every example's, at both steps
        np.testing.assert_allclose(unit, directions[0][0], atol=1e-4)
    random, _ = _offset(models.AVAE(encoder, decoder, seed=7, delusion_offset="random"), batch)
    assert np.abs((_unit_rows(random) * directions[0]).sum(1)).max() < 0.2
    other_seed, _ = _offset(models.AVAE(encoder, decoder, seed=8, delusion_offset="fixed"), batch)
    assert abs(float((_unit_rows(other_seed)[0] * directions[0][0]).sum())) < 0.2


def _with_length(directions, length):
    """Each row of `directions` [B, D] scaled to `length` [B]; a zero row stays zero."""
    norm = np.linalg.norm(directions, axis=1, keepdims=True)
    return length[:, None] * np.divide(directions, norm, out=np.zeros_like(directions), where=norm > 0)


def test_avae_dimmed_offset_is_minus_x_with_the_residuals_length_and_zero_for_a_black_image():
    encoder, decoder = helpers.networks("mlp", observation_variance=0.5)
    batch = helpers.images(6)
    batch[0] = 0.0  # a black image: no direction to dim along, no offset (and no NaN)
    model = models.AVAE(encoder, decoder, seed=7, delusion_offset="dimmed", offset_scale=0.5)
    moved, decoded, noise = _moved_delusion(model, batch)
    length = np.linalg.norm((decoded - batch).reshape(6, -1), axis=1)
    offset = _with_length(-batch.reshape(6, -1), 0.5 * length).reshape(batch.shape)
    np.testing.assert_allclose(moved, batch + offset + noise, atol=1e-5)
    assert np.isfinite(moved).all() and length[0] > 0


def test_avae_orthogonal_offset_is_the_residual_less_its_part_along_x_with_the_residuals_length():
    encoder, decoder = helpers.networks("mlp", observation_variance=0.5)
    batch = helpers.images(6)
    batch[0] = 0.0  # a black image: nothing to remove, its residual is already orthogonal to it
    offset, residual = _offset(models.AVAE(encoder, decoder, seed=7, delusion_offset="orthogonal",
                                           offset_scale=0.5), batch)
    flat = batch.reshape(6, -1).astype(np.float64)
    squared = (flat * flat).sum(1, keepdims=True)
    along = np.divide((residual * flat).sum(1, keepdims=True), squared, out=np.zeros((6, 1)), where=squared > 0)
    expected = _with_length(residual - along * flat, 0.5 * np.linalg.norm(residual, axis=1))
    np.testing.assert_allclose(offset, expected, atol=1e-5)
    assert np.abs((offset[1:] * flat[1:]).sum(1)).max() < 1e-3 * np.abs((residual[1:] * flat[1:]).sum(1)).min()


def test_avae_ink_offset_is_the_random_direction_where_x_is_positive_with_the_residuals_length():
    encoder, decoder = helpers.networks("mlp", observation_variance=0.5)
    batch = helpers.images(6)
    batch[:, :14] = 0.0  # black top half (MNIST-like background)
    batch[1, ..., 1:] = 0.0  # one image coloured in its first channel only
    batch[0] = 0.0  # a black image: no ink, no offset
    ink, residual = _offset(models.AVAE(encoder, decoder, seed=7, delusion_offset="ink", offset_scale=2.0), batch)
    random, _ = _offset(models.AVAE(encoder, decoder, seed=7, delusion_offset="random"), batch)
    on_ink = (batch > 0).reshape(6, -1)
    np.testing.assert_allclose(ink, _with_length(random * on_ink, 2.0 * np.linalg.norm(residual, axis=1)),
                               atol=1e-5)
    assert np.count_nonzero(ink[1]) == np.count_nonzero(on_ink[1]) > 0 and not ink[0].any()


def test_avae_signed_offset_is_the_residual_times_a_random_sign_per_example_and_step():
    encoder, decoder = helpers.networks("mlp", observation_variance=0.5)
    batch = helpers.images(16)
    model = models.AVAE(encoder, decoder, seed=7, delusion_offset="signed", offset_scale=0.5)
    signs = []
    for step in (4, 9):
        offset, residual = _offset(model, batch, step)
        sign = np.sign((offset * residual).sum(1))
        np.testing.assert_allclose(offset, 0.5 * sign[:, None] * residual, atol=1e-5)
        signs.append(sign)
        again, _ = _offset(model, batch, step)
        np.testing.assert_array_equal(offset, again)  # a function of (seed, step)
    assert all(0 < np.count_nonzero(sign > 0) < 16 for sign in signs)  # both signs in a batch (p = 2^-15 each)
    assert (signs[0] != signs[1]).any()  # new each step


def _moved_entries(source, target):
    """The column each column of `source` [N, D] moved to in `target` [N, D] (equal up to rounding): the nearest
    one over all N rows (one example's values alone can be within rounding of each other)."""
    source, target = source.astype(np.float64), target.astype(np.float64)
    distances = (source * source).sum(0)[:, None] + (target * target).sum(0)[None] - 2.0 * source.T @ target
    return np.argmin(distances, axis=1)


@pytest.mark.parametrize("offset, group", [("scrambled", 1), ("scattered", 3)])
def test_avae_scrambled_and_scattered_offsets_are_the_residual_with_one_fixed_permutation(offset, group):
    """"scrambled" moves every entry on its own; "scattered" moves each pixel's 3 channels together."""
    encoder, decoder = helpers.networks("mlp", observation_variance=0.5)
    batch = helpers.images(6)
    model = models.AVAE(encoder, decoder, seed=7, delusion_offset=offset, offset_scale=0.5)

    def offset_and_residual(model, step=4):  # [B, entries moved, entries moved together]
        return (o.reshape(6, -1, group) for o in _offset(model, batch, step))

    moved = None
    for step in (4, 9):  # another posterior draw, the same permutation for every example
        moved_offset, residual = offset_and_residual(model, step)
        if moved is None:  # read off the first step's batch, first entry of each group
            moved = _moved_entries(residual[..., 0], moved_offset[..., 0] / 0.5)
        expected = np.empty_like(residual)
        expected[:, moved] = 0.5 * residual  # every entry of a group moved to the same place
        np.testing.assert_allclose(moved_offset, expected, atol=1e-5)
    assert np.count_nonzero(moved == np.arange(len(moved))) < 20  # moved (about 1 stays, by chance)
    if offset == "scrambled":
        to_pixel = (moved // 3).reshape(-1, 3)  # channels apart, unlike "scattered": (1/784)^2 per pixel by chance
        assert np.count_nonzero((to_pixel == to_pixel[:, :1]).all(1)) < 5
        flat_offset, flat_residual = moved_offset.reshape(6, -1), residual.reshape(6, -1)
        assert np.abs((_unit_rows(flat_offset) * _unit_rows(flat_residual)).sum(1)).max() < 0.2  # not its direction
    other_seed, residual = offset_and_residual(models.AVAE(encoder, decoder, seed=8, delusion_offset=offset))
    assert np.count_nonzero(_moved_entries(residual[..., 0], other_seed[..., 0]) == moved) < 20


@pytest.mark.parametrize("pixels", [None, 1, 9])
def test_avae_shifted_offset_is_the_residual_moved_down_and_right_by_a_few_pixels(pixels, tmp_path):
    from tf_avae.models.avae import SHIFT_PIXELS

    encoder, decoder = helpers.networks("mlp", observation_variance=0.5)
    batch = helpers.images(6)
    shift = {} if pixels is None else {"offset_shift": pixels}
    model = models.AVAE(encoder, decoder, seed=7, delusion_offset="shifted", offset_scale=0.5, **shift)
    moved, decoded, noise = _moved_delusion(model, batch)
    shifted = np.zeros_like(batch)  # built by slicing, not rolling: the wrapped-around rows and columns apart
    k = SHIFT_PIXELS if pixels is None else pixels
    residual = decoded - batch
    shifted[:, k:, k:] = residual[:, :-k, :-k]
    shifted[:, :k, k:] = residual[:, -k:, :-k]
    shifted[:, k:, :k] = residual[:, :-k, -k:]
    shifted[:, :k, :k] = residual[:, -k:, -k:]
    np.testing.assert_allclose(moved, batch + 0.5 * shifted + noise, atol=1e-5)
    assert 0 < SHIFT_PIXELS < batch.shape[1] // 2
    if pixels is not None:  # the shift is part of the saved model
        reloaded = helpers.save_and_reload(model, tmp_path / "shifted.keras")
        assert reloaded.offset_shift == pixels
        np.testing.assert_array_equal(_moved_delusion(reloaded, batch)[0], moved)


class Recorder(keras.layers.Layer):
    """Records the last tensor it was given (a test probe wrapped around a network input)."""

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.seen = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="seen")

    def call(self, x):
        self.seen.assign(x)
        return x


def test_aavae_feeds_the_encoder_the_augmented_image_and_scores_the_original():
    encoder, decoder = helpers.networks("mlp")
    batch = helpers.images(4)
    model = models.AAVAE(encoder, decoder, augmentation=helpers.Shift(0.25), seed=0)
    encoder_probe, target_probe = Recorder(batch.shape), Recorder(batch.shape)
    original_call, original_log_prob = encoder.call, decoder.log_prob
    encoder.call = lambda x, training=None: original_call(encoder_probe(x), training=training)
    decoder.log_prob = lambda x, raw: original_log_prob(target_probe(x), raw)
    helpers.compiled(model)
    model.train_on_batch(batch)
    np.testing.assert_allclose(encoder_probe.seen.numpy(), batch + 0.25, rtol=1e-6)
    np.testing.assert_allclose(target_probe.seen.numpy(), batch, rtol=1e-6)


def test_avae_with_an_augmentation_encodes_the_augmented_image_and_couples_it_to_the_delusion():
    encoder, decoder = helpers.networks("mlp")
    batch = helpers.images(4)
    model = models.AVAE(encoder, decoder, rho=0.8, beta=0.5, delusion="mean", augmentation=helpers.Shift(0.25),
                        seed=3)
    with helpers.recorded_inputs(encoder, "call") as encoded, helpers.recorded_inputs(decoder, "log_prob") as targets:
        terms = helpers.loss_terms_at(model, batch, step=2, training=True)
    assert len(encoded) == 2 and len(targets) == 1
    np.testing.assert_allclose(encoded[0], batch + 0.25, rtol=1e-6)  # the data path sees A(x)
    np.testing.assert_allclose(targets[0], batch, rtol=1e-6)  # and rebuilds x
    # the delusion is the decoder mean at a code of A(x), and the terms are eq. 10's closed forms, in numpy,
    # for q(z|A(x)) and q(z'|x~)
    mean, log_var = (t.numpy() for t in encoder(batch + 0.25))
    mean_aux, log_var_aux = (t.numpy() for t in encoder(encoded[1]))
    kl = 0.5 * (np.exp(log_var) + mean**2 - 1 - log_var).sum(-1)
    coupling = ((np.exp(log_var_aux) + 0.64 * np.exp(log_var) + (mean_aux - 0.8 * mean) ** 2) / (2 * 0.36)
                + 0.5 * np.log(2 * np.pi * 0.36)).sum(-1)
    entropy = 0.5 * (log_var_aux + np.log(2 * np.pi) + 1).sum(-1)
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-4)
    np.testing.assert_allclose(terms["delusion_coupling"], coupling, rtol=1e-4)
    np.testing.assert_allclose(terms["delusion_entropy"], entropy, rtol=1e-4)
    np.testing.assert_allclose(terms["loss"], terms["reconstruction"] + 0.5 * kl + coupling - entropy, rtol=1e-4)
    # evaluation (training=False) leaves the image alone: the plain AVAE's terms
    plain = models.AVAE(encoder, decoder, rho=0.8, beta=0.5, delusion="mean", seed=3)
    for key, value in helpers.loss_terms_at(plain, batch).items():
        np.testing.assert_allclose(helpers.loss_terms_at(model, batch)[key], value, rtol=1e-6)


def test_an_avae_config_with_an_augmentation_builds_the_augmented_avae():
    from tf_avae import augment, train_lib

    config = train_lib.base_config()
    config.model = {"name": "avae", "rho": 0.9, "augmentation": {"name": "gaussian_noise", "stddev": 0.5}}
    config.network.architecture, config.network.kwargs = "mlp", {"hidden_sizes": (16,)}
    model = train_lib.build_model(config)
    assert isinstance(model, models.AVAE) and isinstance(model.augmentation, augment.GaussianNoiseAugment)
    assert model.augmentation.stddev == 0.5 and model.augmentation.region == "all"
    config.model.augmentation.region = "background"
    assert train_lib.build_model(config).augmentation.region == "background"
    config.model = {"name": "avae", "rho": 0.9}
    assert train_lib.build_model(config).augmentation is None
    with pytest.raises(TypeError, match="augmentation must be a keras Layer"):
        models.AVAE(*helpers.networks("mlp"), augmentation="noise")


def test_aavae_with_simclr_augmentation_reconstructs_the_original():
    model = helpers.make_model("AAVAE", "mlp")
    batch = helpers.images(4)
    augmented = model.augmentation(batch, training=True).numpy()
    assert np.abs(augmented - batch).max() > 0.05  # the encoder input really changes
    vae = models.VAE(model.encoder, model.decoder, beta=0.0, seed=model.seed)
    # with the augmentation switched off (training=False) the AAVAE loss is the beta=0 VAE loss
    np.testing.assert_allclose(helpers.loss_terms_at(model, batch)["loss"],
                               helpers.loss_terms_at(vae, batch)["loss"], rtol=1e-6)


def test_beta_zero_keeps_an_infinite_kl_out_of_the_loss_and_sampling_clips_the_log_variance():
    # With beta = 0 nothing bounds the encoder's variance: on colorMNIST (lr 1e-3) an AAVAE's log sigma^2
    # reached ~90 within 20 steps, exp overflowed and the loss became 0 * inf = NaN.
    encoder, decoder = helpers.networks("mlp")
    batch = helpers.images(4)
    model = models.AAVAE(encoder, decoder, augmentation=helpers.Shift(0.0), seed=0)
    original_call = encoder.call
    encoder.call = lambda x, training=None: (original_call(x, training=training)[0],
                                             tf.fill([tf.shape(x)[0], model.latent_dim], 200.0))
    terms = helpers.loss_terms_at(model, batch)
    assert np.all(np.isinf(terms["kl"]))  # reported as it is
    np.testing.assert_array_equal(terms["loss"], terms["reconstruction"])
    assert np.all(np.isfinite(terms["loss"]))

    mean = tf.zeros([3, 2])
    log_variance = tf.constant([[200.0, 0.5], [-200.0, 0.5], [20.0, -30.0]])
    noise_model = models.VAE(*helpers.networks("mlp"), seed=0)
    z = noise_model.sample_posterior(mean, log_variance, tf.constant([0, 0], tf.int64)).numpy()
    eps = noise_model.sample_posterior(mean, tf.zeros_like(log_variance), tf.constant([0, 0], tf.int64)).numpy()
    low, high = models.base.LOG_VARIANCE_RANGE
    np.testing.assert_allclose(z, eps * np.exp(0.5 * np.clip(log_variance.numpy(), low, high)), rtol=1e-6)


def test_reference_posterior_scale_draws_with_the_variance_and_survives_a_reload(tmp_path):
    # DeepMind's AVAE code draws z = mu + sigma^2 * eps; the default is the reparameterisation mu + sigma * eps.
    mean = tf.constant([[1.0, -2.0], [0.5, 0.0]])
    log_variance = tf.constant([[-2.0, 0.0], [1.0, -6.0]])
    seed = tf.constant([4, 2], tf.int64)
    paper = models.AVAE(*helpers.networks("mlp"), seed=0)
    reference = models.AVAE(*helpers.networks("mlp"), seed=0, posterior_scale="variance")
    eps = (paper.sample_posterior(tf.zeros_like(mean), tf.zeros_like(mean), seed)).numpy()
    np.testing.assert_allclose(paper.sample_posterior(mean, log_variance, seed).numpy(),
                               mean.numpy() + np.exp(0.5 * log_variance.numpy()) * eps, rtol=1e-6)
    np.testing.assert_allclose(reference.sample_posterior(mean, log_variance, seed).numpy(),
                               mean.numpy() + np.exp(log_variance.numpy()) * eps, rtol=1e-6)
    reloaded = helpers.save_and_reload(helpers.compiled(reference), tmp_path / "reference.keras")
    assert reloaded.posterior_scale == "variance"
    batch = helpers.images(4)
    np.testing.assert_array_equal(helpers.loss_terms_at(reloaded, batch)["loss"],
                                  helpers.loss_terms_at(reference, batch)["loss"])
    with pytest.raises(ValueError, match="posterior_scale"):
        models.VAE(*helpers.networks("mlp"), posterior_scale="sigma")


@pytest.mark.parametrize("name", sorted(helpers.MODEL_FACTORIES))
def test_every_model_survives_keras_save_and_load(name, tmp_path):
    model = helpers.compiled(helpers.make_model(name))
    batch = helpers.images(8)
    model.fit(batch, batch_size=4, epochs=1, verbose=0)
    reloaded = helpers.save_and_reload(model, tmp_path / f"{name}.keras")
    assert type(reloaded) is type(model)
    for key, value in model(batch).items():
        np.testing.assert_array_equal(reloaded(batch)[key].numpy(), value.numpy())
    before, after = helpers.loss_terms_at(model, batch, step=7), helpers.loss_terms_at(reloaded, batch, step=7)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])
    assert reloaded.get_config()["seed"] == model.get_config()["seed"]


def test_same_seed_repeats_training_and_another_seed_does_not():
    batch = helpers.images(16)

    def trained(seed):
        keras.utils.set_random_seed(0)  # same initial weights
        encoder, decoder = helpers.networks("mlp")
        model = helpers.compiled(models.VAE(encoder, decoder, seed=seed))
        model.fit(batch, batch_size=8, epochs=2, shuffle=False, verbose=0)
        return np.concatenate([w.ravel() for w in model.get_weights()])

    np.testing.assert_array_equal(trained(1), trained(1))
    assert np.abs(trained(1) - trained(2)).max() > 0


@pytest.mark.parametrize("kwargs, message", [
    ({"rho": 1.0}, "rho"), ({"rho": -1.5}, "rho"), ({"beta": -0.1}, "beta"), ({"delusion": "noise"}, "delusion"),
    ({"rho": float("nan")}, "rho"), ({"delusion_offset": "data"}, "delusion_offset"),
    ({"offset_scale": -0.5}, "offset_scale"), ({"offset_scale": float("nan")}, "offset_scale"),
    ({"offset_shift": 0}, "offset_shift"), ({"offset_shift": 2.5}, "offset_shift"),
    ({"offset_shift": 2}, "offset_shift.*only the \"shifted\""),  # would be ignored by the default offset
])
def test_bad_hyperparameters_are_rejected_by_name(kwargs, message):
    encoder, decoder = helpers.networks("mlp")
    with pytest.raises((ValueError, TypeError), match=message):
        models.AVAE(encoder, decoder, **kwargs)


def test_mismatched_networks_are_rejected():
    encoder, _ = helpers.networks("mlp")
    _, decoder = helpers.networks("mlp", image_shape=(28, 28, 1))
    with pytest.raises(ValueError, match="image_shape"):
        models.VAE(encoder, decoder)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((4, 28, 28), np.float32), "rank 4"),
    (np.zeros((4, 32, 32, 3), np.float32), r"\(28, 28, 3\)"),
    (np.zeros((4, 28, 28, 3), np.uint8), "float"),
    (np.full((4, 28, 28, 3), np.nan, np.float32), "NaN"),
    (np.full((4, 28, 28, 3), 2.0, np.float32), r"\[0, 1\]"),
])
def test_bad_images_are_rejected_before_any_step(bad, message):
    model = helpers.compiled(helpers.make_model("VAE", "mlp"))
    weights = [w.copy() for w in model.get_weights()]
    with pytest.raises((ValueError, TypeError), match=message):
        model.fit(bad, batch_size=2, epochs=1, verbose=0)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_wrong_image_size_in_a_dataset_fails_when_the_step_is_traced():
    model = helpers.compiled(helpers.make_model("VAE", "mlp"))
    dataset = tf.data.Dataset.from_tensor_slices(np.zeros((4, 32, 32, 3), np.float32)).batch(2)
    with pytest.raises(ValueError, match=r"x must have images of shape \(28, 28, 3\)"):
        model.fit(dataset, epochs=1, verbose=0)


@pytest.mark.parametrize("name, beta, mean_activation, warns", [
    ("AE", None, "sigmoid", True),
    ("AAVAE", 0.0, "sigmoid", True),
    ("VAE", 0.0, "sigmoid", True),
    ("AAVAE", 0.0, "linear", False),
    ("AAVAE", 0.1, "sigmoid", False),
    ("VAE", 1.0, "sigmoid", False),
])
def test_fit_warns_when_nothing_bounds_the_codes_of_a_sigmoid_gaussian_decoder(name, beta, mean_activation, warns):
    encoder, decoder = helpers.networks("mlp", mean_activation=mean_activation)
    kwargs = {} if beta is None else {"beta": beta}
    if name == "AAVAE":
        kwargs["augmentation"] = helpers.Shift()
    model = getattr(models, name)(encoder, decoder, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(helpers.images(8), batch_size=8, epochs=1, verbose=0)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)
                and "mean_activation='linear'" in str(w.message)]
    assert bool(messages) == warns, messages
    if warns:
        assert f"{name} has no KL term" in messages[0]


def test_a_frozen_decoder_is_not_warned_about():
    vae = models.VAE(*helpers.networks("mlp"), beta=0.0)
    post = models.AVAESS(*helpers.networks("mlp"), beta=0.0, batch_size=8)  # trains the encoder alone
    assert vae.saturation_risk() and post.saturation_risk() is None
