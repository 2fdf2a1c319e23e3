"""scripts/merge_results.py and reproduce_lib.merge_results: one report from runs trained in different workdirs."""

import copy
import json
import os
import pathlib
import subprocess
import sys

import pytest

from tf_avae import reproduce_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
DERIVED = ("comparisons", "time_ratios", "sweep_trends", "sweep_control_trends", "sweep_extra_trends")


def _committed(name):
    return json.loads((ROOT / "results" / f"{name}.json").read_text())


def _part(results, names):
    """What a workdir holding only `names` would have reported: its runs, and derived figures of its own."""
    part = copy.deepcopy(results)
    part["runs"] = {name: part["runs"][name] for name in names}
    part["run_order"] = list(names)
    part["paper"] = {row: values for row, values in part["paper"].items()
                     if any(entry["paper"] == row for entry in part["runs"].values())}
    for key in DERIVED:  # stale on purpose: the merge must recompute them over all runs
        part[key] = [] if key == "comparisons" else {}
    return part


def _write(path, payload):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))
    return path


def _sweep_rows(markdown):
    """The rows of results.md's sweep table."""
    section = markdown.split("## Sweep", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| dense units")]


def _body(markdown):
    """results.md without the lines that name where and when it was written."""
    return [line for line in markdown.splitlines()
            if not line.startswith(("Experiment `", "Sub-workdirs: ", "Merged from "))]


# Committed reports, each written by reproduce.py from ONE workdir holding every run: table1 has comparisons and a
# time reference (the VAE), the width sweep has sweep trends.
@pytest.mark.parametrize("name", ["table1_conv_5k", "width_sweep_conv_5k"])
def test_merging_two_workdirs_halves_gives_the_report_of_one_workdir_holding_all_runs(name, tmp_path):
    full = _committed(name)
    order = full["run_order"]
    half = len(order) // 2
    inputs = [_write(tmp_path / "a" / "results.json", _part(full, order[:half])),
              _write(tmp_path / "b" / "results.json", _part(full, order[half:]))]
    out = tmp_path / "merged"
    results = reproduce_lib.merge_files(inputs, out, log=None)

    assert results["run_order"] == order and results["runs"] == full["runs"] and results["paper"] == full["paper"]
    for key in DERIVED:
        assert results[key] == full.get(key, {}), key  # reports older than a derived field lack it (none there)
    assert results[reproduce_lib.MERGED_FROM] == [str(path) for path in inputs]
    written = json.loads((out / reproduce_lib.RESULTS_JSON).read_text())
    markdown = (out / reproduce_lib.RESULTS_MD).read_text()
    assert markdown == reproduce_lib.results_markdown(written)
    assert _body(markdown) == _body((ROOT / "results" / f"{name}.md").read_text())
    assert f"Merged from `{inputs[0]}`, `{inputs[1]}`" in markdown
    assert sorted(written["plots"]) == sorted(full["plots"])
    for path in written["plots"].values():
        assert (out / path).stat().st_size > 0
    # merging again into the same (merged) workdir replaces it
    assert reproduce_lib.merge_files(inputs, out, plots=False, log=None)["run_order"] == order


def test_merge_refuses_parts_of_other_budgets_shared_runs_or_one_part_and_writes_nothing(tmp_path):
    full = _committed("width_sweep_conv_5k")
    order = full["run_order"]
    first = _part(full, order[:3])
    other_seed = _part(full, order[3:])
    other_seed["budget"] = {**other_seed["budget"], "seed": 1}
    out = tmp_path / "merged"
    with pytest.raises(ValueError, match="differ in 'budget'"):
        reproduce_lib.merge_results([first, other_seed], out)
    with pytest.raises(ValueError, match=f"run '{order[2]}' is in both"):
        reproduce_lib.merge_results([first, _part(full, order[2:])], out)
    with pytest.raises(ValueError, match="at least two"):
        reproduce_lib.merge_results([first], out)
    settings = _part(full, order[3:])
    settings["evaluation"] = {**settings["evaluation"], "pgd_steps": 10}
    paths = [_write(tmp_path / "a.json", first), _write(tmp_path / "b.json", settings)]
    with pytest.raises(ValueError, match="differ in 'evaluation'"):
        reproduce_lib.merge_files(paths, out, log=None)
    assert not out.exists()


def test_merge_never_overwrites_a_reproduce_report_and_names_a_bad_input(tmp_path):
    full = _committed("width_sweep_conv_5k")
    order = full["run_order"]
    inputs = [_write(tmp_path / "a.json", _part(full, order[:3])), _write(tmp_path / "b.json", _part(full, order[3:]))]
    workdir = tmp_path / "reproduce_workdir"
    report = _write(workdir / reproduce_lib.RESULTS_JSON, full)  # what reproduce.py wrote there
    before = report.read_bytes()
    with pytest.raises(ValueError, match="not a merge"):
        reproduce_lib.merge_files(inputs, workdir, log=None)
    assert report.read_bytes() == before and not (workdir / reproduce_lib.RESULTS_MD).exists()

    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"runs": ')
    with pytest.raises(ValueError, match="corrupt.json' is not valid JSON"):
        reproduce_lib.load_results_file(corrupt)
    with pytest.raises(ValueError, match=r"is not a reproduce results.json: it lacks \['experiment'"):
        reproduce_lib.load_results_file(_write(tmp_path / "other.json", {"hello": 1}))

    # the command line: exit status 2, the reason on stderr, nothing written
    out = tmp_path / "cli"
    missing = tmp_path / "missing.json"
    command = [sys.executable, "scripts/merge_results.py", f"--inputs={inputs[0]},{missing}", f"--workdir={out}"]
    process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert process.returncode == 2, process.stderr[-2000:]
    assert f"results file '{missing}' does not exist" in process.stderr
    assert not out.exists()


def test_parts_whose_layouts_differ_by_declared_runs_merge_under_the_newest_layout(tmp_path):
    # committed: SE and the noise-fed AVAE at lr 3e-4 (written before the config gained x4 and the plain-AVAE
    # series), and the plain AVAE x3 at lr 3e-4 (written after, with that layout)
    older, newer = _committed("width_sweep_conv_5k_lr3e4"), _committed("width_sweep_conv_5k_lr3e4_plain")
    assert older["report"] != newer["report"] and older["written"] < newer["written"]
    for parts in ([older, newer], [newer, older]):  # the newest layout whatever the order
        results = reproduce_lib.merge_results(parts, tmp_path / "merged")
        assert results["report"] == newer["report"]
        assert sorted(results["runs"]) == sorted([*older["runs"], *newer["runs"]])
        assert results["sweep_extra_trends"] == {}  # one plain-AVAE point: no trend line yet
    # the sweep table: the older report's rows, with the plain AVAE x3 as the third series after SE x3
    merged_rows, older_rows = _sweep_rows(reproduce_lib.results_markdown(results)), _sweep_rows(
        reproduce_lib.results_markdown(older))
    plain = _sweep_rows(reproduce_lib.results_markdown(newer))
    assert len(plain) == 1 and plain[0].startswith("| AVAE (as the paper writes it), width x3 | 93.0 | 3.3 |")
    se_x3 = next(i for i, row in enumerate(older_rows) if row.startswith("| SE (eps'=0.1, 5 steps), width x3 |"))
    assert merged_rows == older_rows[:se_x3 + 1] + plain + older_rows[se_x3 + 1:]

    # a newest layout that does not place a run the older one placed is refused, by name
    shrunk = copy.deepcopy(newer)
    shrunk["report"]["curve_runs"] = [n for n in shrunk["report"]["curve_runs"] if n != "se_w3"]
    shrunk["report"]["sweep_control_runs"] = [n for n in shrunk["report"]["sweep_control_runs"] if n != "se_w3"]
    with pytest.raises(ValueError, match=r"does not place run\(s\) \['se_w3'\]"):
        reproduce_lib.merge_results([older, shrunk], tmp_path / "merged")


def test_the_runs_plots_give_every_run_its_own_colour_beyond_the_default_cycles_ten(monkeypatch, tmp_path):
    from matplotlib.colors import to_rgba

    drawn = []
    monkeypatch.setattr(reproduce_lib, "_save", lambda figure, path: drawn.append(figure) or str(path))
    report = _committed("delusion_centre_conv_5k")
    assert len(report["runs"]) > 10  # more runs than the default cycle has colours
    ten = copy.deepcopy(report)
    ten["runs"] = dict(list(reproduce_lib._runs_in_order(report))[:10])
    counts = []
    for results in (report, ten):
        reproduce_lib.plot_runs_vs_radius(results, tmp_path)
        reproduce_lib.plot_probe(results, tmp_path)
        counts += [len(results["runs"])] * 2
    for figure, runs in zip(drawn, counts):
        axes = figure.axes[0]
        colours = [to_rgba(line.get_color()) for line in axes.get_lines()] or [
            to_rgba(bars.patches[0].get_facecolor()) for bars in axes.containers]
        assert len(colours) == runs and len(set(colours)) == runs
        if runs == 10:  # up to ten runs: Matplotlib's default cycle, as before
            assert colours == [to_rgba(f"C{number}") for number in range(10)]
