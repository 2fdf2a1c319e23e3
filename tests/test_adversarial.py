"""Tests of tf_avae.adversarial: PGD for the smooth encoder and for the robustness evaluation.

Each test checks the attack against something independent of it: the geometry of the ball, the
closed-form worst case of a linear score, ART's ProjectedGradientDescent, or the clean predictions.
"""

import numpy as np
import pytest
import tensorflow as tf
import keras
from sklearn.datasets import load_digits

from tf_avae.adversarial import (
    adversarial_accuracy,
    adversarial_correctness,
    classifier_cross_entropy_objective,
    encoding_distance_objective,
    make_adversarial_correctness_fn,
    pgd_attack,
    region_mask,
)

NORMS = ["inf", 2]


# ------------------------------------------------------------------------------------------------
# Helpers and fixtures
# ------------------------------------------------------------------------------------------------


def _flat(t):
    t = np.asarray(t)
    return t.reshape(t.shape[0], -1)


def _linf(a, b):
    return np.abs(_flat(a) - _flat(b)).max(axis=1)


def _l2(a, b):
    return np.linalg.norm(_flat(a).astype(np.float64) - _flat(b).astype(np.float64), axis=1)


def _images_with_saturated_pixels(seed, shape=(16, 8, 8, 3)):
    """Random images in [0, 1] where about a third of the pixels are exactly 0 or exactly 1."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=shape).astype(np.float32)
    mask = rng.uniform(size=shape)
    x[mask < 0.15] = 0.0
    x[mask > 0.85] = 1.0
    return x


def _small_convnet(input_shape=(8, 8, 3), classes=5, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(classes),
        ]
    )


def _gaussian_encoder(input_shape=(8, 8, 3), latent=4, seed=0):
    """x -> (mean, log_variance): a tiny functional Keras model with two outputs."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    h = keras.layers.Dense(16, activation="tanh")(keras.layers.Flatten()(inputs))
    mean = keras.layers.Dense(latent)(h)
    log_variance = keras.layers.Dense(latent)(h)
    return keras.Model(inputs, [mean, log_variance])


@pytest.fixture(scope="module")
def digits_model():
    """An MLP trained for ~3 s on sklearn's bundled 8x8 digits (no download), pixels in [0, 1]."""
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    x_train, y_train, x_test, y_test = x[:1297], y[:1297], x[1297:], y[1297:]  # 500 test points
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    model.fit(x_train, y_train, epochs=30, batch_size=64, verbose=0)
    clean_pred = np.argmax(model.predict(x_test, verbose=0), axis=1)
    clean_accuracy = float(np.mean(clean_pred == y_test))
    assert clean_accuracy > 0.9, clean_accuracy
    return model, x_test, y_test, clean_pred


# ------------------------------------------------------------------------------------------------
# Constraints: never leaves the ball nor the pixel range
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "norm, epsilons", [("inf", [0.01, 0.1, 0.3, 1.0]), (2, [0.1, 1.0, 3.0, 20.0])], ids=["linf", "l2"]
)
def test_stays_in_ball_and_pixel_range(norm, epsilons):
    model = _small_convnet()
    x = _images_with_saturated_pixels(1)
    labels = np.arange(len(x)) % 5
    objective = classifier_cross_entropy_objective(model, labels)
    for eps in epsilons:
        for step_size in (0.5 * eps, 3.0 * eps):  # small steps and steps that overshoot the ball
            x_adv = pgd_attack(objective, x, epsilon=eps, step_size=step_size, num_steps=6, norm=norm, seed=(1, 2))
            x_adv = x_adv.numpy()
            assert x_adv.shape == x.shape and x_adv.dtype == np.float32
            assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
            if norm == "inf":
                dist = _linf(x_adv, x)
                assert dist.max() <= eps + 1e-6, (eps, dist.max())
            else:
                dist = _l2(x_adv, x)
                assert dist.max() <= eps * (1 + 1e-5) + 1e-6, (eps, dist.max())
            # Not vacuous: the attack did move every example, and for a small ball to (L-inf) or near (L2:
            # saturated pixels clipped after the projection shorten the step) its surface.
            assert dist.min() > 0.0
            if eps <= 0.1:
                if norm == "inf":
                    np.testing.assert_allclose(dist, eps, rtol=1e-4)
                else:
                    assert dist.min() > 0.9 * eps


def test_custom_clip_range_is_respected():
    x = np.random.default_rng(2).uniform(-1.0, 1.0, size=(8, 10)).astype(np.float32)
    x[:, 0], x[:, 1] = -1.0, 1.0
    objective = lambda v: tf.reduce_sum(tf.square(v), axis=1)  # pushes every coordinate outwards
    x_adv = pgd_attack(objective, x, epsilon=0.3, step_size=0.1, num_steps=5, clip_min=-1.0, clip_max=1.0).numpy()
    assert x_adv.min() >= -1.0 and x_adv.max() <= 1.0
    assert _linf(x_adv, x).max() <= 0.3 + 1e-6


# ------------------------------------------------------------------------------------------------
# Closed-form worst case of a linear classifier
# ------------------------------------------------------------------------------------------------


def _interior_inputs(seed, n=6, d=64):
    return np.random.default_rng(seed).uniform(0.3, 0.7, size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("random_start", [False, True])
def test_linf_reaches_closed_form_worst_case_of_linear_margin(random_start):
    rng = np.random.default_rng(3)
    W = rng.normal(size=(64, 10)).astype(np.float32)
    b = rng.normal(size=10).astype(np.float32)
    x = _interior_inputs(4)
    y, t = np.arange(6) % 10, (np.arange(6) + 3) % 10
    logits_fn = lambda v: tf.matmul(v, W) + b
    margin = lambda v: tf.gather(logits_fn(v), t, batch_dims=1) - tf.gather(logits_fn(v), y, batch_dims=1)
    eps = 0.1
    x_adv = pgd_attack(margin, x, epsilon=eps, step_size=2.5 * eps / 10, num_steps=10, random_start=random_start)
    w = (W[:, t] - W[:, y]).T  # the margin is the linear score w_i . x_i
    expected = x + eps * np.sign(w)
    assert 0.0 < expected.min() and expected.max() < 1.0  # the pixel box does not bind
    np.testing.assert_allclose(x_adv.numpy(), expected, atol=1e-6)
    # The optimum value: margin(x) + eps * ||w||_1.
    np.testing.assert_allclose(
        margin(x_adv).numpy(), margin(x).numpy() + eps * np.abs(w).sum(axis=1), rtol=1e-5, atol=1e-4
    )


@pytest.mark.parametrize("random_start, step_fraction, steps", [(False, 0.25, 8), (True, 1.0, 40)])
def test_l2_reaches_closed_form_worst_case_of_linear_margin(random_start, step_fraction, steps):
    rng = np.random.default_rng(5)
    w = rng.normal(size=64).astype(np.float32)
    x = _interior_inputs(6)
    score = lambda v: tf.linalg.matvec(v, w)
    eps = 0.5
    x_adv = pgd_attack(
        score, x, epsilon=eps, step_size=step_fraction * eps, num_steps=steps, norm=2, random_start=random_start
    )
    expected = x + eps * w / np.linalg.norm(w)
    assert 0.0 < expected.min() and expected.max() < 1.0
    np.testing.assert_allclose(x_adv.numpy(), expected, atol=1e-4)
    np.testing.assert_allclose(score(x_adv).numpy(), score(x).numpy() + eps * np.linalg.norm(w), rtol=1e-5)


@pytest.mark.parametrize("norm", NORMS)
def test_cross_entropy_on_keras_dense_reaches_closed_form(norm):
    """Two-class logits W x + b from a Keras Dense layer with set weights.

    For label y the cross-entropy is softplus((w_other - w_y) . x + const), increasing in that linear
    score, so its worst case is the score's: x + eps sign(w_other - w_y) (L-inf) or along the unit vector.
    """
    rng = np.random.default_rng(7)
    W = rng.normal(size=(64, 2)).astype(np.float32)
    b = np.array([0.2, -0.1], np.float32)
    dense = keras.layers.Dense(2)
    dense.build((None, 64))
    dense.set_weights([W, b])
    x = _interior_inputs(8)
    labels = np.array([0, 1, 0, 1, 1, 0])
    eps = 0.1 if norm == "inf" else 0.5
    x_adv = pgd_attack(
        classifier_cross_entropy_objective(dense, labels),
        x,
        epsilon=eps,
        # L2 from a random start: each projection shrinks the component orthogonal to w by about
        # eps / (eps + step), so long steps converge fast; L-inf lands on the corner exactly.
        step_size=eps / 4 if norm == "inf" else eps,
        num_steps=20,
        norm=norm,
        seed=3,
    ).numpy()
    w = np.where(labels[:, None] == 0, W[:, 1] - W[:, 0], W[:, 0] - W[:, 1])
    if norm == "inf":
        expected = x + eps * np.sign(w)
    else:
        expected = x + eps * w / np.linalg.norm(w, axis=1, keepdims=True)
    assert 0.0 < expected.min() and expected.max() < 1.0
    np.testing.assert_allclose(x_adv, expected, atol=1e-4)


# ------------------------------------------------------------------------------------------------
# Agreement with ART on a trained classifier
# ------------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:PyTorch not found")
@pytest.mark.parametrize("norm, eps", [("inf", 0.05), ("inf", 0.1), (2, 0.5)], ids=["linf-0.05", "linf-0.1", "l2-0.5"])
def test_adversarial_accuracy_agrees_with_art(digits_model, norm, eps):
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import TensorFlowV2Classifier

    model, x_test, y_test, clean_pred = digits_model
    num_steps, step_size = 40, 2.5 * eps / 40
    ours = adversarial_accuracy(
        model, x_test, y_test, epsilon=eps, num_steps=num_steps, step_size=step_size, norm=norm, seed=0
    )
    classifier = TensorFlowV2Classifier(
        model=model,
        nb_classes=10,
        input_shape=(8, 8, 1),
        loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        clip_values=(0.0, 1.0),
    )
    np.random.seed(0)  # ART's random start draws from numpy's global generator
    attack = ProjectedGradientDescent(
        classifier,
        norm=np.inf if norm == "inf" else 2,
        eps=eps,
        eps_step=step_size,
        max_iter=num_steps,
        num_random_init=1,
        batch_size=256,
        verbose=False,
    )
    x_art = attack.generate(x_test, y=y_test)
    art_pred = np.argmax(model.predict(x_art, verbose=0), axis=1)
    art_accuracy = float(np.mean((clean_pred == y_test) & (art_pred == y_test)))
    clean_accuracy = float(np.mean(clean_pred == y_test))
    print(f"norm={norm} eps={eps}: ours {ours:.3f}, ART {art_accuracy:.3f}, clean {clean_accuracy:.3f}")
    # A regime where the comparison means something: neither ~0 nor ~clean.
    assert 0.2 < art_accuracy < clean_accuracy - 0.1
    assert abs(ours - art_accuracy) <= 0.02


# ------------------------------------------------------------------------------------------------
# Epsilon 0, monotonicity, a classifier that ignores its input
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", NORMS)
def test_epsilon_zero_returns_input_exactly(norm):
    x = _images_with_saturated_pixels(8)
    objective = classifier_cross_entropy_objective(_small_convnet(), np.zeros(len(x), np.int64))
    x_adv = pgd_attack(objective, x, epsilon=0.0, step_size=0.1, num_steps=5, norm=norm, random_start=True)
    assert np.array_equal(x_adv.numpy(), x)


def test_epsilon_zero_accuracy_is_clean_accuracy(digits_model):
    model, x_test, y_test, clean_pred = digits_model
    correct = adversarial_correctness(model, x_test, y_test, epsilon=0.0)
    np.testing.assert_array_equal(correct, clean_pred == y_test)
    assert adversarial_accuracy(model, x_test, y_test, epsilon=0.0) == pytest.approx(np.mean(clean_pred == y_test))


def test_accuracy_is_non_increasing_in_epsilon(digits_model):
    model, x_test, y_test, clean_pred = digits_model
    radii = [0.0, 0.03, 0.06, 0.1, 0.15, 0.25]
    accuracies = [adversarial_accuracy(model, x_test, y_test, epsilon=eps, num_steps=20) for eps in radii]
    assert all(a >= b for a, b in zip(accuracies, accuracies[1:])), accuracies
    assert accuracies[0] == pytest.approx(np.mean(clean_pred == y_test))
    assert accuracies[-1] < 0.5 * accuracies[0]  # the attack does bite


def test_robust_examples_are_a_subset_of_clean_correct(digits_model):
    model, x_test, y_test, clean_pred = digits_model
    correct = adversarial_correctness(model, x_test, y_test, epsilon=0.1, batch_size=128)  # ragged last batch
    assert correct.dtype == np.bool_ and correct.shape == (len(x_test),)
    assert not np.any(correct & (clean_pred != y_test))


@pytest.mark.parametrize("norm", NORMS)
def test_constant_classifier_is_unaffected(norm):
    x = _images_with_saturated_pixels(9, shape=(40, 8, 8, 3))
    labels = np.arange(40) % 4
    bias = tf.constant([0.1, 2.0, -1.0, 0.5])
    constant = lambda v: tf.tile(bias[None], [tf.shape(v)[0], 1])  # ignores the pixels entirely
    expected = float(np.mean(labels == 1))
    for eps in (0.0, 0.1, 0.5):
        assert adversarial_accuracy(constant, x, labels, epsilon=eps, norm=norm, num_steps=5) == expected
    # A Dense layer with zero kernel: connected to the input, zero gradient. No step moves x.
    dense = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(4)])
    dense.layers[-1].set_weights([np.zeros((192, 4), np.float32), bias.numpy()])
    assert adversarial_accuracy(dense, x, labels, epsilon=0.3, norm=norm, num_steps=5) == expected
    x_adv = pgd_attack(
        classifier_cross_entropy_objective(constant, labels),
        x,
        epsilon=0.3,
        step_size=0.1,
        num_steps=5,
        norm=norm,
        random_start=False,
    )
    assert np.array_equal(x_adv.numpy(), x)


# ------------------------------------------------------------------------------------------------
# Gradients and randomness
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
def test_no_gradient_flows_through_the_attack(norm, graph):
    encoder = _gaussian_encoder()
    x = tf.constant(_images_with_saturated_pixels(10, shape=(4, 8, 8, 3)))

    def attacked_loss():
        x_adv = pgd_attack(
            encoding_distance_objective(encoder, x), x, epsilon=0.2, step_size=0.1, num_steps=3, norm=norm, seed=5
        )
        return tf.reduce_sum(tf.square(x_adv))  # linked to the encoder only through x_adv's construction

    def leaky_loss():
        # Control: one L2 PGD step written without stop_gradient. Its result does depend on the encoder's
        # weights (through the gradient direction), so a leak would be visible to this test.
        x0 = x + 0.05
        with tf.GradientTape() as inner:
            inner.watch(x0)
            objective = encoding_distance_objective(encoder, x)(x0)
        g = inner.gradient(objective, x0)
        x1 = x0 + 0.1 * g / tf.norm(tf.reshape(g, [4, -1]), axis=1)[:, None, None, None]
        return tf.reduce_sum(tf.square(x1))

    def grads(loss_fn):
        with tf.GradientTape() as tape:
            loss = loss_fn()
        return tape.gradient(loss, encoder.trainable_variables)

    if graph:
        grads_attack = tf.function(lambda: grads(attacked_loss))()
        grads_leak = tf.function(lambda: grads(leaky_loss))()
    else:
        grads_attack, grads_leak = grads(attacked_loss), grads(leaky_loss)
    assert all(g is None or not np.any(g.numpy()) for g in grads_attack)
    assert any(g is not None and np.any(g.numpy()) for g in grads_leak)


def test_encoding_distance_attack_pushes_encodings_apart():
    encoder = _gaussian_encoder(seed=1)
    x = tf.constant(_images_with_saturated_pixels(11, shape=(32, 8, 8, 3)))
    objective = encoding_distance_objective(encoder, x)
    eps = 0.1
    x_adv = pgd_attack(objective, x, epsilon=eps, step_size=0.03, num_steps=10, seed=(4, 4))
    # Independent reference: the squared W2 distance computed here from the encoder's outputs.
    (m0, lv0), (m1, lv1) = encoder(x), encoder(x_adv)
    w2 = np.sum((m0 - m1) ** 2 + (np.exp(0.5 * lv0) - np.exp(0.5 * lv1)) ** 2, axis=1)
    np.testing.assert_allclose(objective(x_adv).numpy(), w2, rtol=1e-4, atol=1e-7)
    # Better than random corners of the same ball, for every example.
    rng = np.random.default_rng(0)
    random_corner = np.clip(x + eps * rng.choice([-1.0, 1.0], size=x.shape).astype(np.float32), 0.0, 1.0)
    assert np.all(w2 > objective(random_corner).numpy())
    # The distance's gradient vanishes at the reference: without a random start nothing moves.
    x_stuck = pgd_attack(objective, x, epsilon=eps, step_size=0.03, num_steps=3, random_start=False)
    assert np.array_equal(x_stuck.numpy(), x.numpy())


@pytest.mark.parametrize("norm", NORMS)
def test_seed_reproducibility(norm):
    encoder = _gaussian_encoder()
    x = _images_with_saturated_pixels(12, shape=(8, 8, 8, 3))
    objective = encoding_distance_objective(encoder, x)
    attack = lambda seed: pgd_attack(
        objective, x, epsilon=0.1, step_size=0.05, num_steps=3, norm=norm, seed=seed
    ).numpy()
    first = attack((1, 2))
    assert np.array_equal(first, attack((1, 2)))
    assert np.array_equal(first, attack(tf.constant([1, 2], tf.int32)))
    assert np.array_equal(attack(7), attack((7, 0)))
    assert not np.allclose(first, attack((1, 3)), atol=1e-3)
    # Graph mode gives the same numbers as eager mode for the same seed.
    compiled = tf.function(
        lambda v, s: pgd_attack(objective, v, epsilon=0.1, step_size=0.05, num_steps=3, norm=norm, seed=s)
    )
    np.testing.assert_allclose(compiled(tf.constant(x), tf.constant([1, 2], tf.int64)).numpy(), first, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Graph mode and tf.distribute
# ------------------------------------------------------------------------------------------------


def test_compiled_correctness_fn_serves_any_batch_size(digits_model):
    model, x_test, y_test, _ = digits_model
    fn = make_adversarial_correctness_fn(model, epsilon=0.1, num_steps=10)
    concrete = fn.get_concrete_function(
        tf.TensorSpec([None, 8, 8, 1]), tf.TensorSpec([None], tf.int64), tf.TensorSpec([2], tf.int64)
    )
    seed = tf.constant([0, 0], tf.int64)
    for n in (1, 37, 128):
        out = concrete(tf.constant(x_test[:n]), tf.constant(y_test[:n]), seed)
        assert out.shape == (n,) and out.dtype == tf.bool


def test_inside_strategy_run(mirrored_strategy):
    strategy = mirrored_strategy
    with strategy.scope():
        encoder = _gaussian_encoder()
        classifier = _small_convnet()
    x = _images_with_saturated_pixels(13, shape=(16, 8, 8, 3))
    labels = np.arange(16) % 5
    dataset = tf.data.Dataset.from_tensor_slices((x, labels)).batch(16)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

    def replica_fn(images, y):
        replica = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int64)
        seed = tf.stack([tf.constant(11, tf.int64), replica])
        se = pgd_attack(encoding_distance_objective(encoder, images), images, epsilon=0.1, step_size=0.05,
                        num_steps=4, seed=seed)
        ev = pgd_attack(classifier_cross_entropy_objective(classifier, y), images, epsilon=0.5, step_size=0.3,
                        num_steps=4, norm=2, seed=seed)
        return images, se, ev

    images, se, ev = tf.function(lambda b: strategy.run(replica_fn, args=b))(batch)
    images = strategy.experimental_local_results(images)
    se, ev = strategy.experimental_local_results(se), strategy.experimental_local_results(ev)
    assert len(images) == 2 and sum(len(i) for i in images) == 16
    for clean, linf_adv, l2_adv in zip(images, se, ev):
        clean, linf_adv, l2_adv = clean.numpy(), linf_adv.numpy(), l2_adv.numpy()
        assert _linf(linf_adv, clean).max() <= 0.1 + 1e-6 and _linf(linf_adv, clean).min() > 0
        assert _l2(l2_adv, clean).max() <= 0.5 * (1 + 1e-5) and _l2(l2_adv, clean).min() > 0
        for adv in (linf_adv, l2_adv):
            assert adv.min() >= 0.0 and adv.max() <= 1.0


class _TinySmoothEncoder(keras.Model):
    """A minimal SE-style model: its train_step attacks the encoder with PGD (seeded by the step counter)."""

    def __init__(self, eps, **kwargs):
        super().__init__(**kwargs)
        self.eps = eps
        self.encoder = _gaussian_encoder()

    def call(self, x):
        return self.encoder(x)

    def train_step(self, x):
        seed = tf.stack([tf.cast(self.optimizer.iterations, tf.int64), tf.constant(0, tf.int64)])
        x_adv = pgd_attack(
            encoding_distance_objective(self.encoder, x), x, epsilon=self.eps, step_size=0.05, num_steps=3, seed=seed
        )
        with tf.GradientTape() as tape:
            (m, lv), (m_adv, lv_adv) = self.encoder(x), self.encoder(x_adv)
            per_example = tf.reduce_sum(tf.square(m - m_adv) + tf.square(lv - lv_adv), axis=-1)
            loss = tf.reduce_mean(per_example) / tf.distribute.get_strategy().num_replicas_in_sync
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return {
            "loss": loss,
            "max_linf": tf.reduce_max(tf.abs(x_adv - x)),
            "x_min": tf.reduce_min(x_adv),
            "x_max": tf.reduce_max(x_adv),
        }


def test_inside_keras_train_step_under_mirrored_strategy(mirrored_strategy):
    strategy = mirrored_strategy
    with strategy.scope():
        model = _TinySmoothEncoder(eps=0.1)
        model(tf.zeros((1, 8, 8, 3)))
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = _images_with_saturated_pixels(14, shape=(64, 8, 8, 3))
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(tf.data.Dataset.from_tensor_slices(x).batch(16), epochs=1, shuffle=False, verbose=0)
    logs = {k: v[-1] for k, v in history.history.items()}
    assert np.isfinite(logs["loss"])
    assert 0.0 < logs["max_linf"] <= 0.1 + 1e-6
    assert logs["x_min"] >= 0.0 and logs["x_max"] <= 1.0
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, name, error",
    [
        (dict(epsilon=-0.1), "epsilon", ValueError),
        (dict(epsilon=float("nan")), "epsilon", ValueError),
        (dict(epsilon="big"), "epsilon", TypeError),
        (dict(step_size=0.0), "step_size", ValueError),
        (dict(step_size=-1.0), "step_size", ValueError),
        (dict(num_steps=0), "num_steps", ValueError),
        (dict(num_steps=2.5), "num_steps", TypeError),
        (dict(num_steps=tf.constant(3)), "num_steps", TypeError),
        (dict(norm=1), "norm", ValueError),
        (dict(norm="l1"), "norm", ValueError),
        (dict(norm=None), "norm", ValueError),
        (dict(clip_min=1.0, clip_max=0.0), "clip_min", ValueError),
        (dict(clip_min=0.5, clip_max=0.5), "clip_min", ValueError),
        (dict(seed=(1, 2, 3)), "seed", ValueError),
        (dict(seed=1.5), "seed", TypeError),
    ],
)
def test_bad_attack_arguments_raise_before_any_computation(override, name, error):
    calls = []

    def objective(v):
        calls.append(1)
        return tf.reduce_sum(v, axis=1)

    kwargs = dict(epsilon=0.1, step_size=0.01, num_steps=3, norm="inf", seed=(0, 0))
    kwargs.update(override)
    with pytest.raises(error, match=name) as info:
        pgd_attack(objective, np.full((2, 4), 0.5, np.float32), **kwargs)
    assert "got" in str(info.value)  # the message quotes the value received
    assert not calls


@pytest.mark.parametrize(
    "override, name, error",
    [
        (dict(batch_size=0), "batch_size", ValueError),
        (dict(num_steps=0), "num_steps", ValueError),
        (dict(epsilon=-1.0), "epsilon", ValueError),
        (dict(labels=np.zeros(4, np.float32)), "labels", TypeError),
        (dict(labels=np.zeros(3, np.int64)), "labels", ValueError),
        (dict(x=np.full((4, 2, 2, 1), 1.5, np.float32)), "x", ValueError),
        (dict(x=np.zeros((4, 2, 2, 1), np.uint8)), "x", TypeError),
    ],
)
def test_bad_evaluation_arguments_raise(override, name, error):
    calls = []

    def logits_fn(v):
        calls.append(1)
        return tf.zeros([tf.shape(v)[0], 3])

    kwargs = dict(x=np.full((4, 2, 2, 1), 0.5, np.float32), labels=np.zeros(4, np.int64), epsilon=0.1)
    kwargs.update(override)
    with pytest.raises(error, match=rf"\b{name}\b"):
        adversarial_accuracy(logits_fn, **kwargs)
    assert not calls


# ------------------------------------------------------------------------------------------------
# Regions: an attack that may change only some pixels
# ------------------------------------------------------------------------------------------------


def _random_mask(seed, shape):
    return (np.random.default_rng(seed).uniform(size=shape) < 0.4).astype(np.float32)


@pytest.mark.parametrize("random_start", [False, True])
def test_masked_linf_reaches_closed_form_worst_case_of_linear_score(random_start):
    w = np.random.default_rng(11).normal(size=64).astype(np.float32)
    x = _interior_inputs(12)
    mask = _random_mask(13, x.shape)
    score = lambda v: tf.linalg.matvec(v, w)
    eps = 0.1
    x_adv = pgd_attack(score, x, epsilon=eps, step_size=2.5 * eps / 10, num_steps=10, random_start=random_start,
                       mask=mask).numpy()
    # the worst case inside the masked box: x + eps sign(w) where the mask allows it, x elsewhere
    np.testing.assert_allclose(x_adv, x + eps * np.sign(w) * mask, atol=1e-6)
    np.testing.assert_allclose(score(x_adv).numpy(), x @ w + eps * (np.abs(w) * mask).sum(axis=1), rtol=1e-5)


def test_masked_l2_reaches_closed_form_worst_case_of_linear_score():
    w = np.random.default_rng(14).normal(size=64).astype(np.float32)
    x = _interior_inputs(15)
    mask = _random_mask(16, x.shape)
    eps = 0.5
    x_adv = pgd_attack(lambda v: tf.linalg.matvec(v, w), x, epsilon=eps, step_size=eps, num_steps=20, norm=2,
                       random_start=True, mask=mask).numpy()
    allowed = w * mask  # per example: the best direction is w restricted to the allowed coordinates
    expected = x + eps * allowed / np.linalg.norm(allowed, axis=1, keepdims=True)
    np.testing.assert_allclose(x_adv, expected, atol=1e-4)


@pytest.mark.parametrize("norm", NORMS)
def test_mask_of_ones_is_the_unmasked_attack_and_zeros_change_nothing(norm):
    model = _small_convnet()
    x = _images_with_saturated_pixels(17)
    objective = classifier_cross_entropy_objective(model, np.arange(16) % 5)
    kwargs = dict(epsilon=0.1 if norm == "inf" else 1.0, step_size=0.05, num_steps=5, norm=norm, seed=(3, 1))
    plain = pgd_attack(objective, x, **kwargs).numpy()
    np.testing.assert_array_equal(pgd_attack(objective, x, mask=np.ones_like(x), **kwargs).numpy(), plain)
    np.testing.assert_array_equal(pgd_attack(objective, x, mask=np.zeros((16, 8, 8, 1), bool), **kwargs).numpy(), x)


def test_region_mask_matches_numpy():
    x = _images_with_saturated_pixels(18)
    x[:, :3] = 0.0  # whole black rows: background in every channel
    x[:, 5, :, 1] = 0.0  # black in one channel only: still foreground
    black = np.all(x == 0, axis=-1, keepdims=True).astype(np.float32)
    assert 0 < black.mean() < 1
    assert region_mask(x, "all") is None
    np.testing.assert_array_equal(region_mask(x, "background").numpy(), black)
    np.testing.assert_array_equal(region_mask(x, "foreground").numpy(), 1 - black)


@pytest.mark.parametrize("region", ["background", "foreground"])
def test_region_attack_changes_only_its_region_and_equals_a_numpy_masked_attack(digits_model, region):
    """The evaluation's region (from region_mask, in the graph) against the mask computed here in numpy."""
    model, x, y, _ = digits_model
    x, y = x[:64], y[:64]
    black = np.all(x == 0, axis=-1, keepdims=True)
    mask = (black if region == "background" else ~black).astype(np.float32)
    kwargs = dict(epsilon=0.2, step_size=0.05, num_steps=10, seed=(0, 0))
    x_adv = pgd_attack(classifier_cross_entropy_objective(model, y), x, mask=mask, **kwargs).numpy()
    np.testing.assert_array_equal(x_adv[np.broadcast_to(mask, x.shape) == 0], x[np.broadcast_to(mask, x.shape) == 0])
    assert np.abs(x_adv - x).max() > 0.1  # it did move the region
    expected = np.argmax(model(x_adv).numpy(), axis=1) == y
    expected &= np.argmax(model(x).numpy(), axis=1) == y
    fn = make_adversarial_correctness_fn(model, epsilon=0.2, num_steps=10, step_size=0.05, region=region)
    np.testing.assert_array_equal(fn(tf.constant(x), tf.constant(y), tf.constant([0, 0], tf.int64)).numpy(), expected)


@pytest.mark.parametrize(
    "mask, match",
    [(np.full((2, 4), 0.5, np.float32), "0/1"), (np.ones((3, 4), np.float32), "broadcast"),
     (np.ones((2, 4, 1), np.float32), "broadcast")],
)
def test_bad_mask_raises(mask, match):
    with pytest.raises(ValueError, match=match):
        pgd_attack(lambda v: tf.reduce_sum(v, axis=1), np.full((2, 4), 0.5, np.float32), epsilon=0.1, step_size=0.01,
                   num_steps=2, mask=mask)


def test_bad_region_raises():
    with pytest.raises(ValueError, match="region"):
        make_adversarial_correctness_fn(lambda v: v, epsilon=0.1, region="digit")
    with pytest.raises(ValueError, match="region"):
        region_mask(np.zeros((2, 4), np.float32), "background")  # not images
