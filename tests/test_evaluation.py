"""Evaluation metrics checked against independent facts: closed forms, chance levels, exact inverses.

Synthetic data only (no dataset cache needed); tiny networks from helpers.py.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import binom

import helpers
from tf_avae import evaluation as ev
from tf_avae import models
from tf_avae.evaluation.adapter import EncoderAdapter

COLOURS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]], np.float32)


def synthetic_color_mnist(n, seed=0):
    """colorMNIST-shaped data: a 9x5 bar at one of 10 positions ('digit'), in one of 7 colours ('colour')."""
    rng = np.random.default_rng(seed)
    digit = rng.integers(0, 10, n)
    colour = rng.integers(0, 7, n)
    images = np.zeros((n, 28, 28, 1), np.float32)
    for i, d in enumerate(digit):
        row, col = divmod(int(d), 5)
        images[i, 3 + 12 * row : 12 + 12 * row, 1 + 5 * col : 6 + 5 * col] = 1.0
    images = images * COLOURS[colour][:, None, None, :]
    return images, {"digit": digit.astype(np.int32), "colour": colour.astype(np.int32)}


def binomial_interval(n, p, alpha=1e-4):
    """Accuracy range in percent that a chance classifier stays in with probability 1 - alpha."""
    low, high = binom.ppf(alpha / 2, n, p), binom.ppf(1 - alpha / 2, n, p)
    return 100.0 * low / n, 100.0 * high / n


def constant_encoder_adapter(latent_dim=4):
    """An encoder whose output ignores its input (connected to it, with an exactly zero gradient)."""
    code = tf.constant(np.linspace(-1.0, 1.0, latent_dim), tf.float32)

    def encode(x):
        zero = 0.0 * tf.reduce_sum(x, axis=[1, 2, 3], keepdims=False)[:, None]
        return zero + code, zero + tf.zeros([latent_dim])

    return EncoderAdapter(encode=encode, name="constant")


def identity_autoencoder(decoder_scale=1.0):
    """mean(x) = flatten(x), decode(z) = decoder_scale * reshape(z): exact inverses when the scale is 1."""
    shape = helpers.IMAGE_SHAPE

    def encode(x):
        flat = tf.reshape(x, [tf.shape(x)[0], -1])
        return flat, tf.zeros_like(flat)

    return EncoderAdapter(encode=encode, decode=lambda z: decoder_scale * tf.reshape(z, [-1, *shape]), name="identity")


@pytest.fixture(scope="module")
def vae():
    return helpers.make_model("VAE")


@pytest.fixture(scope="module")
def data():
    return synthetic_color_mnist(300, seed=1), synthetic_color_mnist(200, seed=2)


@pytest.fixture(scope="module")
def probes(vae, data):
    (train_x, train_y), _ = data
    features = ev.encode_features(vae, train_x)
    return {task: ev.fit_linear_probe(features, y, num_classes=10 if task == "digit" else 7)
            for task, y in train_y.items()}


# ------------------------------------------------------------------------------------------------ probe


def _blobs(n, num_classes=3, dim=10, seed=0):
    rng = np.random.default_rng(seed)
    centres = 6.0 * rng.standard_normal((num_classes, dim))
    labels = rng.integers(0, num_classes, n)
    return (centres[labels] + rng.standard_normal((n, dim))).astype(np.float32), labels


def test_probe_separates_linearly_separable_classes():
    x, y = _blobs(1200, seed=0)  # one draw: train and test share the class centres
    x_train, y_train, x_test, y_test = x[:600], y[:600], x[600:], y[600:]
    probe = ev.fit_linear_probe(x_train * 100.0 + 7.0, y_train)  # scale and offset: standardisation handles it
    assert ev.probe_accuracy(probe, x_test * 100.0 + 7.0, y_test) > 95.0


def test_probe_on_shuffled_labels_is_at_chance():
    rng = np.random.default_rng(3)
    n, k = 1500, 3
    x = rng.standard_normal((2 * n, 10)).astype(np.float32)
    y = rng.integers(0, k, 2 * n)  # independent of x
    probe = ev.fit_linear_probe(x[:n], y[:n])
    low, high = binomial_interval(n, 1.0 / k)
    assert low <= ev.probe_accuracy(probe, x[n:], y[n:]) <= high


def test_probe_is_deterministic_and_refits_in_place_and_handles_missing_and_binary_classes():
    x, y = _blobs(300, seed=1)
    first = ev.fit_linear_probe(x, y, num_classes=5)  # classes 3 and 4 never seen
    second = ev.fit_linear_probe(x, y, num_classes=5)
    np.testing.assert_array_equal(first(x).numpy(), second(x).numpy())
    assert set(np.argmax(first(x).numpy(), axis=1)) <= {0, 1, 2}
    refitted = ev.fit_linear_probe(x[:, ::-1].copy(), y, num_classes=5, probe=first)
    assert refitted is first and not np.allclose(first(x).numpy(), second(x).numpy())
    binary = (x[:, 0] > np.median(x[:, 0])).astype(np.int64)
    assert ev.probe_accuracy(ev.fit_linear_probe(x, binary), x, binary) > 95.0


def test_probe_standardises_or_only_centres_its_features_as_scikit_learn_fits_them():
    from sklearn.linear_model import LogisticRegression

    x, y = _blobs(400, seed=2)
    x = x * np.array([100.0, 0.01] + [1.0] * 8, np.float32)  # scales 1e4 apart: the penalty weighs them differently
    centred = x.astype(np.float64) - x.mean(axis=0, dtype=np.float64)  # in float64, as the probe's fit
    for standardise, inputs in ((True, centred / centred.std(axis=0)), (False, centred)):
        probe = ev.fit_linear_probe(x, y, C=0.05, standardise=standardise)
        reference = LogisticRegression(C=0.05, max_iter=1000).fit(inputs, y)
        np.testing.assert_allclose(probe(x).numpy(), reference.decision_function(inputs), rtol=1e-3, atol=1e-3)
    raw = ev.fit_linear_probe(x, y, C=0.05, standardise=False)
    scaled = ev.fit_linear_probe(x, y, C=0.05)
    np.testing.assert_array_equal(raw.feature_scale.numpy(), np.ones(10, np.float32))
    assert not np.allclose(raw(x).numpy(), scaled(x).numpy(), atol=1e-2)
    with pytest.raises(TypeError, match="standardise must be a bool"):
        ev.fit_linear_probe(x, y, standardise="no")


def test_probe_rejects_bad_input_naming_the_argument():
    x, y = _blobs(20)
    with pytest.raises(ValueError, match="labels_train"):
        ev.fit_linear_probe(x, y[:10])
    with pytest.raises(ValueError, match="num_classes=2"):
        ev.fit_linear_probe(x, y, num_classes=2)
    with pytest.raises(ValueError, match="feature"):
        ev.encode_features(helpers.make_model("VAE"), helpers.images(2), feature="pixels")


def test_logits_fn_composes_encoder_mean_and_probe(vae, probes, data):
    _, (test_x, _) = data
    logits = ev.make_logits_fn(vae, probes["colour"])(tf.constant(test_x[:5])).numpy()
    mean, _ = vae.encode(test_x[:5])
    np.testing.assert_allclose(logits, probes["colour"](mean).numpy(), rtol=1e-5, atol=1e-5)


def test_backbone_features_are_the_encoders_features_and_can_be_attacked(vae, data):
    (train_x, train_y), (test_x, test_y) = data
    features = ev.encode_features(vae, train_x, feature="backbone", batch_size=64)
    np.testing.assert_allclose(features, vae.encoder.features(train_x).numpy(), rtol=1e-5, atol=1e-5)
    probe = ev.fit_linear_probe(features, train_y["colour"])
    results = ev.robust_accuracy(vae, {"colour": probe}, test_x[:40], {"colour": test_y["colour"][:40]},
                                 radii=(0.0, 0.05), pgd_steps=2, feature="backbone")
    clean = ev.probe_accuracy(probe, ev.encode_features(vae, test_x[:40], feature="backbone"), test_y["colour"][:40])
    assert results["adv/colour/eps=0"] == pytest.approx(clean)


def test_adapter_rejects_objects_that_are_not_models():
    with pytest.raises(TypeError, match="model must be"):
        ev.as_encoder_adapter(42)
    with pytest.raises(TypeError, match="mean"):
        EncoderAdapter(encode=lambda x: {"z": x}).encode(tf.zeros([1, 2]))


# ------------------------------------------------------------------------------------------------ robustness


def test_radius_zero_is_clean_accuracy_and_accuracy_does_not_increase_with_radius(vae, probes, data):
    _, (test_x, test_y) = data
    radii = (0.0, 0.002, 0.005, 0.01, 0.5)
    cascaded = ev.robust_accuracy(vae, probes, test_x, test_y, radii=radii, pgd_steps=5)
    independent = ev.robust_accuracy(vae, probes, test_x, test_y, radii=radii, pgd_steps=5, cascade=False)
    features = ev.encode_features(vae, test_x)
    for task in test_y:
        clean = ev.probe_accuracy(probes[task], features, test_y[task])
        assert cascaded[f"adv/{task}/eps=0"] == pytest.approx(clean)
        assert independent[f"adv/{task}/eps=0"] == pytest.approx(clean)
        for results in (cascaded, independent):
            curve = [results[f"adv/{task}/eps={r:g}"] for r in radii]
            assert all(0.0 <= a <= 100.0 for a in curve)
            assert all(later <= earlier for earlier, later in zip(curve, curve[1:])), curve
        # cascading only skips examples already broken at a smaller radius: it finds what attacking all finds
        for r in radii:
            assert abs(cascaded[f"adv/{task}/eps={r:g}"] - independent[f"adv/{task}/eps={r:g}"]) <= 5.0
    # the attack does something: the untrained encoder is not robust at all
    assert cascaded["adv/digit/eps=0"] > 50.0
    assert cascaded["adv/digit/eps=0.01"] < 0.8 * cascaded["adv/digit/eps=0"]
    assert cascaded["adv/digit/eps=0.5"] == 0.0


def test_constant_encoder_is_perfectly_robust_and_at_chance():
    (train_x, train_y), (test_x, test_y) = synthetic_color_mnist(200, seed=3), synthetic_color_mnist(700, seed=4)
    model = constant_encoder_adapter()
    features = ev.encode_features(model, train_x)
    probes = {task: ev.fit_linear_probe(features, y, num_classes=10 if task == "digit" else 7)
              for task, y in train_y.items()}
    results = ev.robust_accuracy(model, probes, test_x, test_y, radii=(0.0, 0.1, 0.3), pgd_steps=5)
    for task, k in (("digit", 10), ("colour", 7)):
        clean = results[f"adv/{task}/eps=0"]
        assert results[f"adv/{task}/eps=0.1"] == clean and results[f"adv/{task}/eps=0.3"] == clean
        low, high = binomial_interval(len(test_x), 1.0 / k)
        assert low <= clean <= high


def test_an_attack_on_one_region_is_keyed_by_it_and_moves_only_that_region(vae, probes, data):
    # Black images are all background: attacking their foreground can change nothing, attacking their background
    # is the whole attack. Labels are the clean predictions, so every example starts correct.
    black = np.zeros((64, 28, 28, 3), np.float32)
    features = ev.encode_features(vae, black)
    labels = {task: probe(features).numpy().argmax(axis=-1) for task, probe in probes.items()}
    kwargs = dict(radii=(0.0, 0.5), pgd_steps=5, seed=3)
    everywhere = ev.robust_accuracy(vae, probes, black, labels, **kwargs)
    background = ev.robust_accuracy(vae, probes, black, labels, region="background", **kwargs)
    foreground = ev.robust_accuracy(vae, probes, black, labels, region="foreground", **kwargs)
    assert background == {key.replace("adv/", "adv_background/"): value for key, value in everywhere.items()}
    assert foreground == {key.replace("adv/", "adv_foreground/"): 100.0 for key in everywhere}
    assert everywhere["adv/digit/eps=0.5"] < 100.0  # the attack does break them where it may act
    with pytest.raises(ValueError, match="region"):
        ev.robust_accuracy(vae, probes, black, labels, region="digit")


def test_robust_accuracy_rejects_bad_radii_and_unknown_tasks(vae, probes, data):
    _, (test_x, test_y) = data
    with pytest.raises(ValueError, match=r"radii\[1\]"):
        ev.robust_accuracy(vae, probes, test_x, test_y, radii=(0.0, -0.1))
    with pytest.raises(ValueError, match="without a probe"):
        ev.robust_accuracy(vae, {"digit": probes["digit"]}, test_x, test_y)


def test_attack_through_an_exported_savedmodel_matches_the_keras_model(vae, probes, data, tmp_path):
    _, (test_x, test_y) = data
    vae.export(str(tmp_path / "exported"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "exported"))
    labels = {"colour": test_y["colour"][:64]}
    kwargs = dict(radii=(0.0, 0.1), pgd_steps=3, seed=7)
    from_keras = ev.robust_accuracy(vae, probes, test_x[:64], labels, **kwargs)
    from_savedmodel = ev.robust_accuracy(loaded, probes, test_x[:64], labels, **kwargs)
    assert from_savedmodel == pytest.approx(from_keras, abs=100.0 / 64 + 1e-9)  # at most one example flips


# ------------------------------------------------------------------------------------------------ quality


def test_frechet_distance_matches_closed_forms():
    # 1-D: (m1 - m2)^2 + s1 + s2 - 2 sqrt(s1 s2)
    assert ev.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 4.0 + 9.0 - 12.0)
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    v1, v2 = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert ev.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-9)
    # invariant under a common rotation (exercises the non-diagonal path)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    rotated = ev.frechet_distance(q @ mu1, q @ np.diag(v1) @ q.T, q @ mu2, q @ np.diag(v2) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-6)
    # singular covariances (fewer samples than dimensions) stay finite
    a = rng.standard_normal((3, 6))
    assert np.isfinite(ev.frechet_distance(mu1, a.T @ a, mu1, a.T @ a))
    with pytest.raises(ValueError, match="sigma2"):
        ev.frechet_distance(mu1, np.eye(6), mu2, np.eye(5))


CLASSIFIER = dict(epochs=3, batch_size=32, feature_units=32)


@pytest.fixture(scope="module")
def feature_classifier(tmp_path_factory):
    images, labels = synthetic_color_mnist(256, seed=5)
    cache = tmp_path_factory.mktemp("classifier")
    model = ev.train_feature_classifier(images, labels, seed=0, cache_dir=cache, **CLASSIFIER)
    return model, cache, (images, labels)


def test_feature_classifier_is_deterministic_and_cached(feature_classifier):
    model, cache, (images, labels) = feature_classifier
    files = list(cache.glob("feature_classifier-*.keras"))
    assert len(files) == 1
    again = ev.train_feature_classifier(images, labels, seed=0, **CLASSIFIER)  # retrained: no cache
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    cached = ev.train_feature_classifier(images, labels, seed=0, cache_dir=cache, **CLASSIFIER)
    assert len(list(cache.glob("*.keras"))) == 1
    for a, b in zip(model.get_weights(), cached.get_weights()):
        np.testing.assert_array_equal(a, b)
    other_seed = ev.train_feature_classifier(images, labels, seed=1, cache_dir=cache, **CLASSIFIER)
    assert len(list(cache.glob("*.keras"))) == 2
    assert not np.allclose(model.get_weights()[0], other_seed.get_weights()[0])
    accuracy = ev.classifier_accuracy(model, images, labels)
    assert accuracy["colour"] > 25.0 and accuracy["digit"] > 50.0  # learnt something (chance: 14% / 10%)


def test_classifier_fid_is_zero_against_itself_and_grows_with_noise(feature_classifier):
    model, _, _ = feature_classifier
    images, _ = synthetic_color_mnist(400, seed=6)
    assert ev.classifier_fid(images, images, model) < 1e-6 * (1.0 + ev.feature_statistics(model, images)[1].trace())
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(images.shape).astype(np.float32)
    fids = [ev.classifier_fid(images, np.clip(images + s * noise, 0.0, 1.0), model) for s in (0.05, 0.1, 0.2, 0.4)]
    assert all(b > a for a, b in zip(fids, fids[1:])), fids
    assert fids[0] > 0.0


def test_reconstruction_error_matches_numpy(vae, data):
    _, (test_x, _) = data
    result = ev.reconstruction_error(vae, test_x[:50], batch_size=16)
    reconstruction = vae(test_x[:50])["reconstruction"].numpy()
    squared = (test_x[:50].astype(np.float64) - reconstruction) ** 2
    assert result["mse"] == pytest.approx(squared.mean(), rel=1e-5)
    assert result["mse/per_image_sum"] == pytest.approx(squared.reshape(50, -1).sum(1).mean(), rel=1e-5)
    exact = ev.reconstruction_error(identity_autoencoder(), test_x[:10])
    assert exact == {"mse": 0.0, "mse/per_image_sum": 0.0}


def test_prior_samples_are_decoder_means_of_standard_normal_latents(vae):
    samples = ev.sample_prior_images(vae, 5, seed=3)
    latents = np.random.default_rng(3).standard_normal((5, vae.latent_dim)).astype(np.float32)
    np.testing.assert_allclose(samples, vae.decode(latents).numpy(), rtol=1e-5, atol=1e-6)


def test_prior_samples_of_a_linear_mean_decoder_are_clipped_to_the_pixel_range():
    model = models.VAE(*helpers.networks("mlp", mean_activation="linear"), seed=0)
    decoder_bias = model.decoder.trainable_variables[-1]
    decoder_bias.assign(np.linspace(-2.0, 3.0, decoder_bias.shape[0]).astype(np.float32))  # means leave [0, 1]
    latents = np.random.default_rng(3).standard_normal((5, model.latent_dim)).astype(np.float32)
    means = model.decode(latents).numpy()
    assert means.min() < 0.0 and means.max() > 1.0
    np.testing.assert_allclose(ev.sample_prior_images(model, 5, seed=3), np.clip(means, 0.0, 1.0), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------ consistency


def test_consistency_of_an_exact_identity_autoencoder_is_zero_and_chain_shapes():
    images = helpers.images(6)
    result = ev.latent_consistency(identity_autoencoder(), images, steps=3)
    assert result == {"consistency/step=1": 0.0, "consistency/step=2": 0.0, "consistency/step=3": 0.0}
    chain = ev.encode_decode_chain(identity_autoencoder(), images, steps=3)
    assert chain.shape == (4, 6, *helpers.IMAGE_SHAPE)
    np.testing.assert_array_equal(chain[3], images)


def test_consistency_grows_as_the_closed_form_of_a_shrinking_decoder():
    # decode = 0.5 * identity: mu_k = 0.5^k x, so ||mu_k - mu_0|| = (1 - 0.5^k) ||x||
    images = helpers.images(5)
    norm = np.linalg.norm(images.reshape(5, -1).astype(np.float64), axis=1).mean()
    result = ev.latent_consistency(identity_autoencoder(0.5), images, steps=3, batch_size=2)
    for k in (1, 2, 3):
        assert result[f"consistency/step={k}"] == pytest.approx((1 - 0.5**k) * norm, rel=1e-5)
    chain = ev.encode_decode_chain(identity_autoencoder(0.5), images, steps=2)
    np.testing.assert_allclose(chain[2], 0.25 * images, rtol=1e-6)


def test_consistency_on_a_model_and_without_a_decoder(vae):
    result = ev.latent_consistency(vae, helpers.images(4), steps=2)
    assert sorted(result) == ["consistency/step=1", "consistency/step=2"] and result["consistency/step=1"] > 0
    with pytest.raises(ValueError, match="no decoder"):
        ev.latent_consistency(constant_encoder_adapter(), helpers.images(2))


# ------------------------------------------------------------------------------------------------ similarity


def test_identity_augmentation_gives_same_image_similarity_one(vae):
    images = helpers.images(40)
    metrics, arrays = ev.augmentation_similarity(vae, images, lambda x: x)
    np.testing.assert_allclose(arrays["same"], 1.0, atol=1e-5)
    assert metrics["similarity/same_mean"] == pytest.approx(1.0, abs=1e-5)
    assert arrays["different"].shape == (40,) and np.all(arrays["different"] < 1.0 - 1e-6)
    assert metrics["similarity/auc"] == pytest.approx(1.0)


def test_random_augmentation_layer_and_cosine_similarity(vae):
    noise = keras.layers.GaussianNoise(0.3, seed=1)  # a Keras layer: called with training=True
    metrics, arrays = ev.augmentation_similarity(vae, helpers.images(30), noise)
    assert np.all(arrays["same"] < 1.0 - 1e-6) and -1.0 <= metrics["similarity/different_mean"] <= 1.0
    a, b = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]), np.array([[0.0, 2.0], [3.0, 3.0], [1.0, 0.0]])
    np.testing.assert_allclose(ev.cosine_similarity(a, b), [0.0, 1.0, 0.0])
