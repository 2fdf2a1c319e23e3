"""scripts/evaluate.py on a trained workdir and on its exported SavedModel; the card carries eval.json."""

import json
import pathlib
import subprocess
import sys

import pytest

from tf_avae import eval_lib, export, train_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
FAMILIES = ("probe/digit", "probe/colour", "adv/digit/eps=0.1", "adv/colour/eps=0.2", "mse", "fid",
            "consistency/step=1", "similarity/same_mean")


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory):
    from test_train_lib import load_config

    workdir = tmp_path_factory.mktemp("avae")
    train_lib.train(load_config(ROOT / "configs" / "avae_color_mnist.py", "smoke"), workdir)
    return workdir


def _evaluate(target, *extra):
    result = subprocess.run(
        [sys.executable, "scripts/evaluate.py", "--workdir", str(target), "--limit", "48", "--probe_train_limit",
         "256", "--pgd_steps", "3", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_evaluate_cli_writes_eval_json_with_every_key_family_and_plots(trained_workdir, tmp_path):
    _evaluate(trained_workdir, "--classifier_dir", str(tmp_path / "fid"), "--attack_regions=foreground")
    results = json.loads((trained_workdir / "eval.json").read_text())
    for key in FAMILIES + ("adv_foreground/digit/eps=0.1", "adv_foreground/colour/eps=0.2"):
        assert key in results, key
    assert results["adv_foreground/digit/eps=0"] == results["probe/digit"]
    assert all(isinstance(v, float) for v in results.values())
    assert results["adv/digit/eps=0"] == results["probe/digit"]
    assert results["adv/digit/eps=0.2"] <= results["adv/digit/eps=0.1"] <= results["adv/digit/eps=0"]
    notes = json.loads((trained_workdir / eval_lib.NOTES_FILE).read_text())
    assert notes["dataset"] == "color_mnist" and notes["feature"] == "mean"
    assert len(list((trained_workdir / eval_lib.PLOTS_DIR).glob("*.png"))) >= 3

    # the export carries those figures as its robustness card
    exported = export.export_workdir(trained_workdir, export_dir=tmp_path / "saved_models")
    card = export.read_card(exported)
    assert card["evaluation"] == results


def test_evaluate_cli_names_the_attack_regions_it_knows():
    result = subprocess.run([sys.executable, "scripts/evaluate.py", "--workdir=nowhere", "--attack_regions=digit"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "--attack_regions must be among ['all', 'background', 'foreground']; got ['digit']" in result.stderr


@pytest.mark.slow
def test_evaluate_cli_accepts_an_exported_savedmodel(trained_workdir, tmp_path):
    exported = export.export_workdir(trained_workdir, name="plain", export_dir=tmp_path / "saved_models")
    _evaluate(exported, "--classifier_dir", str(tmp_path / "fid"))
    output = pathlib.Path(f"{exported}-eval")
    results = json.loads((output / "eval.json").read_text())
    assert {"probe/digit", "adv/colour/eps=0.1", "mse"} <= set(results)
    assert not (exported / "eval.json").exists()  # the served version is left untouched
