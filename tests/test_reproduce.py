"""The reproduction pipeline: scripts/reproduce.py end to end (smoke), resuming, configs, the report."""

import copy
import json
import os
import pathlib
import re
import subprocess
import sys

import helpers
import keras
import pytest

from tf_avae import data, evaluation, reproduce_lib, train_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
NEW_CONFIGS = ["reproduce_color_mnist", "rho_sweep_color_mnist", "eps_sweep_color_mnist", "aavae_vs_vae_color_mnist",
               "aavae_vs_vae_cifar10", "aavae_vs_vae_stl10", "variance_sweep_color_mnist", "latent_sweep_color_mnist",
               "width_sweep_color_mnist", "decoder_mean_color_mnist", "delusion_centre_color_mnist"]
TABLE1_RUNS = ["vae", "avae", "se", "se_avae", "avae_ss", "avae_mean", "noise_vae", "avae_reference", "vae_reference"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


load_config = helpers.load_config


def _reproduce(workdir, *extra, config="configs/reproduce_color_mnist.py:smoke", env=None):
    command = [sys.executable, "scripts/reproduce.py", "--config", config, "--workdir", str(workdir),
               f"--config.evaluation.classifier_dir={workdir.parent / 'fid_classifiers'}", *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})})


def _reproduce_lines(output):
    return [line.split("[reproduce] ", 1)[1] for line in output.splitlines() if "[reproduce] " in line]


def _mtimes(workdir):
    return {(run, name): (workdir / run / name).stat().st_mtime_ns
            for run in TABLE1_RUNS for name in (train_lib.MODEL_FILE, train_lib.EVAL_FILE)}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One smoke reproduction of Table 1 through the CLI: every model, both controls and AVAE-SS."""
    workdir = tmp_path_factory.mktemp("reproduce") / "table1"
    result = _reproduce(workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir, result


def test_smoke_reproduction_writes_every_model_every_cell_paper_numbers_and_plots(smoke_run):
    workdir, result = smoke_run
    results = json.loads((workdir / reproduce_lib.RESULTS_JSON).read_text())
    assert results["run_order"] == TABLE1_RUNS and sorted(results["runs"]) == sorted(TABLE1_RUNS)
    assert results["budget"] == {"num_steps": 20, "batch_size": 32, "learning_rate": 1e-3, "steps_per_epoch": 10,
                                 "seed": 0}
    for name, entry in results["runs"].items():
        assert entry["status"] == "done", (name, entry["status"])
        assert entry["seed"] == 0 and entry["budget"]["num_steps"] == 20 and entry["budget"]["batch_size"] == 32
        assert entry["train"]["steps"] == 20 and entry["train"]["seconds"] > 0
        for task in ("digit", "colour"):
            for radius in (0, 0.1, 0.2):
                assert 0.0 <= entry["metrics"][f"adv/{task}/eps={radius:g}"] <= 100.0, (name, task, radius)
        assert entry["metrics"]["mse"] > 0 and "fid" in entry["metrics"]
        assert results["time_ratios"][name] > 0
        assert entry["eval_settings"]["pgd_steps"] == 3 and entry["eval_settings"]["radii"] == [0.0, 0.1, 0.2]
    assert results["time_ratios"]["vae"] == pytest.approx(1.0)
    # the shared budget and the run table reached the training configs
    configs = {name: train_lib.load_config(workdir / name) for name in TABLE1_RUNS}
    assert {c.train.num_steps for c in configs.values()} == {20}
    assert {c.train.learning_rate for c in configs.values()} == {1e-3}
    assert configs["avae_mean"].model.delusion == "mean" and configs["avae"].model.delusion == "sample"
    assert configs["noise_vae"].model.name == "aavae" and configs["noise_vae"].model.beta == 1.0
    assert configs["noise_vae"].model.augmentation.to_dict() == {"name": "gaussian_noise", "stddev": 0.5 ** 0.5}
    assert configs["avae_ss"].model.vae_workdir == str(workdir / "vae")
    assert configs["se"].model.epsilon == 0.1 and configs["se"].model.pgd_steps == 5
    # the reference-code controls draw z = mu + sigma^2 eps; the trained model kept that setting
    assert configs["avae_reference"].model.to_dict() == {"name": "avae", "rho": 0.975, "beta": 1.0,
                                                         "delusion": "mean", "posterior_scale": "variance"}
    assert configs["vae_reference"].model.posterior_scale == "variance" and "posterior_scale" not in configs["vae"].model
    assert train_lib.load_model(workdir / "vae_reference").posterior_scale == "variance"
    # robustness curves during training (paper Figure 5, middle) for VAE, AVAE and SE only
    for name in TABLE1_RUNS:
        curve = results["runs"][name]["curve"]
        if name in ("vae", "avae", "se"):
            assert [step for step, _ in curve] == [0, 10, 20] and "adv/digit/eps=0.1" in curve[0][1]
        else:
            assert curve is None
    # results.md: the paper's numbers beside ours
    markdown = (workdir / reproduce_lib.RESULTS_MD).read_text()
    assert markdown == reproduce_lib.results_markdown(results)
    for number in ("(93.8)", "(88.1)", "(89.6)", "(93.6)", "(72.8)", "(54.8)", "(x4.7)"):
        assert number in markdown, number
    assert "Is the AVAE's robustness more than noise augmentation?" in markdown
    # plots
    for plot in ("robustness", "training_curves"):
        path = workdir / results["plots"][plot]
        assert path.read_bytes()[:8] == PNG_MAGIC, plot
    assert (workdir / "vae" / "plots" / "robustness.png").exists()  # the per-run plots of the evaluation suite
    log = (workdir / reproduce_lib.LOG_FILE).read_text()
    for name in TABLE1_RUNS:
        assert f"{name}: train start" in log and f"{name}: eval done" in log


def test_rerun_trains_and_evaluates_nothing_and_a_deleted_eval_is_redone_alone(smoke_run):
    workdir, _ = smoke_run
    before = _mtimes(workdir)
    result = _reproduce(workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _mtimes(workdir) == before
    lines = _reproduce_lines(result.stdout)
    for name in TABLE1_RUNS:
        assert any(line.startswith(f"{name}: train skipped") for line in lines), name
        assert any(line.startswith(f"{name}: eval skipped") for line in lines), name
    assert not [line for line in lines if " start" in line and ("train" in line or "eval" in line)]
    assert json.loads((workdir / reproduce_lib.RESULTS_JSON).read_text())["runs"]["avae"]["status"] == "done"

    (workdir / "avae" / train_lib.EVAL_FILE).unlink()
    result = _reproduce(workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    after = _mtimes(workdir)
    changed = sorted(key for key in before if after[key] != before[key])
    assert changed == [("avae", train_lib.EVAL_FILE)]
    lines = _reproduce_lines(result.stdout)
    assert [line.split(" (")[0] for line in lines if "start" in line] == ["avae: eval start"]
    assert not [line for line in lines if line.startswith("avae: eval skipped")]
    assert len([line for line in lines if line.startswith("avae: train skipped")]) == 1
    assert json.loads((workdir / reproduce_lib.RESULTS_JSON).read_text())["runs"]["avae"]["status"] == "done"


@pytest.mark.parametrize("arg", [None, "smoke", "paper"])
@pytest.mark.parametrize("name", NEW_CONFIGS)
def test_every_experiment_config_loads_and_its_run_table_builds_models(name, arg, smoke_run):
    workdir, _ = smoke_run  # its trained VAE is what the avae_ss rows post-train
    config = load_config(name, arg)
    assert f"python scripts/reproduce.py --config configs/{name}.py" in (ROOT / "configs" / f"{name}.py").read_text()
    assert config.experiment in reproduce_lib.EXPERIMENTS
    run_configs = reproduce_lib.build_run_configs(config, workdir)
    assert list(run_configs) == list(reproduce_lib.selected_runs(config)) and len(run_configs) >= 2
    budgets = {json.dumps(reproduce_lib.budget_of(c), sort_keys=True) for c in run_configs.values()}
    assert len(budgets) == 1  # one shared budget
    if arg == "smoke":
        assert config.budget.num_steps <= 50 and config.base.data.limit <= 1024 and config.eval_limit <= 256
    if arg == "paper":
        assert config.budget.num_steps >= 100_000
    built = set()
    for run_name, training in run_configs.items():
        assert training.seed == config.budget.seed
        key = (training.model.name, json.dumps(training.network.to_dict(), sort_keys=True, default=str))
        if key in built or (arg == "paper" and built):  # paper: one model per config (large networks)
            continue
        model = train_lib.build_model(training)
        assert model.latent_dim == training.network.latent_dim, run_name
        if name.startswith("aavae_vs_vae"):  # the AAVAE authors' linear decoder mean, for every run
            assert model.decoder.likelihood.mean_activation == "linear", run_name
        built.add(key)
        del model
        keras.backend.clear_session()


@pytest.mark.parametrize("name", ["reproduce_color_mnist", "rho_sweep_color_mnist", "eps_sweep_color_mnist",
                                  "aavae_vs_vae_color_mnist", "variance_sweep_color_mnist",
                                  "latent_sweep_color_mnist", "width_sweep_color_mnist", "decoder_mean_color_mnist",
                                  "delusion_centre_color_mnist"])
def test_color_mnist_experiments_share_one_setting_and_refuse_an_unknown_argument(name):
    config = load_config(name, None)
    assert (config.base.data.name, config.base.network.architecture) == ("color_mnist", "conv")
    assert config.base.network.observation_variance == 0.5 and config.base.network.latent_dim == 64
    first_run = next(iter(reproduce_lib.build_run_configs(config, "/nonexistent").values()))
    assert reproduce_lib.budget_of(first_run) == {
        "num_steps": 5000, "batch_size": 64, "learning_rate": 1e-3, "steps_per_epoch": 500, "seed": 0}
    paper = load_config(name, "paper")
    assert (paper.budget.num_steps, paper.budget.learning_rate, paper.curve.every_steps) == (100_000, 1e-4, 5000)
    with pytest.raises(ValueError, match="'smoke' or 'paper'"):
        load_config(name, "papr")


def test_table1_config_has_the_paper_models_and_the_two_controls():
    config = load_config("reproduce_color_mnist")
    run_configs = reproduce_lib.build_run_configs(config, "/nonexistent")
    assert list(run_configs) == TABLE1_RUNS
    assert config.budget.num_steps == 5000 and config.budget.batch_size == 64 and config.budget.learning_rate == 1e-3
    assert run_configs["se"].model.to_dict() == {"name": "se", "epsilon": 0.1, "pgd_steps": 5, "rho": 0.95,
                                                 "beta": 1.0, "norm": "inf"}
    assert tuple(config.evaluation.radii) == (0.0, 0.1, 0.2) and config.evaluation.pgd_steps == 40
    assert [n for n, c in run_configs.items() if c.eval.every_steps] == ["vae", "avae", "se"]
    rho = reproduce_lib.build_run_configs(load_config("rho_sweep_color_mnist"), "/nonexistent")
    assert sorted(c.model.rho for c in rho.values()) == [0.5, 0.8, 0.9, 0.95, 0.975, 0.99]
    eps = load_config("eps_sweep_color_mnist")
    assert tuple(eps.evaluation.radii) == (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
    aavae = reproduce_lib.build_run_configs(load_config("aavae_vs_vae_color_mnist"), "/nonexistent")
    assert sorted(c.model.beta for c in aavae.values() if c.model.name == "aavae") == [0.0, 0.01, 0.1, 1.0]
    assert {c.model.name for c in aavae.values()} == {"ae", "vae", "aavae"}


def _table1_runs():
    """The training configs of every Table-1 run, the ones run only when named included."""
    config = load_config("reproduce_color_mnist")
    config.run_names = tuple(config.table_order)
    return reproduce_lib.build_run_configs(config, "/nonexistent")


def test_the_region_noise_controls_are_the_noise_fed_avae_with_its_noise_on_one_region_only():
    runs = _table1_runs()
    assert "noise_avae_background" not in load_config("reproduce_color_mnist").run_names  # only when named
    for region in ("background", "foreground"):
        run = runs[f"noise_avae_{region}"].to_dict()
        expected = runs["noise_avae"].to_dict()
        expected["model"]["augmentation"]["region"] = region
        assert run == expected
        model = train_lib.build_model(runs[f"noise_avae_{region}"])
        assert model.augmentation.region == region
        assert model.augmentation.stddev == pytest.approx(0.5 ** 0.5)


def test_variance_sweep_pairs_each_avae_with_a_noise_control_of_its_own_variance():
    config = load_config("variance_sweep_color_mnist")
    runs = reproduce_lib.build_run_configs(config, "/nonexistent")
    variances = (0.05, 0.1, 0.2, 0.5, 1.0)
    assert len(runs) == 2 * len(variances)
    for variance, avae, control in zip(variances, config.report.sweep_runs, config.report.sweep_control_runs):
        assert runs[avae].model.to_dict() == {"name": "avae", "rho": 0.975, "beta": 1.0, "delusion": "sample"}
        assert runs[avae].network.observation_variance == variance == runs[control].network.observation_variance
        assert runs[control].model.augmentation.to_dict() == {"name": "gaussian_noise", "stddev": variance ** 0.5}
        assert runs[avae].eval.every_steps and not runs[control].eval.every_steps  # curves for the AVAEs
        model = train_lib.build_model(runs[control])
        assert float(keras.ops.exp(model.decoder.likelihood.log_variance)) == pytest.approx(variance)
        del model
    # v = 0.5 is Table 1's setting: its finished run directories can be copied in unchanged
    table1 = _table1_runs()
    assert runs["avae_v05"].to_dict() == table1["avae"].to_dict()
    assert runs["noise_vae_v05"].to_dict() == table1["noise_vae"].to_dict()
    # the noise-fed AVAEs run only when named; each is its v's control plus the delusion loop
    noise_avaes = tuple("noise_" + avae for avae in config.report.sweep_runs)
    assert tuple(config.report.sweep_extra_runs) == noise_avaes  # the sweep's third series
    assert not set(noise_avaes) & set(config.run_names)
    config.run_names = noise_avaes
    named = reproduce_lib.build_run_configs(config, "/nonexistent")
    assert list(named) == list(noise_avaes)
    for variance, noise_avae, control in zip(variances, noise_avaes, config.report.sweep_control_runs):
        assert named[noise_avae].model.to_dict() == {
            "name": "avae", "rho": 0.975, "beta": 1.0, "delusion": "sample",
            "augmentation": runs[control].model.augmentation.to_dict()}
        assert named[noise_avae].network.observation_variance == variance
        assert {"run": noise_avae, "against": control} in [
            {key: c[key] for key in ("run", "against")} for c in config.report.comparisons]
    assert named["noise_avae_v05"].to_dict() == table1["noise_avae"].to_dict()


def test_rho_and_eps_sweeps_add_the_noise_fed_avae_only_when_named():
    # rho sweep: per rho, the AVAE of that rho plus Table 1's input noise; a second series of its own
    config = load_config("rho_sweep_color_mnist")
    avaes = tuple(config.run_names)
    noise_avaes = tuple("noise_" + name for name in avaes)
    assert tuple(config.report.sweep_runs) == avaes and tuple(config.report.sweep_extra_runs) == noise_avaes
    assert not config.report.get("sweep_control_runs")
    config.run_names = avaes + noise_avaes
    runs = reproduce_lib.build_run_configs(config, "/nonexistent")
    table1 = _table1_runs()["noise_avae"]
    for avae, noise_avae in zip(avaes, noise_avaes):
        assert runs[noise_avae].model.to_dict() == {**runs[avae].model.to_dict(),
                                                    "augmentation": table1.model.augmentation.to_dict()}
        assert runs[noise_avae].network.to_dict() == runs[avae].network.to_dict()
    assert sorted(runs[name].model.rho for name in noise_avaes) == [0.5, 0.8, 0.9, 0.95, 0.975, 0.99]
    assert runs["noise_rho_975"].to_dict() == table1.to_dict()  # Table 1's run directory can be copied in
    # eps sweep: Table 1's noise-fed AVAE beside the AVAE and SE, compared with SE
    config = load_config("eps_sweep_color_mnist")
    assert tuple(config.run_names) == ("avae", "se")
    config.run_names = ("avae", "se", "noise_avae")
    runs = reproduce_lib.build_run_configs(config, "/nonexistent")
    assert runs["noise_avae"].to_dict() == table1.to_dict()
    assert [tuple(c["radii"]) for c in config.report.comparisons if c["run"] == "noise_avae"] == [
        (0.05, 0.1), (0.15, 0.2, 0.25, 0.3)]  # up to and beyond SE's training radius, compared with SE
    assert {c["against"] for c in config.report.comparisons} == {"se"}


def _table1_pair_moved_in(runs, main, control, key, extra=()):
    """{run: its network[key]} over the robust-pair sweep runs, asserting that network[key] is the only difference
    between each run and its Table-1 twin (`noise_avae` for the main series, `se` for the control series, `avae`
    for the `extra` series, if any)."""
    table1, moved = _table1_runs(), {}
    for reference, names in (("noise_avae", main), ("se", control), ("avae", extra)):
        for name in names:
            run, expected = runs[name].to_dict(), table1[reference].to_dict()
            moved[name] = run["network"].pop(key)
            expected["network"].pop(key)
            assert run == expected, name  # network[key] is the only difference from Table 1's run
    return moved


def test_latent_sweep_moves_only_the_latent_dimension_of_table1s_noise_fed_avae_and_se():
    config = load_config("latent_sweep_color_mnist")
    runs = reproduce_lib.build_run_configs(config, "/nonexistent")
    main, control = tuple(config.report.sweep_runs), tuple(config.report.sweep_control_runs)
    assert sorted(runs) == sorted(main + control) and config.report.sweep_key == "network.latent_dim"
    moved = _table1_pair_moved_in(runs, main, control, "latent_dim")
    for dim, noise_avae, se in zip((16, 32, 64, 128), main, control):
        assert moved[noise_avae] == moved[se] == dim
    table1 = _table1_runs()
    assert runs["noise_avae_d64"].to_dict() == table1["noise_avae"].to_dict()  # copied in unchanged
    assert runs["se_d64"].to_dict() == table1["se"].to_dict()


def test_width_sweep_moves_only_the_convnet_width_of_table1s_noise_fed_avae_and_se(tmp_path):
    from tf_avae.networks import conv

    config = load_config("width_sweep_color_mnist")
    assert not {"noise_avae_w3", "se_w3", "noise_avae_w4", "se_w4"} & set(config.run_names)  # only when named
    config.run_names = tuple(config.table_order)
    runs = reproduce_lib.build_run_configs(config, "/nonexistent")
    main, control = tuple(config.report.sweep_runs), tuple(config.report.sweep_control_runs)
    plain = tuple(config.report.sweep_extra_runs)  # the paper's AVAE, without input noise, only when named
    assert not set(plain) & set(load_config("width_sweep_color_mnist").run_names)
    assert sorted(runs) == sorted(main + control + plain)
    table1 = _table1_runs()
    assert table1["noise_avae"].network.kwargs.to_dict() == table1["se"].network.kwargs.to_dict() == {}
    moved = _table1_pair_moved_in(runs, main, control, "kwargs", plain)  # the width is the only difference
    widths = {"w05": ([16, 32], 128), "w1": (None, None), "w2": ([64, 128], 512), "w3": ([96, 192], 768),
              "w4": ([128, 256], 1024)}
    for (suffix, (filters, units)), noise_avae, se, avae in zip(widths.items(), main, control, plain, strict=True):
        for name in (noise_avae, se, avae):
            assert name.endswith(suffix)
            assert moved[name] == ({"filters": filters, "dense_units": units} if filters else {}), name
    # the x1 runs are Table 1's (copied in unchanged), at the ConvNet's default width
    assert runs["noise_avae_w1"].to_dict() == table1["noise_avae"].to_dict()
    assert runs["se_w1"].to_dict() == table1["se"].to_dict()
    assert runs["avae_w1"].to_dict() == table1["avae"].to_dict()
    # each plain run trains as the noise-fed AVAE of its width without the input noise, and records its
    # robustness curve (as Table 1's AVAE does)
    for name in plain:
        run, noise_fed = runs[name].to_dict(), runs["noise_" + name].to_dict()
        assert "augmentation" not in run["model"] and noise_fed["model"].pop("augmentation")
        assert run.pop("eval")["every_steps"] == 500 and noise_fed.pop("eval")["every_steps"] is None
        assert run == noise_fed
    assert conv.default_filters((28, 28, 3)) == (32, 64)
    model = train_lib.build_model(runs["se_w1"])
    assert (model.encoder.filters, model.encoder.dense_units, model.decoder.dense_units) == ((32, 64), 256, 256)
    narrow, wide = train_lib.build_model(runs["se_w05"]), train_lib.build_model(runs["se_w2"])
    assert (wide.encoder.filters, wide.decoder.filters, wide.encoder.dense_units) == ((64, 128), (64, 128), 512)
    assert narrow.encoder.count_params() < model.encoder.count_params() < wide.encoder.count_params()
    keras.backend.clear_session()
    # the swept value: the run's dense units, the ConvNet's default (report.sweep_default) where it sets none
    results = reproduce_lib.collect_results(config, tmp_path, runs, reproduce_lib.evaluation_settings(config))
    assert {name: results["runs"][name]["sweep_value"] for name in runs} == {
        "noise_avae_w05": 128, "se_w05": 128, "noise_avae_w1": 256, "se_w1": 256, "noise_avae_w2": 512, "se_w2": 512,
        "noise_avae_w3": 768, "se_w3": 768, "noise_avae_w4": 1024, "se_w4": 1024,
        "avae_w05": 128, "avae_w1": 256, "avae_w2": 512, "avae_w3": 768, "avae_w4": 1024}
    config.report.sweep_default = None  # without it, a run that does not set the key is off the sweep
    results = reproduce_lib.collect_results(config, tmp_path, runs, reproduce_lib.evaluation_settings(config))
    assert results["runs"]["se_w1"]["sweep_value"] is None and results["runs"]["se_w2"]["sweep_value"] == 512


def test_decoder_mean_runs_are_table1s_with_a_linear_mean_and_the_x2_ones_the_width_sweeps():
    config = load_config("decoder_mean_color_mnist")
    assert list(reproduce_lib.selected_runs(config)) == ["vae_linear", "avae_linear", "noise_avae_linear"]
    config.run_names = ("vae_linear", "avae_linear", "noise_avae_linear", "vae_linear_w2", "avae_linear_w2",
                        "avae_linear_w3", "vae_sigmoid_w2", "noise_vae_sigmoid_w2")
    runs = {name: c.to_dict() for name, c in reproduce_lib.build_run_configs(config, "/nonexistent").items()}
    width = load_config("width_sweep_color_mnist")
    width.run_names = ("avae_w2", "avae_w3")
    twins = {name: c.to_dict() for name, c in _table1_runs().items()}
    twins.update({name: c.to_dict() for name, c in reproduce_lib.build_run_configs(width, "/nonexistent").items()})
    twins.update({f"{model}_w2": {**twins["avae_w2"], "model": twins[model]["model"]} for model in ("vae", "noise_vae")})
    for name, twin, mean in (
            ("vae_linear", "vae", "linear"), ("avae_linear", "avae", "linear"),
            ("noise_avae_linear", "noise_avae", "linear"), ("vae_linear_w2", "vae_w2", "linear"),
            ("avae_linear_w2", "avae_w2", "linear"), ("avae_linear_w3", "avae_w3", "linear"),
            ("vae_sigmoid_w2", "vae_w2", "sigmoid"),
            ("noise_vae_sigmoid_w2", "noise_vae_w2", "sigmoid")):
        run, expected = copy.deepcopy(runs[name]), copy.deepcopy(twins[twin])
        assert run["network"]["kwargs"].pop("mean_activation") == mean, name
        assert "mean_activation" not in expected["network"]["kwargs"]  # the decoder's default: sigmoid
        for entry in (run, expected):
            entry.pop("eval")  # the robustness curve's settings: recorded for other runs here
        assert run == expected, name  # the decoder mean (named) is the only difference from the twin


def test_delusion_centre_runs_are_table1s_avae_with_only_the_centre_of_its_noise_moved():
    config = load_config("delusion_centre_color_mnist")
    assert list(reproduce_lib.selected_runs(config)) == ["vae", "avae", "avae_at_data", "avae_half", "avae_random",
                                                         "avae_shuffled"]
    config.run_names = tuple(config.table_order)
    runs = {name: c.to_dict() for name, c in reproduce_lib.build_run_configs(config, "/nonexistent").items()}
    table1 = {name: c.to_dict() for name, c in _table1_runs().items()}
    assert runs["avae"] == table1["avae"]  # the same run as Table 1's AVAE, robustness curve included
    assert {**runs["vae"], "eval": None} == {**table1["vae"], "eval": None}  # Table 1's VAE, without its curve
    expected = {**table1["avae"], "eval": None}  # only the AVAE records a robustness curve
    moved = {}
    for name, run in runs.items():
        if name in ("vae", "avae"):
            continue
        model = dict(run["model"])
        moved[name] = (model.pop("delusion_offset"), model.pop("offset_scale"), model.pop("offset_shift", None))
        # the centre of x~'s noise is the only difference from Table 1's AVAE
        assert {**run, "model": model, "eval": None} == expected, name
    assert {name: offset[:2] for name, offset in moved.items() if offset[2] is None} == {
        "avae_at_data": ("decoder", 0.0), "avae_half": ("decoder", 0.5), "avae_random": ("random", 1.0),
        "avae_shuffled": ("shuffled", 1.0), "avae_quarter": ("decoder", 0.25), "avae_random_x2": ("random", 2.0),
        "avae_fixed": ("fixed", 1.0), "avae_dimmed": ("dimmed", 1.0), "avae_orthogonal": ("orthogonal", 1.0),
        "avae_ink": ("ink", 1.0), "avae_signed": ("signed", 1.0), "avae_scrambled": ("scrambled", 1.0),
        "avae_scattered": ("scattered", 1.0), "avae_shifted": ("shifted", 1.0)}  # "shifted" at the default 4 pixels
    assert {name: offset for name, offset in moved.items() if offset[2] is not None} == {
        "avae_shifted_1": ("shifted", 1.0, 1), "avae_shifted_2": ("shifted", 1.0, 2),
        "avae_shifted_3": ("shifted", 1.0, 3), "avae_shifted_5": ("shifted", 1.0, 5),
        "avae_shifted_8": ("shifted", 1.0, 8)}


def test_the_noise_avae_control_runs_only_when_named_and_is_the_noise_control_plus_the_delusion_loop():
    from tf_avae import augment, models

    config = load_config("reproduce_color_mnist")
    assert "noise_avae" in config.runs and "noise_avae" not in config.run_names
    # the controls run only when named come last: noise_avae, then its two one-region variants
    assert tuple(config.table_order[-3:]) == ("noise_avae", "noise_avae_background", "noise_avae_foreground")
    config.run_names = ("noise_vae", "noise_avae")
    runs = reproduce_lib.build_run_configs(config, "/nonexistent")
    assert list(runs) == ["noise_vae", "noise_avae"]
    assert runs["noise_avae"].model.to_dict() == {
        "name": "avae", "rho": 0.975, "beta": 1.0, "delusion": "sample",
        "augmentation": runs["noise_vae"].model.augmentation.to_dict()}  # the control's noise, resolved
    assert runs["noise_avae"].model.augmentation.stddev == pytest.approx(0.5 ** 0.5)
    model = train_lib.build_model(runs["noise_avae"])
    assert type(model) is models.AVAE and isinstance(model.augmentation, augment.GaussianNoiseAugment)


def test_run_table_errors_name_the_problem():
    config = load_config("reproduce_color_mnist", "smoke")
    config.run_names = ("avae_ss", "vae")  # AVAE-SS before the VAE it post-trains
    with pytest.raises(ValueError, match="'vae', which is not an earlier entry"):
        reproduce_lib.build_run_configs(config, "/nonexistent")
    config = load_config("reproduce_color_mnist", "smoke")
    config.run_names = ("vae", "nope")
    with pytest.raises(ValueError, match="nope"):
        reproduce_lib.build_run_configs(config, "/nonexistent")
    config = load_config("reproduce_color_mnist", "smoke")
    config.runs.vae.overrides = {"netwrok": {"latent_dim": 8}}
    with pytest.raises(KeyError, match="netwrok"):
        reproduce_lib.build_run_configs(config, "/nonexistent")


def test_every_training_key_but_the_budget_is_overridable_on_the_command_line():
    # data / network / train placeholders (None by default) keep their types, so flags can set them
    from absl import flags
    from ml_collections import config_flags

    def parse(*overrides, config="configs/reproduce_color_mnist.py:smoke"):
        argv = ["reproduce.py", f"--config={config}", *overrides]
        values = flags.FlagValues()  # scripts/reproduce.py's flag, on argv
        config_flags.DEFINE_config_file("config", None, "experiment", flag_values=values, sys_argv=argv)
        values(argv)
        return values.config

    config = parse("--config.base.train.keep_checkpoints=7", "--config.base.train.checkpoint_every_steps=250",
                   "--config.base.train.mixed_precision=mixed_bfloat16")
    config.run_names = ("vae", "avae")
    defaults = train_lib.base_config().train
    for run in reproduce_lib.build_run_configs(config, "/nonexistent").values():
        assert (run.train.keep_checkpoints, run.train.checkpoint_every_steps) == (7, 250)
        assert run.train.mixed_precision == "mixed_bfloat16"
        assert run.train.strategy == defaults.strategy and run.train.verbose == 2
        assert run.train.num_steps == config.budget.num_steps  # the budget's, not the training default
    with pytest.raises(Exception, match="num_steps"):  # the budget owns it: --config.budget.num_steps
        parse("--config.base.train.num_steps=10")
    config = parse("--config.base.data.limit=300", config="configs/reproduce_color_mnist.py")  # None by default
    config.run_names = ("vae",)
    assert train_lib.base_config().data.limit is None
    assert reproduce_lib.build_run_configs(config, "/nonexistent")["vae"].data.limit == 300


def test_a_missing_tfds_dataset_stops_the_cli_with_its_instructions(tmp_path):
    result = _reproduce(tmp_path / "cifar", config="configs/aavae_vs_vae_cifar10.py:smoke",
                        env={"TFDS_DATA_DIR": str(tmp_path / "no_tfds")})
    assert result.returncode == 2, result.stderr[-3000:]
    assert "DatasetNotAvailableError" in result.stderr and "tf-avae-prepare-data cifar10" in result.stderr
    assert "DatasetNotAvailableError" in (tmp_path / "cifar" / reproduce_lib.LOG_FILE).read_text()
    assert not list((tmp_path / "cifar").glob("*/model.keras"))  # nothing was trained


# --------------------------------------------------------------------------- the pure report
def _hand_written_results():
    def metrics(digit, colour, n=1000):
        out = {f"adv/digit/eps={r:g}": v for r, v in zip((0, 0.1, 0.2), digit)}
        out.update({f"adv/colour/eps={r:g}": v for r, v in zip((0, 0.1, 0.2), colour)})
        return {**out, "mse": 0.0123, "fid": 4.5, "data/num_test": n}

    def entry(label, paper, seconds, digit, colour, role="model", curve_seconds=0.0):
        return {"label": label, "role": role, "paper": paper, "model": {"name": label.lower()}, "seed": 3,
                "budget": {"num_steps": 100, "batch_size": 8, "learning_rate": 0.01, "steps_per_epoch": 50,
                           "seed": 3},
                "status": "done", "train": {"steps": 100, "seconds": seconds, "curve_seconds": curve_seconds},
                "metrics": metrics(digit, colour), "curve": None, "workdir": "/w/" + label}

    paper = {row: reproduce_lib.PAPER_TABLE1[row] for row in ("VAE", "AVAE", "SE(eps'=0.1, 5 steps)")}
    return {
        "experiment": "table1", "title": "T", "budget": {"num_steps": 100, "batch_size": 8, "learning_rate": 0.01,
                                                         "steps_per_epoch": 50, "seed": 3},
        "evaluation": {"radii": [0.0, 0.1, 0.2], "pgd_steps": 40, "limit": 1000, "feature": "auto", "seed": 0},
        "report": {"sections": ["table", "comparisons"], "plots": [], "tasks": ["digit", "colour"],
                   "time_reference": "vae", "comparisons": [{"run": "avae", "against": "noise",
                                                             "question": "More than noise?"}]},
        "paper": paper, "paper_budget": "p", "plots": {},
        "runs": {
            "vae": entry("VAE", "VAE", 200.0, (90.0, 4.0, 0.0), (99.0, 15.0, 1.0)),
            "se": entry("SE", "SE(eps'=0.1, 5 steps)", 800.0, (91.0, 61.0, 1.0), (99.0, 90.0, 20.0)),
            "avae": entry("AVAE", "AVAE", 310.0, (95.0, 70.0, 30.0), (99.0, 95.0, 80.0), curve_seconds=10.0),
            "noise": entry("Noise", None, 220.0, (94.0, 40.0, 30.5), (99.0, 60.0, 79.0), role="control"),
        },
    }


def _table(markdown):
    lines = [line for line in markdown.splitlines() if line.startswith("| model |")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    start = markdown.splitlines().index(lines[0])
    rows = {}
    for line in markdown.splitlines()[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells))
    return rows


def test_results_markdown_is_a_pure_function_with_paper_numbers_in_place():
    results = _hand_written_results()
    frozen = copy.deepcopy(results)
    markdown = reproduce_lib.results_markdown(results)
    assert results == frozen and markdown == reproduce_lib.results_markdown(results)
    rows = _table(markdown)
    assert rows["VAE"]["digit 0.1"] == "4.0 (5.8)" and rows["VAE"]["colour 0.2"] == "1.0 (2.0)"
    assert rows["SE"]["digit 0.1"] == "61.0 (89.6)" and rows["SE"]["colour 0.2"] == "20.0 (21.8)"
    assert rows["AVAE"]["digit 0"] == "95.0 (97.3)" and rows["AVAE"]["digit 0.2"] == "30.0 (54.8)"
    assert rows["AVAE"]["colour 0.1"] == "95.0 (99.8)"
    assert rows["Noise *(control)*"]["digit 0.1"] == "40.0"  # no paper number for a control
    # time = seconds / VAE seconds (curve evaluations excluded)
    assert rows["VAE"]["time"] == "x1.00 (x1)" and rows["SE"]["time"] == "x4.00 (x4)"
    assert rows["AVAE"]["time"] == "x1.50 (x1.5)" and rows["Noise *(control)*"]["time"] == "x1.10"
    assert reproduce_lib.time_ratios(results) == {"vae": 1.0, "se": 4.0, "avae": 1.5, "noise": 1.1}
    assert rows["SE"]["MSE"] == "0.0123" and rows["SE"]["seed"] == "3" and rows["SE"]["train s"] == "800"
    assert "100 steps of batch 8, Adam lr 0.01" in markdown  # the budget
    # the control comparison: digit 0.1 (+30) and colour 0.1 (+35) beyond 2 SE, the 0.2 cells within it
    outcome = reproduce_lib.compare_runs(results, "avae", "noise")
    assert [c["verdict"] for c in outcome["cells"].values()] == ["higher", "same", "higher", "same"]
    assert outcome["overall"].startswith("mixed: higher in 2 of 4")
    assert "**More than noise?** AVAE vs Noise: **mixed" in markdown


def test_results_markdown_shows_missing_runs_and_sweeps():
    results = _hand_written_results()
    results["runs"]["se"].update(status="not started", train=None, metrics=None)
    rows = _table(reproduce_lib.results_markdown(results))
    assert rows["SE"]["digit 0.1"] == "— (89.6)" and rows["SE"]["time"] == "— (x4)"
    # an experiment without a time reference (the sweeps) says so, and names no empty run
    no_reference = copy.deepcopy(results)
    no_reference["report"]["time_reference"] = ""
    markdown = reproduce_lib.results_markdown(no_reference)
    assert "time: not compared (the experiment names no reference run)" in markdown and "run ``" not in markdown
    assert {row["time"] for row in _table(markdown).values()} == {"— (x1)", "— (x4)", "— (x1.5)", "—"}
    results["report"].update(sections=["sweep"], sweep_key="model.rho", sweep_label="rho")
    for value, name in zip((0.9, 0.5, 0.99), ("vae", "avae", "noise")):
        results["runs"][name]["sweep_value"] = value
    markdown = reproduce_lib.results_markdown(results)
    order = [line.split("|")[1].strip() for line in markdown.splitlines() if re.match(r"\| (AVAE|VAE|Noise) \|", line)]
    assert order[:3] == ["AVAE", "VAE", "Noise"]  # sorted by rho


def test_results_markdown_names_each_runs_network_once_or_with_its_runs():
    results = _hand_written_results()
    assert "**Network" not in reproduce_lib.results_markdown(results)  # runs recorded before networks were
    conv = {"architecture": "conv", "latent_dim": 64, "likelihood": "gaussian", "learn_variance": False,
            "observation_variance": 0.5, "kwargs": {}}
    for entry in results["runs"].values():
        entry["network"] = copy.deepcopy(conv)
    markdown = reproduce_lib.results_markdown(results)
    assert "**Network (every run):** conv, latent 64, Gaussian likelihood (observation variance 0.5)." in markdown
    results["runs"]["se"]["network"].update(architecture="mlp", kwargs={"width_multiplier": 4})
    results["runs"]["noise"]["network"].update(learn_variance=True)
    results["runs"]["avae"]["network"].update(likelihood="bernoulli")
    del results["runs"]["vae"]["network"]
    line = next(x for x in reproduce_lib.results_markdown(results).splitlines() if x.startswith("**Networks:**"))
    assert line == ("**Networks:** mlp, latent 64, Gaussian likelihood (observation variance 0.5), width_multiplier=4 "
                    "(se); conv, latent 64, bernoulli likelihood (avae); conv, latent 64, Gaussian likelihood "
                    "(learned variance) (noise).")


def test_a_sweep_with_controls_lists_both_series_by_value_with_their_trends_and_plots_two_panels(tmp_path):
    from scipy import stats

    results = _hand_written_results()
    results["runs"]["noise2"] = copy.deepcopy(results["runs"]["noise"])
    results["runs"]["noise2"].update(label="Noise2", metrics={**results["runs"]["noise"]["metrics"],
                                                                "adv/digit/eps=0.1": 10.0})
    values = {"vae": 0.9, "avae": 0.5, "se": 0.99, "noise": 0.5, "noise2": 0.99}
    for name, value in values.items():
        results["runs"][name]["sweep_value"] = value
    results["report"].update(sections=["sweep"], sweep_key="model.rho", sweep_label="rho",
                             sweep_control_runs=["noise", "noise2"], sweep_control_label="noise")
    markdown = reproduce_lib.results_markdown(results)
    order = [line.split("|")[1].strip() for line in markdown.splitlines()
             if re.match(r"\| (AVAE|VAE|SE|Noise2?) \|", line)]
    assert order == ["AVAE", "Noise", "VAE", "SE", "Noise2"]  # by rho, a control after the run of its value
    main = reproduce_lib.sweep_trends(results)
    digit = [results["runs"][n]["metrics"]["adv/digit/eps=0.1"] for n in ("avae", "vae", "se")]
    assert main["digit eps=0.1"] == pytest.approx(stats.spearmanr([0.5, 0.9, 0.99], digit).statistic)
    assert reproduce_lib.sweep_trends(results, "control") == {}  # two control points: no trend
    # the report prints the trends collect_results stored, in task x radius order
    results.update(sweep_trends=dict(reversed(main.items())), sweep_control_trends={})
    markdown = reproduce_lib.results_markdown(results)
    trend = next(line for line in markdown.splitlines() if line.startswith("Trend (Spearman"))
    assert f"digit eps=0.1 {main['digit eps=0.1']:+.2f}" in trend
    assert trend.index("digit eps=0.1") < trend.index("colour eps=0.1")
    assert "Trend of the noise runs" not in markdown
    path = reproduce_lib.plot_sweep(results, tmp_path)
    assert pathlib.Path(path).read_bytes()[:8] == PNG_MAGIC


def test_a_third_sweep_series_is_listed_after_the_control_of_each_value_with_its_own_trend(tmp_path):
    from scipy import stats

    results = _hand_written_results()
    for name, label, digit in (("extra1", "Extra1", 7.0), ("extra2", "Extra2", 3.0), ("extra3", "Extra3", 5.0)):
        results["runs"][name] = copy.deepcopy(results["runs"]["noise"])
        results["runs"][name].update(label=label, metrics={**results["runs"]["noise"]["metrics"],
                                                           "adv/digit/eps=0.1": digit})
    values = {"vae": 0.9, "avae": 0.5, "se": 0.99, "noise": 0.5, "extra1": 0.5, "extra2": 0.9, "extra3": 0.99}
    for name, value in values.items():
        results["runs"][name]["sweep_value"] = value
    results["report"].update(sections=["sweep"], sweep_key="model.rho", sweep_label="rho",
                             sweep_control_runs=["noise"], sweep_control_label="noise",
                             sweep_extra_runs=["extra1", "extra2", "extra3"], sweep_extra_label="noise + loop")
    markdown = reproduce_lib.results_markdown(results)
    order = [line.split("|")[1].strip() for line in markdown.splitlines()
             if re.match(r"\| (AVAE|VAE|SE|Noise|Extra\d) \|", line)]
    # by rho; at one value the sweep run, then its control, then the third series
    assert order == ["AVAE", "Noise", "Extra1", "VAE", "Extra2", "SE", "Extra3"]
    # the main series leaves the listed runs of both other series out when `sweep_runs` is empty
    main = reproduce_lib.sweep_trends(results)
    digit = [results["runs"][n]["metrics"]["adv/digit/eps=0.1"] for n in ("avae", "vae", "se")]
    assert main["digit eps=0.1"] == pytest.approx(stats.spearmanr([0.5, 0.9, 0.99], digit).statistic)
    extra = reproduce_lib.sweep_trends(results, "extra")
    assert extra["digit eps=0.1"] == pytest.approx(stats.spearmanr([0.5, 0.9, 0.99], [7.0, 3.0, 5.0]).statistic)
    assert "digit eps=0.2" not in extra  # no spread in the copied metric: no trend
    results.update(sweep_trends=main, sweep_control_trends={}, sweep_extra_trends=extra)
    markdown = reproduce_lib.results_markdown(results)
    trend = next(line for line in markdown.splitlines() if line.startswith("Trend of the noise + loop runs"))
    assert f"digit eps=0.1 {extra['digit eps=0.1']:+.2f}" in trend
    path = reproduce_lib.plot_sweep(results, tmp_path)
    assert pathlib.Path(path).read_bytes()[:8] == PNG_MAGIC


def test_a_run_whose_last_epoch_ended_collapsed_is_flagged_in_the_report(smoke_run, tmp_path):
    import shutil

    source, _ = smoke_run
    for name in TABLE1_RUNS:  # every run was watched: one code_spread per epoch
        assert len(json.loads((source / name / train_lib.HISTORY_FILE).read_text())["history"]["code_spread"]) == 2
    workdir = tmp_path / "table1"
    threshold = train_lib.load_config(source / "noise_vae").train.collapse_threshold
    for name, last in (("noise_vae", threshold / 2), ("avae", threshold * 2)):  # just under / over the threshold
        shutil.copytree(source / name, workdir / name)
        path = workdir / name / train_lib.HISTORY_FILE
        history = json.loads(path.read_text())
        history["history"]["code_spread"][-1] = last
        path.write_text(json.dumps(history))
    result = _reproduce(workdir, "--config.run_names=noise_vae,avae")  # a report pass: both are done
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads((workdir / reproduce_lib.RESULTS_JSON).read_text())["runs"]
    note = f"**collapsed**: code spread {threshold / 2:.2g} < {threshold:g} per dimension at the last epoch; "
    assert runs["noise_vae"]["note"] == note + load_config("reproduce_color_mnist").runs["noise_vae"].note
    assert "collapsed" not in runs["avae"]["note"]
    row = next(line for line in (workdir / reproduce_lib.RESULTS_MD).read_text().splitlines()
               if line.startswith("| noise_vae | "))
    assert note in row


def test_diagnose_robustness_reports_the_displacements_of_the_reloaded_models_beside_their_eval(smoke_run):
    workdir, _ = smoke_run
    runs = [workdir / "vae", workdir / "avae"]
    output = workdir.parent / "diagnosis"
    result = subprocess.run(
        [sys.executable, "scripts/diagnose_robustness.py", f"--workdirs={','.join(map(str, runs))}",
         f"--output={output}", "--limit=16", "--pgd_steps=2", "--epsilon=0.1", "--at=data,delusion"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(output.with_suffix(".json").read_text())
    assert report["settings"] == {"epsilon": 0.1, "pgd_steps": 2, "limit": 16, "seed": 0, "at": ["data", "delusion"],
                                  "regions": ["all"], "checkpoints": False}
    assert "| moved by PGD |" in output.with_suffix(".md").read_text()
    images, _ = data.load_arrays("color_mnist", "test", limit=16, seed=0)
    assert [(row["workdir"], row["points"]) for row in report["rows"]] == [
        (str(run), points) for run in runs for points in ("data", "delusion")]
    for run, (at_data, at_delusion) in zip(runs, zip(report["rows"][::2], report["rows"][1::2])):
        model = train_lib.load_model(run)
        expected = evaluation.latent_displacement(model, images, epsilon=0.1, pgd_steps=2)
        delusions = evaluation.displacement_points(model, images, "delusion", seed=0)
        assert not (0 <= delusions.min() and delusions.max() <= 1)  # off the pixel range: measured unclipped
        expected_there = evaluation.latent_displacement(model, delusions, epsilon=0.1, pgd_steps=2, bounds=None,
                                                        spread=expected["displacement/spread"])
        for key in expected:
            assert at_data[key] == pytest.approx(expected[key], rel=1e-4), (run.name, key)
            assert at_delusion[key] == pytest.approx(expected_there[key], rel=1e-4), (run.name, key)
        recorded = json.loads((run / train_lib.EVAL_FILE).read_text())
        assert at_data["adv/digit/eps=0.1"] == at_delusion["adv/digit/eps=0.1"] == recorded["adv/digit/eps=0.1"]
        assert at_data["steps"] == 20


def test_diagnose_robustness_attacks_each_region_beside_that_regions_recorded_accuracy(smoke_run, tmp_path):
    import shutil

    workdir, _ = smoke_run
    run = tmp_path / "avae"
    shutil.copytree(workdir / "avae", run)
    recorded = json.loads((run / train_lib.EVAL_FILE).read_text())
    recorded["adv_background/digit/eps=0.1"] = 12.5  # as scripts/evaluate.py --attack_regions=background writes it
    (run / train_lib.EVAL_FILE).write_text(json.dumps(recorded))
    output = tmp_path / "regions"
    result = subprocess.run(
        [sys.executable, "scripts/diagnose_robustness.py", f"--workdirs={run}", f"--output={output}", "--limit=16",
         "--pgd_steps=2", "--at=data,delusion", "--regions=all,background,foreground"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(output.with_suffix(".json").read_text())["rows"]
    assert [(row["points"], row["region"]) for row in rows] == [
        ("data", "all"), ("data", "background"), ("data", "foreground"), ("delusion", "all")]
    images, _ = data.load_arrays("color_mnist", "test", limit=16, seed=0)
    model = train_lib.load_model(run)
    spread = evaluation.code_spread(model, images)
    for row in rows[:3]:
        expected = evaluation.latent_displacement(model, images, epsilon=0.1, pgd_steps=2, spread=spread,
                                                  region=row["region"])
        for key in expected:
            assert row[key] == pytest.approx(expected[key], rel=1e-4), (row["region"], key)
    assert rows[1]["displacement/pgd"] != pytest.approx(rows[2]["displacement/pgd"], rel=1e-3)
    # beside each region its own attack's accuracy, when eval.json has it; the all-pixel curve only beside "all"
    assert rows[0]["adv/digit/eps=0.1"] == recorded["adv/digit/eps=0.1"]
    assert rows[1]["adv/digit/eps=0.1"] == 12.5 and "adv/colour/eps=0.1" not in rows[1]
    assert "adv/digit/eps=0.1" not in rows[2]
    assert "curve/adv/digit/eps=0.1" in rows[0] and not any(key.startswith("curve/") for key in rows[1])
    assert rows[0]["sensitivity/worst"] == rows[1]["sensitivity/worst"] == recorded["sensitivity/worst"]
    assert "| data | background | 12.5 |" in output.with_suffix(".md").read_text()


def test_diagnose_robustness_follows_the_kept_checkpoints_through_training(smoke_run, tmp_path):
    import shutil

    from tf_avae import checkpointing

    workdir, _ = smoke_run
    run = tmp_path / "avae"
    shutil.copytree(workdir / "avae", run)
    checkpoints = run / train_lib.CHECKPOINT_DIR
    assert sorted(path.name for path in checkpoints.iterdir()) == ["ckpt-000000010", "ckpt-000000020"]
    broken = checkpoints / "ckpt-000000005"  # a corrupt third one: named and skipped
    shutil.copytree(checkpoints / "ckpt-000000010", broken)
    with open(broken / checkpointing.STATE_FILE, "ab") as handle:
        handle.write(b"\0")
    output = tmp_path / "over_training"
    result = subprocess.run(
        [sys.executable, "scripts/diagnose_robustness.py", f"--workdirs={run}", f"--output={output}", "--limit=16",
         "--pgd_steps=2", "--checkpoints"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ckpt-000000005" in result.stderr and "corrupt" in result.stderr
    assert output.with_suffix(".png").read_bytes().startswith(PNG_MAGIC)
    rows = json.loads(output.with_suffix(".json").read_text())["rows"]
    assert [(row["steps"], row["source"]) for row in rows] == [(10, "checkpoint"), (20, "checkpoint"), (20, "model")]
    # the curve's figures at each step, as the training callback recorded them
    curve = dict(json.loads((run / train_lib.CURVE_FILE).read_text())["records"])
    for row in rows:
        assert row["curve/adv/digit/eps=0.1"] == curve[row["steps"]]["adv/digit/eps=0.1"]
    assert "adv/digit/eps=0.1" in rows[2] and "adv/digit/eps=0.1" not in rows[0]  # eval.json: the final model's
    # each checkpoint's row: the reloaded model.keras with that checkpoint's weights loaded by Keras
    images, _ = data.load_arrays("color_mnist", "test", limit=16, seed=0)
    model = train_lib.load_model(run)
    final = evaluation.latent_displacement(model, images, epsilon=0.1, pgd_steps=2)
    model.load_weights(str(checkpoints / "ckpt-000000010" / checkpointing.STATE_FILE))
    early = evaluation.latent_displacement(model, images, epsilon=0.1, pgd_steps=2)
    for key in final:
        assert rows[0][key] == pytest.approx(early[key], rel=1e-4), key
        assert rows[1][key] == pytest.approx(final[key], rel=1e-4) and rows[2][key] == rows[1][key], key
    assert rows[0]["displacement/spread"] != pytest.approx(rows[1]["displacement/spread"], rel=1e-3)


def test_probe_dependence_repeats_the_suites_figures_with_its_probe_and_scikit_learns_with_the_others(smoke_run):
    from sklearn.linear_model import LogisticRegression

    workdir, _ = smoke_run
    run = workdir / "vae"
    output = workdir.parent / "probes"
    result = subprocess.run(
        [sys.executable, "scripts/probe_dependence.py", f"--workdirs={run}", f"--output={output}",
         "--C=1,0.01", "--standardise=true,false", "--radii=0,0.1", "--limit=64", "--pgd_steps=3",
         "--probe_train_limit=512"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(output.with_suffix(".json").read_text())
    rows = report["rows"]
    assert [(row["standardise"], row["C"], row["suite_probe"]) for row in rows] == [
        (True, 1.0, True), (True, 0.01, False), (False, 1.0, False), (False, 0.01, False)]
    assert "| **1** |" in output.with_suffix(".md").read_text()
    recorded = json.loads((run / train_lib.EVAL_FILE).read_text())  # the suite's evaluation of the same examples
    assert (recorded["data/num_test"], recorded["data/num_train"]) == (64, 512)
    for key in ("adv/digit/eps=0", "adv/digit/eps=0.1", "adv/colour/eps=0", "adv/colour/eps=0.1"):
        assert rows[0][key] == pytest.approx(recorded[key]), key
    # clean accuracy of every probe: scikit-learn's own predictions on the same codes
    model = train_lib.load_model(run)
    train_images, train_labels = data.load_arrays("color_mnist", "train", limit=512, seed=0)
    test_images, test_labels = data.load_arrays("color_mnist", "test", limit=64, seed=0)
    codes, test_codes = (evaluation.encode_features(model, images) for images in (train_images, test_images))
    mean, std = codes.mean(axis=0, dtype="float64"), codes.std(axis=0, dtype="float64")
    for row in rows:
        scale = std if row["standardise"] else 1.0
        for task in ("digit", "colour"):
            fitted = LogisticRegression(C=row["C"], max_iter=1000).fit((codes - mean) / scale, train_labels[task])
            accuracy = 100.0 * (fitted.predict((test_codes - mean) / scale) == test_labels[task]).mean()
            assert row[f"adv/{task}/eps=0"] == pytest.approx(accuracy, abs=100.0 / 64 + 1e-6), (row["C"], task)
            assert row[f"adv/{task}/eps=0.1"] <= row[f"adv/{task}/eps=0"]
    # a stronger penalty shrinks the weights
    assert rows[1]["weight_norm/digit"] < rows[0]["weight_norm/digit"]
    assert rows[3]["weight_norm/digit"] < rows[2]["weight_norm/digit"]


def test_diagnose_robustness_names_the_point_sets_it_knows():
    result = subprocess.run(
        [sys.executable, "scripts/diagnose_robustness.py", "--workdirs=nowhere", "--output=nowhere", "--at=data,edges"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "--at must be one of ['data', 'delusion', 'noisy']; got 'edges'" in result.stderr


def test_results_list_runs_in_the_configs_order_whatever_order_they_ran_in(tmp_path):
    config = load_config("reproduce_color_mnist", "smoke")
    declared = [name for name in config.run_names if name != "avae_ss"]  # avae_ss must follow vae
    config.run_names = tuple(reversed(declared))
    run_configs = reproduce_lib.build_run_configs(config, tmp_path)
    assert list(run_configs) == list(reversed(declared))
    results = reproduce_lib.collect_results(config, tmp_path, run_configs, reproduce_lib.evaluation_settings(config))
    assert results["run_order"] == declared


REPRODUCED = sorted(p.stem for p in (ROOT / "results").glob("*.json") if "report" in json.loads(p.read_text()))


def test_the_committed_reproduction_results_are_found():
    assert {"table1_conv_5k", "rho_sweep_conv_5k", "variance_sweep_conv_5k"} <= set(REPRODUCED)


@pytest.mark.parametrize("name", REPRODUCED)
def test_each_committed_results_md_is_rebuilt_exactly_from_its_results_json(name):
    # results.json is written with sorted keys: the report must not depend on the dicts' order
    results = json.loads((ROOT / "results" / f"{name}.json").read_text())
    markdown = (ROOT / "results" / f"{name}.md").read_text()
    assert reproduce_lib.results_markdown(results) == markdown
