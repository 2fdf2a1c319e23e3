"""Configs, the training library and the train CLI."""

import json
import pathlib
import subprocess
import sys

import helpers
import keras
import numpy as np
import pytest

from tf_avae import models, train_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Training configs (one model each) carry the train command in their docstring; experiment configs
# (several runs, scripts/reproduce.py) are tested in test_reproduce.py.
CONFIGS = sorted(p for p in (ROOT / "configs").glob("*.py")
                 if not p.name.startswith("_") and "python scripts/train.py --config" in p.read_text())


load_config = helpers.load_config


def _needs_vae(config):
    return config.model.name == "avae_ss"


@pytest.fixture(scope="module")
def smoke_vae_workdir(tmp_path_factory):
    """A VAE trained by the library on real colorMNIST for a few steps (the data step must have run)."""
    workdir = tmp_path_factory.mktemp("vae")
    train_lib.train(load_config(ROOT / "configs" / "vae_color_mnist.py", "smoke"), workdir)
    return workdir


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
@pytest.mark.parametrize("arg", [None, "smoke"])
def test_every_config_loads_and_builds_its_model(path, arg, smoke_vae_workdir):
    config = load_config(path, arg)
    assert "python scripts/train.py --config configs/" in path.read_text()  # launch command in the docstring
    if _needs_vae(config):
        config.model.vae_workdir = str(smoke_vae_workdir)
    model = train_lib.build_model(config)
    assert isinstance(model, models.RepresentationModel)
    assert model.latent_dim == config.network.latent_dim
    if arg == "smoke":
        assert config.train.num_steps <= 50 and config.data.limit <= 1024


def test_library_training_writes_the_workdir_and_a_reloadable_model(smoke_vae_workdir):
    for name in (train_lib.CONFIG_FILE, train_lib.MODEL_FILE, train_lib.HISTORY_FILE):
        assert (smoke_vae_workdir / name).exists(), name
    assert any((smoke_vae_workdir / train_lib.TENSORBOARD_DIR).rglob("*tfevents*"))
    history = json.loads((smoke_vae_workdir / train_lib.HISTORY_FILE).read_text())
    assert history["steps"] == 20 and len(history["history"]["loss"]) == 2
    model = train_lib.load_model(smoke_vae_workdir)
    assert isinstance(model, models.VAE)
    saved = train_lib.load_config(smoke_vae_workdir)
    assert saved.model.name == "vae" and saved.train.num_steps == 20


def test_rerun_with_another_config_is_refused_and_changes_nothing(smoke_vae_workdir):
    config = load_config(ROOT / "configs" / "vae_color_mnist.py", "smoke")
    config.model.beta = 2.0
    before = (smoke_vae_workdir / train_lib.MODEL_FILE).read_bytes()
    with pytest.raises(ValueError, match=r"model.beta: 1.0 -> 2.0"):
        train_lib.train(config, smoke_vae_workdir)
    assert (smoke_vae_workdir / train_lib.MODEL_FILE).read_bytes() == before


class _PoisonWeights(keras.callbacks.Callback):
    """Fault injection: turns one weight into NaN after a few steps, as a diverging run would."""

    def on_train_batch_end(self, batch, logs=None):
        if batch == 3:
            weight = self.model.decoder.trainable_variables[0]
            weight.assign(np.full(weight.shape, np.nan, np.float32))


def test_nan_loss_stops_training_and_keeps_the_last_good_model(tmp_path):
    config = load_config(ROOT / "configs" / "vae_color_mnist.py", "smoke")
    train_lib.train(config, tmp_path)
    good = (tmp_path / train_lib.MODEL_FILE).read_bytes()
    with pytest.raises(train_lib.TrainingDivergedError, match="NaN"):
        train_lib.train(config, tmp_path, extra_callbacks=[_PoisonWeights()])
    assert (tmp_path / train_lib.MODEL_FILE).read_bytes() == good
    assert not list(tmp_path.glob(".model.keras*"))  # no temporary left behind


def _set(path, value):
    def apply(config):
        *parents, leaf = path.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return apply


@pytest.mark.parametrize("change, message", [
    (_set("model.rho", 1.5), "rho"),
    (_set("model.beta", -1.0), "beta"),
    (_set("data.name", "imagenet"), "data.name"),
    (_set("network.latent_dim", 0), "latent_dim"),
    (_set("network.architecture", "vit"), "architecture"),
    (_set("model.no_such_key", 1), "no_such_key"),
])
def test_bad_config_values_fail_before_training_with_the_name(change, message):
    config = load_config(ROOT / "configs" / "avae_color_mnist.py", "smoke")
    change(config)
    with pytest.raises((ValueError, TypeError), match=message):
        train_lib.build_model(config)


def test_an_unknown_config_key_cannot_even_be_set():
    config = load_config(ROOT / "configs" / "avae_color_mnist.py", "smoke")
    with pytest.raises(AttributeError, match="no_such_key"):
        config.train.no_such_key  # noqa: B018 -- ConfigDict refuses unknown fields


@pytest.mark.slow
def test_train_cli_end_to_end(tmp_path):
    workdir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "scripts/train.py", "--config", "configs/avae_color_mnist.py:smoke", "--workdir", str(workdir),
         "--config.model.delusion=mean"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{workdir}/model.keras" in result.stdout
    model = train_lib.load_model(workdir)
    assert isinstance(model, models.AVAE) and model.delusion == "mean"
    assert int(model.optimizer.iterations.numpy()) == 20


@pytest.mark.slow
def test_train_cli_rejects_an_unknown_key_before_training(tmp_path):
    result = subprocess.run(
        [sys.executable, "scripts/train.py", "--config", "configs/avae_color_mnist.py:smoke", "--workdir",
         str(tmp_path / "run"), "--config.train.no_such_key=3"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode != 0
    assert "no_such_key" in result.stderr
    assert not (tmp_path / "run" / "model.keras").exists()


def test_avae_ss_config_post_trains_a_vae_workdir_without_reading_data(smoke_vae_workdir, tmp_path, monkeypatch):
    from tf_avae import data

    def no_data(*args, **kwargs):
        raise AssertionError("AVAE-SS must not read a dataset")

    monkeypatch.setattr(data, "build_dataset", no_data)
    config = load_config(ROOT / "configs" / "avae_ss_color_mnist.py", "smoke")
    config.model.vae_workdir = str(smoke_vae_workdir)
    model = train_lib.train(config, tmp_path)
    vae = train_lib.load_model(smoke_vae_workdir)
    for before, after in zip(vae.decoder.get_weights(), model.decoder.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert any(np.abs(b - a).max() > 0 for b, a in zip(vae.encoder.get_weights(), model.encoder.get_weights()))
    assert isinstance(train_lib.load_model(tmp_path), models.AVAESS)


def test_avae_ss_resumes_after_its_vae_moved_and_refuses_another_vae(smoke_vae_workdir, tmp_path):
    import shutil

    shutil.copytree(smoke_vae_workdir, tmp_path / "a" / "vae")
    config = load_config(ROOT / "configs" / "avae_ss_color_mnist.py", "smoke")
    config.model.vae_workdir = str(tmp_path / "a" / "vae")
    train_lib.train(config, tmp_path / "a" / "avae_ss")
    history = json.loads((tmp_path / "a" / "avae_ss" / train_lib.HISTORY_FILE).read_text())
    vae = train_lib.load_model(tmp_path / "a" / "vae")
    assert history[train_lib.SOURCE_VAE_KEY] == train_lib.weights_fingerprint(vae)

    shutil.move(tmp_path / "a", tmp_path / "b")  # the experiment directory moved
    config.model.vae_workdir = str(tmp_path / "b" / "vae")
    model = train_lib.train(config, tmp_path / "b" / "avae_ss", resume=True)
    assert int(model.optimizer.iterations.numpy()) == config.train.num_steps  # resumed at its end, not retrained

    other = load_config(ROOT / "configs" / "vae_color_mnist.py", "smoke")
    other.seed = 1  # another VAE
    train_lib.train(other, tmp_path / "other_vae")
    config.model.vae_workdir = str(tmp_path / "other_vae")
    before = (tmp_path / "b" / "avae_ss" / train_lib.MODEL_FILE).read_bytes()
    with pytest.raises(ValueError, match="model.vae_workdir"):
        train_lib.train(config, tmp_path / "b" / "avae_ss", resume=True)
    assert (tmp_path / "b" / "avae_ss" / train_lib.MODEL_FILE).read_bytes() == before


def test_robustness_curve_is_recorded_during_training_when_asked(tmp_path):
    config = load_config(ROOT / "configs" / "vae_color_mnist.py", "smoke")
    config.eval.every_steps = 10
    config.eval.probe_examples = 200
    config.eval.test_examples = 64
    config.eval.pgd_steps = 2
    train_lib.train(config, tmp_path)
    records = json.loads((tmp_path / train_lib.CURVE_FILE).read_text())["records"]
    assert [step for step, _ in records] == [0, 10, 20]
    for _, metrics in records:
        assert {"probe/digit", "probe/colour", "adv/digit/eps=0.1", "adv/colour/eps=0.1"} <= set(metrics)
        assert all(0.0 <= v <= 100.0 for v in metrics.values())
        assert metrics["adv/digit/eps=0.1"] <= metrics["probe/digit"]
    history = json.loads((tmp_path / train_lib.HISTORY_FILE).read_text())["history"]
    assert "robustness/adv/digit/eps=0.1" in history


def test_an_unknown_config_argument_is_refused_by_name():
    with pytest.raises(ValueError, match="config argument"):
        load_config(ROOT / "configs" / "avae_color_mnist.py", "smok")


def test_paper_model_specs_are_the_papers_settings_and_copies():
    # AVAE paper Table 1: rho 0.975 with sampled delusions; SE eps' 0.1, 5 L-inf PGD steps, rho_SE 0.95
    assert train_lib.paper_model("avae") == {"name": "avae", "rho": 0.975, "beta": 1.0, "delusion": "sample"}
    assert train_lib.paper_model("se") == {"name": "se", "epsilon": 0.1, "pgd_steps": 5, "rho": 0.95, "beta": 1.0,
                                           "norm": "inf"}
    changed = train_lib.paper_model("avae", rho=0.9, delusion="mean")
    assert changed["rho"] == 0.9 and changed["delusion"] == "mean"
    changed["beta"] = 0.0
    assert train_lib.PAPER_MODELS["avae"]["rho"] == 0.975 and train_lib.PAPER_MODELS["avae"]["beta"] == 1.0
    with pytest.raises(ValueError, match="name"):
        train_lib.paper_model("avea")
