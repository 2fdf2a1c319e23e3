"""SavedModel export: signatures, equality in a new process, atomicity, the robustness card, bad input."""

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import helpers
import numpy as np
import pytest
import tensorflow as tf

import tf_avae
from tf_avae import export, train_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
EVAL = {"digit_accuracy_eps0": 0.9375, "digit_accuracy_eps0.1": 0.125, "colour_accuracy_eps0.2": 0.5,
        "reconstruction_mse": 0.0421}


def tiny_config(**train):
    config = helpers.load_config("vae_color_mnist", "smoke")
    config.network.latent_dim = 8
    config.network.kwargs = {"filters": (8, 16), "dense_units": 32}
    config.train.num_steps = 2
    config.train.steps_per_epoch = 2
    config.train.verbose = 0
    for key, value in train.items():
        config.train[key] = value
    return config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A trained (2 steps) tiny VAE workdir with an eval.json."""
    path = tmp_path_factory.mktemp("workdir")
    train_lib.train(tiny_config(), path)
    (path / train_lib.EVAL_FILE).write_text(json.dumps(EVAL))
    return path


def _listing(path):
    path = pathlib.Path(path)
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else None


def _images(n, seed=0):
    return np.random.default_rng(seed).random((n, 28, 28, 3)).astype(np.float32)


def _saved_model_cli():
    found = shutil.which("saved_model_cli") or str(pathlib.Path(sys.executable).parent / "saved_model_cli")
    return [found] if os.path.exists(found) else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


_PROBE = textwrap.dedent("""
    # A fresh process: nothing of tf_avae is imported; only TensorFlow / Keras load the export.
    import json, sys
    import numpy as np
    import tensorflow as tf
    import keras

    path, inputs, outputs = sys.argv[1:4]
    loaded = tf.saved_model.load(path)
    images = np.load(inputs)
    result = {}
    for n in (1, 7):
        out = loaded.signatures["serving_default"](images=tf.constant(images[:n]))
        result[f"mean_{n}"], result[f"log_variance_{n}"] = out["mean"].numpy(), out["log_variance"].numpy()
    result["reconstruct"] = loaded.signatures["reconstruct"](images=tf.constant(images[:3]))["images"].numpy()
    result["decode"] = loaded.signatures["decode"](latents=tf.zeros((2, result["mean_1"].shape[1])))["images"].numpy()
    layer = keras.layers.TFSMLayer(path, call_endpoint="serving_default")
    result["tfsm_mean"] = keras.ops.convert_to_numpy(layer(images[:7])["mean"])
    card_path = loaded.card.asset_path.numpy().decode()
    np.savez(outputs, **result)
    print(json.dumps({"card_path": card_path, "card": json.load(open(card_path))}))
""")


def test_export_loads_in_a_new_process_with_the_in_memory_outputs_and_the_named_signatures(workdir, tmp_path):
    base = tmp_path / "saved_models"
    path = export.export_workdir(workdir, export_dir=base)
    assert path == base / "vae_color_mnist" / "1"  # default name <model>_<dataset>, first version 1
    images = _images(7)
    np.save(tmp_path / "images.npy", images)
    (tmp_path / "probe.py").write_text(_PROBE)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    probe = subprocess.Popen([sys.executable, str(tmp_path / "probe.py"), str(path), str(tmp_path / "images.npy"),
                              str(tmp_path / "out.npz")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
    cli = subprocess.Popen([*_saved_model_cli(), "show", "--all", "--dir", str(path)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env)
    probe_out, probe_err = probe.communicate(timeout=300)
    cli_out, cli_err = cli.communicate(timeout=300)
    assert probe.returncode == 0, probe_err[-3000:]
    assert cli.returncode == 0, cli_err[-3000:]

    model = train_lib.load_model(workdir)
    outputs = np.load(tmp_path / "out.npz")
    for n in (1, 7):
        mean, log_variance = model.encode(images[:n])
        np.testing.assert_allclose(outputs[f"mean_{n}"], mean, atol=1e-5)
        np.testing.assert_allclose(outputs[f"log_variance_{n}"], log_variance, atol=1e-5)
    np.testing.assert_allclose(outputs["tfsm_mean"], model.encode(images)[0], atol=1e-5)
    mean = model.encode(images[:3])[0]
    np.testing.assert_allclose(outputs["reconstruct"], model.decode(mean), atol=1e-5)
    np.testing.assert_allclose(outputs["decode"], model.decode(np.zeros((2, 8), np.float32)), atol=1e-5)
    probed = json.loads(probe_out.strip().splitlines()[-1])
    assert probed["card_path"] == str(path / "assets" / "card.json")
    assert probed["card"]["evaluation"] == EVAL

    signatures = cli_out.split("signature_def[")
    by_name = {part.split("'")[1]: part for part in signatures[1:]}
    assert {"serving_default", "decode", "reconstruct"} <= set(by_name)
    assert "inputs['images']" in by_name["serving_default"]
    assert "outputs['mean']" in by_name["serving_default"] and "outputs['log_variance']" in by_name["serving_default"]
    assert "shape: (-1, 28, 28, 3)" in by_name["serving_default"] and "DT_FLOAT" in by_name["serving_default"]
    assert "inputs['latents']" in by_name["decode"] and "outputs['images']" in by_name["decode"]
    assert "inputs['images']" in by_name["reconstruct"] and "outputs['images']" in by_name["reconstruct"]


def _export_cli():
    """scripts/export.py as a module (its absl flags are defined once per test session)."""
    from absl import flags

    if "export_dir" not in flags.FLAGS:
        spec = importlib.util.spec_from_file_location("export_cli", ROOT / "scripts" / "export.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _export_cli.module = module
    return _export_cli.module


def test_export_cli_writes_the_named_version_and_reports_errors(workdir, tmp_path, capsys):
    from absl import flags

    cli = _export_cli()
    args = ["export.py", "--workdir", str(workdir), "--export_dir", str(tmp_path), "--name", "probe"]
    flags.FLAGS(args + ["--version", "4"])
    try:
        assert cli.main(["export.py"]) == 0
        assert (tmp_path / "probe" / "4" / "saved_model.pb").exists()
        assert str(tmp_path / "probe" / "4") in capsys.readouterr().out
        assert cli.main(["export.py"]) == 1  # the same version again
        assert "already exists" in capsys.readouterr().err
        with pytest.raises(flags.IllegalFlagValueError):
            flags.FLAGS(args + ["--version", "-1"])
    finally:
        flags.FLAGS.unparse_flags()
    assert _listing(tmp_path / "probe")[0] == "4" and not [p for p in _listing(tmp_path / "probe") if ".tmp" in p]


def test_the_card_carries_the_workdirs_evaluation_config_and_version(workdir, tmp_path):
    path = export.export_workdir(workdir, name="carded", version=3, export_dir=tmp_path)
    card = json.loads((path / "assets" / "card.json").read_text())
    assert card["evaluation"] == EVAL
    assert card["tf_avae_version"] == tf_avae.__version__
    assert card["config"] == json.loads((workdir / train_lib.CONFIG_FILE).read_text())
    assert card["training"]["steps"] == 2 and card["version"] == 3 and card["name"] == "carded"
    assert export.read_card(path) == card
    # the next export without an explicit version is the next integer
    assert export.export_workdir(workdir, name="carded", export_dir=tmp_path) == tmp_path / "carded" / "4"


def test_an_export_that_fails_while_writing_leaves_no_version_and_no_temporary(workdir, tmp_path, monkeypatch):
    (tmp_path / "m" / "1").mkdir(parents=True)  # an existing version must survive untouched

    def write_some_then_fail(obj, path, *args, **kwargs):
        pathlib.Path(path).mkdir(parents=True, exist_ok=True)
        (pathlib.Path(path) / "saved_model.pb").write_bytes(b"half")
        raise OSError("killed while writing (simulated)")

    monkeypatch.setattr(tf.saved_model, "save", write_some_then_fail)
    with pytest.raises(OSError, match="simulated"):
        export.export_workdir(workdir, name="m", export_dir=tmp_path)
    assert _listing(tmp_path / "m") == ["1"]
    with pytest.raises(OSError, match="simulated"):
        export.export_workdir(workdir, name="fresh", export_dir=tmp_path)
    assert not (tmp_path / "fresh").exists()


@pytest.mark.parametrize("version", [-1, "abc", 1.5, True, "2.0"])
def test_a_bad_version_is_refused_and_nothing_is_written(workdir, tmp_path, version):
    with pytest.raises(export.ExportError, match="version"):
        export.export_workdir(workdir, version=version, export_dir=tmp_path)
    assert _listing(tmp_path) == []


def test_an_existing_version_is_refused_and_left_untouched(workdir, tmp_path):
    (tmp_path / "vae_color_mnist" / "2").mkdir(parents=True)
    (tmp_path / "vae_color_mnist" / "2" / "keep.txt").write_text("mine")
    with pytest.raises(export.ExportError, match="already exists"):
        export.export_workdir(workdir, version=2, export_dir=tmp_path)
    assert _listing(tmp_path) == ["vae_color_mnist", "vae_color_mnist/2", "vae_color_mnist/2/keep.txt"]


def test_a_workdir_without_a_model_is_refused_and_nothing_is_written(workdir, tmp_path):
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    shutil.copy(workdir / train_lib.CONFIG_FILE, untrained / train_lib.CONFIG_FILE)
    with pytest.raises(FileNotFoundError, match="no trained model"):
        export.export_workdir(untrained, export_dir=tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        export.export_workdir(tmp_path / "empty", export_dir=tmp_path / "out2")  # not a workdir at all
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export.export_workdir(tmp_path / "missing", export_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"accuracy": "high"}', "finite numbers"),
    ("[0.5]", "flat JSON object"),
])
def test_a_malformed_eval_json_is_refused(workdir, tmp_path, content, message):
    bad = tmp_path / "bad"
    shutil.copytree(workdir, bad, ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    (bad / train_lib.EVAL_FILE).write_text(content)
    with pytest.raises(export.ExportError, match=message):
        export.export_workdir(bad, export_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_bad_name_is_refused(workdir, tmp_path):
    for name in ("../escape", ".hidden", "a/b", ""):
        with pytest.raises(export.ExportError, match="name"):
            export.export_workdir(workdir, name=name, export_dir=tmp_path)
    assert _listing(tmp_path) == []


def test_a_mixed_precision_model_exports_float32_signatures(tmp_path):
    workdir = tmp_path / "bf16"
    model = train_lib.train(tiny_config(mixed_precision="mixed_bfloat16"), workdir)
    path = export.export_workdir(workdir, export_dir=tmp_path / "out")
    loaded = tf.saved_model.load(str(path))
    images = _images(5)
    out = loaded.signatures["serving_default"](images=tf.constant(images))
    assert out["mean"].dtype == tf.float32 and out["log_variance"].dtype == tf.float32
    # The export computes in the training policy (bfloat16) and returns float32. Graph and eager
    # execution round bfloat16 intermediates differently (fused ops), so equality holds to bfloat16
    # precision (8 mantissa bits) only.
    np.testing.assert_allclose(out["mean"], tf.cast(model.encode(images)[0], tf.float32), atol=1e-2)
    assert train_lib.load_model(workdir).encoder.layers[0].dtype_policy.name == "mixed_bfloat16"
    assert json.loads((path / "assets" / "card.json").read_text())["evaluation"] is None  # no eval.json there


def test_serving_rejects_images_outside_the_unit_interval(workdir, tmp_path):
    loaded = tf.saved_model.load(str(export.export_workdir(workdir, export_dir=tmp_path)))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 1\]"):
        loaded.signatures["serving_default"](images=tf.constant(_images(2) * 255))
