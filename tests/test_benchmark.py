"""Smoke test of scripts/benchmark.py: a `--quick` run finishes and writes valid JSON and Markdown with the
expected keys. It asserts nothing about speed (the numbers of a quick run on a shared CPU mean little)."""

import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "benchmark.py"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("benchmark")
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", f"--output_dir={output_dir}"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return output_dir, completed.stdout


def _timed(row):
    assert "error" not in row, row
    for key in ("median_ms", "q1_ms", "q3_ms", "images_per_s", "cpu_ms_per_step", "load_1m", "samples_ms"):
        assert key in row, (key, row)
    assert row["median_ms"] > 0 and math.isfinite(row["images_per_s"])


@pytest.mark.slow
def test_quick_run_writes_results_with_expected_keys(quick_run):
    output_dir, stdout = quick_run
    results = json.loads((output_dir / "results.json").read_text())
    for key in ("environment", "settings", "step_time", "fit", "pgd", "pipeline", "memory", "targets",
                "peak_rss_mb", "load_average_start", "load_average_end"):
        assert key in results, key
    env = results["environment"]
    for key in ("tensorflow", "keras", "python", "cpu_count", "git_commit"):
        assert key in env, key
    assert env["quick"] is True
    for section in ("step_time", "fit", "pgd", "pipeline", "memory"):
        meta = results[section]["_meta"]
        for key in ("load_before", "load_after", "seconds", "peak_rss_mb_after"):
            assert key in meta, (section, key)

    # step times: every model on the MLP and the ConvNet, VAE vs AAVAE on the ResNet, ratios to the VAE
    tables = {table["architecture"]: table for table in results["step_time"]["tables"]}
    assert set(tables) == {"mlp", "conv", "resnet"}
    for architecture, models in (("mlp", {"VAE", "AE", "AAVAE", "AVAE", "AVAE(mean)", "SE(5)", "SE-AVAE(5)"}),
                                 ("conv", {"VAE", "AE", "AAVAE", "AVAE", "AVAE(mean)", "SE(5)", "SE-AVAE(5)"}),
                                 ("resnet", {"VAE", "AAVAE"})):
        steps = [r for r in tables[architecture]["rows"] if r["kind"] == "model step"]
        assert {r["model"] for r in steps} == models
        for row in steps:
            _timed(row)
            assert row["ratio_to_vae"] > 0
        assert next(r for r in steps if r["model"] == "VAE")["ratio_to_vae"] == pytest.approx(1.0)
    # the MLP's train_step inside one XLA-compiled loop, each to the VAE's loop
    loops = {r["model"]: r for r in tables["mlp"]["rows"] if r["kind"] == "(one XLA loop)"}
    assert set(loops) == {"VAE (one XLA loop)", "AVAE (one XLA loop)", "AVAE(mean) (one XLA loop)"}
    for row in loops.values():
        _timed(row)
        assert row["mode"] == "xla"
        assert row["ratio_to_vae"] == pytest.approx(row["median_ms"] / loops["VAE (one XLA loop)"]["median_ms"])
    assert not [r for r in tables["conv"]["rows"] if r["kind"] == "(one XLA loop)"]

    fit = results["fit"]
    assert {r["model"] for r in fit["rows"]} >= {"VAE", "AVAE"}
    for row in fit["rows"]:
        _timed(row)
        assert set(row["setting"]) == {"train.jit_compile", "train.steps_per_execution"}
    for label in ("VAE", "AVAE"):
        summary = fit["summary"][label]
        assert summary["reference_images_per_s"] in (8868.0, 7142.0)
        ratio = summary["images_per_s"] / summary["reference_images_per_s"]
        assert summary["ratio_to_reference"] == pytest.approx(ratio)

    assert results["pgd"]["pgd_steps"] == 40
    for row in results["pgd"]["rows"]:
        _timed(row)
    for row in results["pipeline"]["rows"]:
        _timed(row)
    assert results["pipeline"]["comparisons"]

    child = results["memory"]["training_subprocess"]
    assert child["returncode"] == 0, child.get("log_tail")
    assert child["peak_rss_mb"] > 0

    for check in results["targets"]:
        assert set(check) == {"what", "value", "target", "passed", "note"}

    markdown = (output_dir / "results.md").read_text()
    for heading in ("## Targets", "## model.fit throughput", "## Training step time", "## Input pipeline",
                    "## PGD evaluation throughput", "## Peak resident memory"):
        assert heading in markdown
    assert "## Targets" in stdout  # the table is also printed


def test_a_missing_package_is_reported_before_any_section_runs(tmp_path):
    # tf_avae made unfindable for the script only (it stays installed); the memory section must not start
    wrapper = ("import importlib.util as util, runpy, sys\n"
               "find_spec = util.find_spec\n"
               "util.find_spec = lambda name, *args: None if name == 'tf_avae' else find_spec(name, *args)\n"
               "sys.argv = sys.argv[1:]\n"
               "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    completed = subprocess.run(
        [sys.executable, "-c", wrapper, str(SCRIPT), "--quick", f"--output_dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode != 0
    assert "tf_avae is not importable" in completed.stderr and "pip install" in completed.stderr
    assert list(tmp_path.iterdir()) == []  # nothing measured, nothing half-written


@pytest.mark.parametrize("flags, named", [
    (["--reference_python=/no/such/python", "--reference_dir=."], "--reference_python"),
    ([f"--reference_python={sys.executable}", "--reference_dir=."], "--reference_dir"),
    ([f"--reference_python={sys.executable}"], "--reference_dir go together"),
])
def test_bad_reference_flags_are_rejected_by_name_before_any_section_runs(tmp_path, flags, named):
    completed = subprocess.run([sys.executable, str(SCRIPT), "--quick", f"--output_dir={tmp_path}", *flags],
                               cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert completed.returncode != 0
    assert named in completed.stderr
    assert list(tmp_path.iterdir()) == []


# Stands in for the reference's Python: ignores the script it is given and writes a fixed result to --output,
# or fails when asked to. The real scripts/jax_reference.py needs JAX, which the tests do not install.
FAKE_REFERENCE = """import json, sys
args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[2:])
if "fail" in args["reference_dir"]:
    sys.exit("no avae here")
# (each run's own images/s is off on purpose: pooling must read the intervals, not average the runs' figures)
rows = [{"model": "vae", "intervals_s": [7.0, 7.5, 9.0], "images_per_s": 8000.0, "median_ms_per_step": 7.5,
         "batch_size": 64, "steps_per_interval": 1000},
        {"model": "avae", "intervals_s": [10.0, 11.0, 15.0], "images_per_s": 5000.0, "median_ms_per_step": 11.0,
         "batch_size": 64, "steps_per_interval": 1000}]
json.dump({"jax": "fake", "load_1m": 0.5, "rows": rows}, open(args["output"], "w"))
"""


def test_reference_runs_are_read_labelled_and_pooled_by_median_interval(tmp_path):
    fake = tmp_path / "fake_reference.py"
    fake.write_text(FAKE_REFERENCE)
    # the "interpreter" handed to time_reference: runs the fake in place of scripts/jax_reference.py
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\nshift\nexec {sys.executable} {fake} placeholder \"$@\"\n")
    python.chmod(0o755)
    probe = ("import importlib.util, json\n"
             f"spec = importlib.util.spec_from_file_location('benchmark', {str(SCRIPT)!r})\n"
             "bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)\n"
             f"ok = bench.time_reference({str(python)!r}, {str(tmp_path)!r}, 3)\n"
             f"failed = bench.time_reference({str(python)!r}, '/fail', 3)\n"
             "print(json.dumps({'ok': ok, 'failed': failed, 'pooled': bench.pool_reference_runs([ok, failed, ok])}))\n")
    completed = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = json.loads(completed.stdout.strip().splitlines()[-1])
    assert set(out["ok"]) == {"VAE", "AVAE"} and out["ok"]["VAE"]["jax"] == "fake"
    assert "error" in out["failed"] and "no avae here" in out["failed"]["error"]
    # pooled over both successful runs: the median of all their intervals, independent of the runs' own medians
    for label, intervals in (("VAE", [7.0, 7.5, 9.0] * 2), ("AVAE", [10.0, 11.0, 15.0] * 2)):
        pooled = out["pooled"][label]
        assert pooled["intervals"] == len(intervals)
        assert pooled["images_per_s"] == pytest.approx(64 * 1000 / float(np.median(intervals)))
