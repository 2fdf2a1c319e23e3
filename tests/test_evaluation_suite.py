"""The training callback, the plots and the whole evaluation suite, on tiny models and synthetic data."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import helpers
from test_evaluation import constant_encoder_adapter, synthetic_color_mnist
from tf_avae import evaluation as ev

KEY_FAMILIES = ("probe/", "adv/", "mse", "fid", "consistency/", "similarity/")


def _png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------------ callback


def test_callback_records_at_the_configured_interval_and_logs_to_history_and_tensorboard(tmp_path):
    train_x, train_y = synthetic_color_mnist(64, seed=0)
    test_x, test_y = synthetic_color_mnist(48, seed=1)
    model = helpers.compiled(helpers.make_model("VAE"))
    callback = ev.RobustnessCallback(train_x, train_y, test_x, test_y, every_n_steps=3, radii=(0.0, 0.1), pgd_steps=2,
                                     log_dir=str(tmp_path / "tb"), batch_size=32)
    history = model.fit(train_x, batch_size=8, epochs=2, verbose=0, callbacks=[callback])  # 8 steps per epoch
    assert [step for step, _ in callback.records] == [3, 6, 9, 12, 15]
    expected = {"probe/digit", "probe/colour", "adv/digit/eps=0", "adv/digit/eps=0.1", "adv/colour/eps=0",
                "adv/colour/eps=0.1"}
    for _, metrics in callback.records:
        assert set(metrics) == expected
        assert all(0.0 <= value <= 100.0 for value in metrics.values())
        for task in ("digit", "colour"):  # the composed graph's clean accuracy is the probe's
            assert metrics[f"adv/{task}/eps=0"] == pytest.approx(metrics[f"probe/{task}"])
    last = callback.records[-1][1]
    assert history.history["robustness/adv/digit/eps=0.1"] == [callback.records[1][1]["adv/digit/eps=0.1"],
                                                               last["adv/digit/eps=0.1"]]
    assert glob.glob(str(tmp_path / "tb" / "events.out.tfevents.*"))
    tags = set()
    for event_file in glob.glob(str(tmp_path / "tb" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            tags.update(value.tag for value in event.summary.value)
    assert "robustness/adv/digit/eps_0.1" in tags and "robustness/probe/colour" in tags


def test_callback_rejects_mismatched_tasks():
    x, y = synthetic_color_mnist(8)
    with pytest.raises(ValueError, match="same tasks"):
        ev.RobustnessCallback(x, {"digit": y["digit"]}, x, y)
    with pytest.raises(ValueError, match="every_n_steps"):
        ev.RobustnessCallback(x, y, x, y, every_n_steps=0)


# ------------------------------------------------------------------------------------------------ plots


def test_plots_write_pngs(tmp_path):
    results = {"adv/digit/eps=0": 90.0, "adv/digit/eps=0.1": 40.0, "adv/colour/eps=0": 100.0, "mse": 0.1}
    paths = [
        ev.plot_robustness({"VAE": results, "AVAE": {**results, "adv/digit/eps=0.1": 80.0}}, tmp_path / "r.png"),
        ev.plot_chain(np.random.default_rng(0).random((3, 4, 28, 28, 3)), tmp_path / "c.png"),
        ev.plot_chain(np.random.default_rng(0).random((2, 2, 28, 28, 1)), tmp_path / "c1.png"),
        ev.plot_similarity_histogram(np.ones(10), np.zeros(10), tmp_path / "s.png"),
        ev.plot_training_curves([(10, {"adv/digit/eps=0.1": 5.0}), (20, {"adv/digit/eps=0.1": 7.0})],
                                tmp_path / "sub" / "t.png"),
        ev.plot_panels({"accuracy": {"digit": [(20, 7.0), (10, 5.0)]}, "moved": {"pgd": [(10, 0.5), (20, 0.6)]}},
                       tmp_path / "p.png", log_y=("moved",), title="over training"),
        ev.plot_panels({"moved": {("avae", "pgd"): [(10, 0.5)], ("avae", "noise"): [(10, 0.1)],
                                  ("vae", "pgd"): [(10, 0.9)]}}, tmp_path / "p2.png"),
    ]
    assert all(_png(p) for p in paths)
    with pytest.raises(ValueError, match="at least one line"):
        ev.plot_panels({"accuracy": {}}, tmp_path / "empty.png")
    from tf_avae.evaluation.plots import adversarial_curves

    radii, accuracy = adversarial_curves(results)["digit"]
    np.testing.assert_array_equal(radii, [0.0, 0.1])
    np.testing.assert_array_equal(accuracy, [90.0, 40.0])


# ------------------------------------------------------------------------------------------------ suite


@pytest.fixture(scope="module")
def arrays():
    return {"train": synthetic_color_mnist(300, seed=10), "test": synthetic_color_mnist(160, seed=11)}


SMALL = dict(pgd_steps=3, classifier_epochs=1, consistency_steps=2, progress=False)


def test_evaluate_model_returns_every_key_family_and_writes_plots(arrays, tmp_path, monkeypatch):
    from tf_avae import data

    def fake_load_arrays(name, split, *, limit=None, seed=0, data_dir=None):  # no dataset cache needed
        assert name == "color_mnist"
        images, labels = arrays[split]
        return images[:limit], {task: y[:limit] for task, y in labels.items()}

    monkeypatch.setattr(data, "load_arrays", fake_load_arrays)
    model = helpers.make_model("VAE")
    results = ev.evaluate_model(model, "color_mnist", limit=120, output_dir=tmp_path, classifier_dir=tmp_path / "cls",
                                **SMALL)
    json.dumps(results)  # JSON-serialisable as it is
    for family in KEY_FAMILIES:
        assert any(key.startswith(family) for key in results), family
    for task in ("digit", "colour"):
        assert results[f"probe/{task}"] == pytest.approx(results[f"adv/{task}/eps=0"])
        curve = [results[f"adv/{task}/eps={r}"] for r in ("0", "0.1", "0.2")]
        assert all(0 <= b <= a <= 100 for a, b in zip(curve, curve[1:]))
    assert results["data/num_test"] == 120 and results["data/num_train"] == 300
    assert sorted(k for k in results if k.startswith("consistency/")) == ["consistency/step=1", "consistency/step=2"]
    assert results["fid"] >= 0 and results["mse"] > 0
    assert any("classifier FID" in note for note in results["notes"])
    for name in ev.PLOT_FILES.values():
        assert _png(os.path.join(tmp_path, name)), name
    assert len(glob.glob(str(tmp_path / "cls" / "*.keras"))) == 1


class ExportLayout(tf.Module):
    """The layout of tf_avae.export: serve -> {mean, log_variance}, decode/reconstruct -> {"images"}."""

    def __init__(self, model):
        super().__init__()
        self.weights = list(model.weights)
        images = tf.TensorSpec([None, *model.image_shape], tf.float32, name="images")
        latents = tf.TensorSpec([None, model.latent_dim], tf.float32, name="latents")

        def serve(x):
            mean, log_variance = model.encode(x)
            return {"mean": mean, "log_variance": log_variance}

        self.serve = tf.function(serve, input_signature=[images])
        self.decode = tf.function(lambda z: {"images": model.decode(z)}, input_signature=[latents])
        self.reconstruct = tf.function(lambda x: {"images": model(x)["reconstruction"]}, input_signature=[images])


@pytest.fixture(scope="module")
def model_and_reference(arrays):
    model = helpers.make_model("VAE")
    return model, ev.evaluate_model(model, "color_mnist", arrays=arrays, radii=(0.0, 0.1), **SMALL)


@pytest.mark.parametrize("layout", ["keras_export", "tf_avae_export"])
def test_evaluate_model_on_a_loaded_savedmodel(layout, model_and_reference, arrays, tmp_path):
    model, reference = model_and_reference
    if layout == "keras_export":  # serve -> {mean, log_variance, reconstruction}; no decode(z)
        model.export(str(tmp_path / "saved"), verbose=False)
    else:
        module = ExportLayout(model)
        tf.saved_model.save(module, str(tmp_path / "saved"), signatures={"serving_default": module.serve})
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    results = ev.evaluate_model(loaded, "color_mnist", arrays=arrays, radii=(0.0, 0.1), **SMALL)
    for task in ("digit", "colour"):  # the same network behind a SavedModel gives the same probe
        assert results[f"probe/{task}"] == pytest.approx(reference[f"probe/{task}"], abs=1.0)
    assert results["mse"] == pytest.approx(reference["mse"], rel=1e-4)
    assert results["consistency/step=2"] == pytest.approx(reference["consistency/step=2"], rel=1e-3)
    if layout == "keras_export":
        assert "fid" not in results and any("fid skipped" in note for note in results["notes"])
    else:
        assert results["fid"] == pytest.approx(reference["fid"], rel=1e-3)


def test_evaluate_model_on_an_encoder_without_decoder(arrays):
    encoder_only = ev.evaluate_model(constant_encoder_adapter(), "toy", arrays=arrays, radii=(0.0, 0.1),
                                     augmentation=lambda x: x, attack_regions=("background",), **SMALL)
    assert not any(key.startswith(("mse", "fid", "consistency/")) for key in encoder_only)
    assert any("no decoder" in note for note in encoder_only["notes"])
    assert encoder_only["adv/colour/eps=0.1"] == encoder_only["adv/colour/eps=0"]  # constant encoder: robust
    assert encoder_only["adv_background/colour/eps=0.1"] == encoder_only["adv/colour/eps=0"]  # wherever attacked
    assert encoder_only["similarity/same_mean"] == pytest.approx(1.0)


def test_evaluate_model_rejects_bad_arguments(arrays):
    model = helpers.make_model("VAE")
    with pytest.raises(TypeError, match="arrays"):
        ev.evaluate_model(model, "color_mnist", arrays={"train": arrays["train"]}, progress=False)
    with pytest.raises(ValueError, match="feature"):
        ev.evaluate_model(model, "color_mnist", arrays=arrays, feature="logits", progress=False)
    with pytest.raises(ValueError, match="backbone"):
        ev.evaluate_model(constant_encoder_adapter(), "toy", arrays=arrays, feature="backbone", progress=False)
    with pytest.raises(ValueError, match="pgd_steps"):
        ev.evaluate_model(model, "color_mnist", arrays=arrays, pgd_steps=0, progress=False)
    with pytest.raises(ValueError, match="attack_regions"):
        ev.evaluate_model(model, "color_mnist", arrays=arrays, attack_regions=("digit",), progress=False)
