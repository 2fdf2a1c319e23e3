"""Reproduction pipeline: one experiment config -> many training runs -> evaluations -> report.

Used by `scripts/reproduce.py`. An *experiment config* (configs/reproduce_color_mnist.py,
configs/rho_sweep_color_mnist.py, configs/eps_sweep_color_mnist.py, configs/aavae_vs_vae_*.py) is a
table of named runs plus one shared budget; this module turns each run into an ordinary training
config (`train_lib.base_config()` + the shared parts + the run's model spec), trains it with
`train_lib.train` and evaluates it with `eval_lib.evaluate_path`. Nothing here trains or evaluates by
itself.

Experiment config (see `experiment_config`):
    experiment      one of EXPERIMENTS: "table1" | "rho_sweep" | "eps_sweep" | "aavae_vs_vae" | "variance_sweep" |
                    "latent_sweep" | "width_sweep" (selects nothing in the code path: the run table, `report.sections` and
                    `report.plots` say what happens)
    title           heading of results.md
    budget          num_steps, batch_size, learning_rate, steps_per_epoch, seed: applied to EVERY run
    base            partial training config shared by all runs (data, network, train extras)
    curve           eval.* settings given to runs with `curve=True` (robustness_curve.json during training)
    runs            name -> {label, model, overrides, curve, paper, role}; `model` is the training
                    config's `model` spec; `overrides` a nested dict merged into the training config
    run_names       the runs to do, in order (a run may only refer to an earlier one)
    eval_limit      test examples of the evaluation (None: the whole test split)
    evaluation      other `evaluate_model` options (radii, pgd_steps, probe_train_limit, seed, feature,
                    classifier_dir, ...)
    report          sections, plots, tasks, paper table, comparisons, sweep, curve keys, time reference

String values in a run's model spec may refer to other things (resolved when the run is built):
    "$workdir:<run>"   the sub-workdir of an earlier run (AVAE-SS post-trains the VAE's)
    "$config:<path>"   a value of the run's own training config, e.g. "$config:train.batch_size"
    "$sqrt:<path>"     its square root, e.g. "$sqrt:network.observation_variance" (noise control)

Workdir layout:
    DIR/<run>/              the run's train_lib workdir (config.json, model.keras, history.json,
                            checkpoints/, robustness_curve.json) and evaluation (eval.json, plots/)
    DIR/<run>/eval_settings.json   the settings eval.json was made with (and its SHA-256)
    DIR/<run>/step_times.json      per training call: batches, median step, time spent in curve evaluations
    DIR/experiment.json     the resolved experiment config
    DIR/results.json        everything the report shows, with budget, wall time and seed per run
    DIR/results.md          `results_markdown(results)`: a pure function of results.json
    DIR/plots/*.png
    DIR/reproduce.log       progress (which run, which stage; what was skipped)

Resuming: rerunning the same command skips a run whose training finished (history.json has all
steps and config.json equals the run's config; an unfinished one resumes from its checkpoints) and an
evaluation whose eval.json was made with the same settings from the current model.keras; results.*
and the plots are always rebuilt from what exists.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import pathlib
import sys
import time
import traceback
from typing import Any, Callable, Mapping, NamedTuple

import ml_collections
import numpy as np
from scipy import stats

from tf_avae import data, eval_lib, train_lib

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
LOG_FILE = "reproduce.log"
EXPERIMENT_FILE = "experiment.json"
EVAL_SETTINGS_FILE = "eval_settings.json"
STEP_TIMES_FILE = "step_times.json"
PLOTS_DIR = "plots"

EXPERIMENTS = ("table1", "rho_sweep", "eps_sweep", "aavae_vs_vae", "variance_sweep", "latent_sweep",
               "width_sweep", "decoder_mean", "delusion_centre")
BUDGET_KEYS = ("num_steps", "batch_size", "learning_rate", "steps_per_epoch")


class SweepSeries(NamedTuple):
    """One series of a sweep: its report keys, its results.json trend field, how the plot draws it."""

    runs_key: str
    label_key: str
    trends_field: str
    marker: str
    style: str  # line style at eps > 0
    clean_style: str  # line style of the clean accuracy


# In table order within one swept value. "main" is `sweep_runs`, or every run no other series lists.
SWEEP_SERIES = {
    "main": SweepSeries("sweep_runs", "sweep_runs_label", "sweep_trends", "o", "-", ":"),
    "control": SweepSeries("sweep_control_runs", "sweep_control_label", "sweep_control_trends", "s", "--", "--"),
    "extra": SweepSeries("sweep_extra_runs", "sweep_extra_label", "sweep_extra_trends", "^", "-.", "-."),
}

# AVAE paper, Table 1 (colorMNIST, ConvNet; adversarial accuracy %, DESIGN.md section 4). Keys as in eval.json.
PAPER_TABLE1: dict[str, dict[str, Any]] = {
    row: {
        **{f"adv/digit/eps={r:g}": v for r, v in zip((0, 0.1, 0.2), digit)},
        **{f"adv/colour/eps={r:g}": v for r, v in zip((0, 0.1, 0.2), colour)},
        "time": time_,
    }
    for row, digit, colour, time_ in [
        ("VAE", (93.8, 5.8, 0.0), (100.0, 19.9, 2.0), "x1"),
        ("SE(eps'=0.1, 5 steps)", (94.3, 89.6, 1.8), (100.0, 100.0, 21.8), "x4"),
        ("AVAE", (97.3, 88.1, 54.8), (100.0, 99.8, 87.7), "x1.5"),
        ("SE-AVAE (0.1)", (97.4, 93.6, 24.5), (100.0, 100.0, 60.0), "x4.7"),
        ("AVAE-SS", (94.1, 72.8, 20.8), (100.0, 99.6, 56.8), "x1.5"),
    ]
}
# AAVAE paper (ResNet-50, 3200 epochs): CIFAR-10 linear-probe accuracy.
PAPER_PROBE: dict[str, dict[str, Any]] = {"AAVAE (CIFAR-10, ResNet-50)": {"probe/label": 87.1}}
PAPER_TABLES = {"table1": PAPER_TABLE1, "probe": PAPER_PROBE, None: {}}
PAPER_BUDGET = {
    "table1": "~100k steps of batch 64, Adam lr 1e-4 (reference code); ConvNet",
    "probe": "3200 epochs of batch 256, Adam lr 2.5e-4, ResNet-50",
    None: "",
}


# --------------------------------------------------------------------------- experiment configs
def experiment_config(experiment: str) -> ml_collections.ConfigDict:
    """Defaults every experiment config (configs/*.py with a run table) starts from."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {EXPERIMENTS}; got {experiment!r}.")
    base = train_lib.base_config()
    config = ml_collections.ConfigDict()
    config.experiment = experiment
    config.title = experiment
    config.budget = ml_collections.ConfigDict(
        {"num_steps": 5000, "batch_size": 64, "learning_rate": 1e-3, "steps_per_epoch": 500, "seed": 0})
    # the training config's sections with their typed placeholders, so that `--config.base.<section>.<key>=...`
    # reaches every run; the budget's keys are set from config.budget
    config.base = ml_collections.ConfigDict({"data": base.data, "network": base.network, "train": base.train})
    for key in BUDGET_KEYS:
        del config.base.train[key]
    config.base.train.verbose = 2
    config.curve = ml_collections.ConfigDict(
        {"every_steps": 500, "radii": (0.1,), "pgd_steps": 10, "probe_examples": 2000, "test_examples": 500})
    config.runs = ml_collections.ConfigDict()
    config.run_names = ()
    config.table_order = ()
    config.eval_limit = ml_collections.config_dict.placeholder(int)
    config.evaluation = ml_collections.ConfigDict({
        "radii": (0.0, 0.1, 0.2),
        "pgd_steps": 40,
        "probe_train_limit": ml_collections.config_dict.placeholder(int),
        "seed": 0,
        "feature": "auto",
        # cache of the classifier-FID network (None: ~/.cache/tf_avae/fid_classifiers, as scripts/evaluate.py)
        "classifier_dir": ml_collections.config_dict.placeholder(str),
    })
    config.report = ml_collections.ConfigDict({
        "sections": ("table",),
        "plots": ("robustness",),
        "tasks": ("digit", "colour"),
        "paper_table": ml_collections.config_dict.placeholder(str),
        "time_reference": "vae",
        "comparisons": (),
        "curve_runs": (),
        "curve_keys": ("adv/digit/eps=0.1",),
        "sweep_key": ml_collections.config_dict.placeholder(str),
        # the swept value of a run whose training config does not set `sweep_key` (e.g. the network's default)
        "sweep_default": ml_collections.config_dict.placeholder(float),
        "sweep_label": "",
        "sweep_log": False,
        "sweep_runs": (),  # the runs of the sweep (empty: every run)
        "sweep_runs_label": "",  # their name in the plot's legend beside other series
        "sweep_control_runs": (),  # a second series against the same swept value, dashed in the plot and the table
        "sweep_control_label": "control",
        "sweep_extra_runs": (),  # a third series (e.g. the control plus the AVAE's loop), dash-dotted
        "sweep_extra_label": "extra",
        "claims": (),
    })
    return config


def with_observation_noise(model: Mapping[str, Any], region: str = "all") -> dict[str, Any]:
    """`model` (a run's model spec) whose encoder input gets Gaussian noise of the likelihood's observation variance
    v (sd sqrt(v), resolved per run), the noise the AVAE's delusion x~ ~ p(x|z) adds: the noise-augmented VAE control
    is the AAVAE spec with it, the noise-fed AVAE the AVAE spec with it. `region` puts the noise on the background
    (pixels black in every channel) or the foreground only (`tf_avae.augment.GaussianNoiseAugment`)."""
    noise = {"name": "gaussian_noise", "stddev": "$sqrt:network.observation_variance"}
    return {**model, "augmentation": noise if region == "all" else {**noise, "region": region}}


def add_run(config, name: str, label: str, model: Mapping[str, Any], *, overrides: Mapping[str, Any] | None = None,
            curve: bool = False, paper: str | None = None, role: str = "model", note: str = "",
            default: bool = True) -> None:
    """Adds one row to the run table (and, unless `default` is False, to `run_names`).

    Args:
      name: the run's sub-workdir name.
      label: its row label in results.md.
      model: the training config's `model` spec (may hold "$workdir:" / "$config:" / "$sqrt:" references).
      overrides: nested dict merged into the run's training config after the shared parts.
      curve: record the robustness curve during training (the experiment's `curve` settings).
      paper: the row of the paper's table it is compared with.
      role: "model" or "control" (shown as such).
      note: shown in the run list of results.md.
      default: whether the experiment runs it unasked; False keeps it for `--config.run_names=...` only.
    """
    config.runs[name] = ml_collections.ConfigDict({
        "label": label, "model": dict(model), "overrides": dict(overrides or {}), "curve": bool(curve),
        "paper": paper or "", "role": role, "note": note,
    })
    if default:
        config.run_names = tuple(config.run_names) + (name,)
    config.table_order = tuple(config.table_order) + (name,)  # rows of results.md, whatever run_names says


def add_robust_pair(config, suffix: str, label: str, *, overrides: Mapping[str, Any] | None = None,
                    default: bool = True) -> tuple[str, str]:
    """Adds the two robust encoders whose shared digit ceiling the latent and width sweeps probe: Table 1's
    noise-fed AVAE (`noise_avae_<suffix>`) and SE (`se_<suffix>`, with its robustness curve), both changed by
    `overrides`; `label` ends both row labels. Returns the two run names."""
    noise_avae, se = f"noise_avae_{suffix}", f"se_{suffix}"
    variance = (overrides or {}).get("network", {}).get("observation_variance",
                                                        config.base.network.observation_variance)
    add_run(config, noise_avae, f"AVAE + input noise N(0, {variance:g}), {label}",
            with_observation_noise(train_lib.paper_model("avae")), overrides=overrides, default=default,
            note="encoder input x + N(0, v) noise, the noise of its delusions x~")
    add_run(config, se, f"SE (eps'=0.1, 5 steps), {label}", train_lib.paper_model("se"), overrides=overrides,
            curve=True, role="control", default=default,
            note="adversarial training: the encoder-smoothness ceiling of this setting")
    return noise_avae, se


def table1_report(config, *, time_reference: str, curve_runs, comparisons, claim: str) -> None:
    """The report of a Table-1-like experiment: the paper's Table 1 beside ours (digit and colour), the controls'
    comparisons, the robustness curves of `curve_runs` (digit at eps 0.1) and their plots."""
    config.report.update({
        "sections": ("table", "comparisons", "curve"),
        "plots": ("robustness", "training_curves"),
        "tasks": ("digit", "colour"),
        "paper_table": "table1",
        "time_reference": time_reference,
        "curve_runs": tuple(curve_runs),
        "curve_keys": ("adv/digit/eps=0.1",),
        "comparisons": tuple(comparisons),
        "claims": (claim,),
    })


def robust_pair_report(config, noise_avaes, ses, *, sweep_key: str, sweep_label: str, claim: str,
                       **report: Any) -> None:
    """The report of a sweep of `add_robust_pair` runs: the noise-fed AVAEs as the main series, SE as the control
    series (with their curves), on a log axis, digit and colour; `report` adds or overrides fields."""
    config.report.update({
        "sections": ("sweep", "table"),
        "plots": ("sweep", "robustness"),
        "tasks": ("digit", "colour"),
        "time_reference": "",
        "sweep_key": sweep_key,
        "sweep_label": sweep_label,
        "sweep_log": True,
        "sweep_runs": tuple(noise_avaes),
        "sweep_control_runs": tuple(ses),
        "sweep_runs_label": "AVAE + input noise",
        "sweep_control_label": "SE",
        "curve_runs": tuple(ses),
        "claims": (claim,),
        **report,
    })


def smoke_experiment(config) -> ml_collections.ConfigDict:
    """Shrinks an experiment to a CI run (every training + evaluation together in a few minutes on 2 cores)."""
    config.budget.update({"num_steps": 20, "batch_size": 32, "steps_per_epoch": 10})
    config.base.data.limit = 512
    config.base.data.eval_limit = 256
    config.base.train.eval_batches = 2
    config.curve.update({"every_steps": 10, "probe_examples": 200, "test_examples": 64, "pgd_steps": 2})
    config.eval_limit = 64
    config.evaluation.update({"pgd_steps": 3, "probe_train_limit": 512})
    config.evaluation.classifier_epochs = 1
    config.evaluation.similarity_limit = 64
    return config


# The ConvNet's width multipliers that the colorMNIST experiments train at: suffix -> (multiplier, network kwargs;
# None: the ConvNet's defaults, filters (32, 64) and 256 dense units). Conv filters scale with the dense units.
CONV_WIDTHS = {
    "w05": (0.5, {"filters": (16, 32), "dense_units": 128}),
    "w1": (1, None),
    "w2": (2, {"filters": (64, 128), "dense_units": 512}),
    "w3": (3, {"filters": (96, 192), "dense_units": 768}),
    "w4": (4, {"filters": (128, 256), "dense_units": 1024}),
}


def color_mnist_conv(config, eval_limit: int | None = 5000) -> ml_collections.ConfigDict:
    """The setting of the colorMNIST reproductions (paper Table 1): ConvNet, latent 64, Gaussian likelihood with
    observation variance 0.5, and the CPU budget (5000 steps of batch 64, Adam lr 1e-3, seed 0)."""
    config.base.data.name = "color_mnist"
    config.base.network.architecture = "conv"
    config.base.network.latent_dim = 64
    config.base.network.observation_variance = 0.5
    config.budget.update({"num_steps": 5000, "batch_size": 64, "learning_rate": 1e-3, "steps_per_epoch": 500,
                          "seed": 0})
    config.eval_limit = eval_limit
    return config


def apply_argument(config, arg: str | None, paper_eval_limit: bool = True) -> ml_collections.ConfigDict:
    """The argument after a config's colon: None (its own budget), "smoke" (CI) or "paper" (the paper's
    100k steps of batch 64 at lr 1e-4, the robustness curve every 5000 steps; with `paper_eval_limit`, the
    whole test set)."""
    train_lib.check_config_argument(arg)
    if arg == "paper":
        config.budget.update({"num_steps": 100_000, "learning_rate": 1e-4, "steps_per_epoch": 1000})
        config.curve.every_steps = 5000
        if paper_eval_limit:
            config.eval_limit = None
    if arg == "smoke":
        smoke_experiment(config)
    return config


RESNET_WIDTHS = {
    None: {"width": 16, "head_units": 512},  # the CPU budget
    "paper": {"width": 64, "head_units": 2048},  # the AAVAE authors' widths (their encoder is a ResNet-50)
    "smoke": {"width": 4, "blocks_per_stage": (1, 1, 1, 1), "head_units": 16},
}


def resnet_network(network, arg: str | None) -> ml_collections.ConfigDict:
    """The AAVAE network (a training config's `network`): ResNet-18 (CIFAR stem), latent 128, Gaussian likelihood
    with variance 1 (the authors' fixed scale 1), widths by config argument (`RESNET_WIDTHS`)."""
    network.architecture = "resnet"
    network.latent_dim = 128
    network.observation_variance = 1.0
    network.kwargs.update(RESNET_WIDTHS[arg or None])
    return network


def resnet_probe_setting(config, arg: str | None) -> ml_collections.ConfigDict:
    """The network of the CIFAR-10 / STL-10 AAVAE comparisons (`resnet_network`); one classification task,
    `label`."""
    resnet_network(config.base.network, arg)
    config.report.tasks = ("label",)
    return config


def aavae_vs_vae_experiment(dataset: str, preset: str, betas=(0.0, 0.01, 0.1, 1.0), paper: str | None = None):
    """AAVAE vs VAE vs AE with the same encoder and budget, plus AAVAE's beta sweep (configs/aavae_vs_vae_*.py).

    Runs: ae, vae (beta 1), aavae (beta 0: the AAVAE; SimCLR augmentation `preset`) and aavae_beta_<b> for
    the other betas, all with a linear decoder mean. Evaluated by the linear probe only (radius 0); the
    network/budget are the caller's.
    """
    config = experiment_config("aavae_vs_vae")
    config.base.data.name = dataset
    # The AAVAE authors' Gaussian decoder has an unbounded (linear) mean. A sigmoid mean saturates without a KL
    # term: on colorMNIST (lr 1e-3) the AE and the beta-0 AAVAE stalled at the mean image, gradient norm ~1e-12.
    config.base.network.kwargs.mean_activation = "linear"
    augmentation = {"name": "simclr", "preset": preset}
    add_run(config, "ae", "AE", {"name": "ae"})
    add_run(config, "vae", "VAE (beta 1)", {"name": "vae", "beta": 1.0})
    sweep = []
    for beta in betas:
        name = "aavae" if beta == 0 else "aavae_beta_" + f"{beta:g}".replace(".", "")
        add_run(config, name, "AAVAE" if beta == 0 else f"AAVAE beta={beta:g}",
                {"name": "aavae", "beta": float(beta), "augmentation": dict(augmentation)},
                paper=paper if beta == 0 else None)
        sweep.append(name)
    config.evaluation.radii = (0.0,)
    config.report.update({
        "sections": ("probe", "comparisons", "sweep"),
        "plots": ("probe", "sweep"),
        "time_reference": "vae",
        "paper_table": "probe" if paper else None,
        "sweep_key": "model.beta",
        "sweep_label": "beta (AAVAE)",
        "sweep_log": True,
        "sweep_runs": tuple(sweep),
        "comparisons": (
            {"run": "aavae", "against": "vae", "radii": (0.0,),
             "question": "Does the AAVAE beat the VAE on the linear probe?"},
            {"run": "aavae", "against": "ae", "radii": (0.0,),
             "question": "Does the AAVAE beat the AE on the linear probe?"},
        ),
        "claims": ("the AAVAE beats the VAE by a wide margin in linear-probe accuracy (CIFAR-10: 87.1% with a "
                   "ResNet-50) and is less sensitive to its hyperparameters (beta).",),
    })
    return config


# --------------------------------------------------------------------------- run table -> training configs
def _to_dict(value) -> Any:
    if isinstance(value, ml_collections.ConfigDict):
        return {k: _to_dict(v) for k, v in value.items()}
    if isinstance(value, Mapping):
        return {k: _to_dict(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_to_dict(v) for v in value]
    if isinstance(value, list):
        return [_to_dict(v) for v in value]
    return value


# mappings whose keys depend on something else (network.kwargs: the architecture's widths and decoder options):
# updates may add keys to them
OPEN_MAPPINGS = ("network.kwargs.",)


def _merge(target, updates: Mapping[str, Any], path: str = "") -> None:
    """Recursively sets `updates` into the ConfigDict `target`; an unknown key is refused, except in an
    empty mapping or one of the OPEN_MAPPINGS."""
    for key, value in updates.items():
        where = f"{path}{key}"
        exists = key in target
        if not exists and len(target) > 0 and path not in OPEN_MAPPINGS:
            raise KeyError(f"{where!r} is not a training config key (known here: {sorted(target.keys())}).")
        if exists and isinstance(value, Mapping) and isinstance(target[key], (ml_collections.ConfigDict, Mapping)) \
                and len(target[key]) > 0:
            _merge(target[key], value, f"{where}.")
        else:
            target[key] = _to_dict(value)


def _get_path(config, path: str) -> Any:
    node = config
    for part in path.split("."):
        try:
            node = node[part]
        except (KeyError, AttributeError, TypeError):
            raise KeyError(f"{path!r} is not in the training config.") from None
    return node


def run_dir(workdir, name: str) -> pathlib.Path:
    return pathlib.Path(workdir).resolve() / name


def _resolver(config, training_config, workdir, name: str, done: tuple[str, ...]) -> Callable[[str], Any]:
    def workdir_of(run):
        if run not in done:
            raise ValueError(f"run {name!r} refers to run {run!r}, which is not an earlier entry of run_names "
                             f"{selected_runs(config)}.")
        return str(run_dir(workdir, run))

    def config_value(path):
        return _get_path(training_config, path)

    def sqrt_value(path):
        return math.sqrt(float(config_value(path)))

    resolvers = {"workdir": workdir_of, "config": config_value, "sqrt": sqrt_value}

    def resolve(text: str) -> Any:
        kind, _, argument = text[1:].partition(":")
        if kind not in resolvers:
            raise ValueError(f"run {name!r}: unknown reference {text!r} (known: ${'/$'.join(resolvers)}:...).")
        return resolvers[kind](argument)

    return resolve


def _resolve(value, resolve):
    if isinstance(value, str) and value.startswith("$"):
        return resolve(value)
    if isinstance(value, Mapping):
        return {k: _resolve(v, resolve) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_resolve(v, resolve) for v in value]
    return value


def selected_runs(config) -> tuple[str, ...]:
    """config.run_names as a tuple (`--config.run_names=vae,avae` gives one comma-separated string)."""
    names = config.run_names
    names = [names] if isinstance(names, str) else list(names)
    return tuple(part.strip() for name in names for part in str(name).split(",") if part.strip())


def build_run_configs(config, workdir) -> dict[str, ml_collections.ConfigDict]:
    """{run name: its training config} in `run_names` order; the same for every run except the model spec,
    `overrides` and (for curve runs) `eval`."""
    names = selected_runs(config)
    unknown = [n for n in names if n not in config.runs]
    if unknown:
        raise ValueError(f"run_names {names} names runs that are not in config.runs: {unknown}.")
    if len(set(names)) != len(names):
        raise ValueError(f"run_names must be distinct; got {names}.")
    built: dict[str, ml_collections.ConfigDict] = {}
    for name in names:
        run = config.runs[name]
        training = train_lib.base_config()
        _merge(training, _to_dict(config.base))
        training.seed = int(config.budget.seed)
        for key in BUDGET_KEYS:
            training.train[key] = config.budget[key]
        if run.curve:
            _merge(training.eval, _to_dict(config.curve))
        _merge(training, _to_dict(run.overrides))
        resolve = _resolver(config, training, workdir, name, tuple(built))
        training.model = _resolve(_to_dict(run.model), resolve)
        built[name] = training
    return built


def run_dependencies(config, name: str) -> list[str]:
    """The runs whose workdir run `name` refers to ("$workdir:<run>" in its model spec)."""
    found = []

    def walk(value):
        if isinstance(value, str) and value.startswith("$workdir:"):
            found.append(value.partition(":")[2])
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(_to_dict(config.runs[name].model))
    return found


def budget_of(training_config) -> dict[str, Any]:
    return {**{key: training_config.train[key] for key in BUDGET_KEYS}, "seed": int(training_config.seed)}


def total_steps(training_config) -> int:
    per_epoch = int(training_config.train.steps_per_epoch)
    return max(1, math.ceil(int(training_config.train.num_steps) / per_epoch)) * per_epoch


def evaluation_settings(config) -> dict[str, Any]:
    """The evaluate_path options of every run (eval.json is redone when they change)."""
    settings = _to_dict(config.evaluation)
    settings["limit"] = config.eval_limit
    settings["radii"] = [float(r) for r in settings["radii"]]
    return settings


def _compared_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k != "classifier_dir"}  # a cache location, not a setting


# --------------------------------------------------------------------------- progress log
class Log:
    """Progress lines to stdout and DIR/reproduce.log (appended: a rerun adds to it)."""

    def __init__(self, workdir):
        self.path = pathlib.Path(workdir) / LOG_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, message: str) -> None:
        line = f"{datetime.datetime.now().isoformat(timespec='seconds')} [reproduce] {message}"
        print(line, flush=True)
        with open(self.path, "a") as handle:
            handle.write(line + "\n")


# --------------------------------------------------------------------------- stages
def _step_timer(directory, every_steps):
    """A Keras callback timing every batch (step plus the robustness-curve evaluation that follows it at
    multiples of `every_steps`); writes DIR/<run>/step_times.json at every epoch end.

    history.json's `seconds` include the during-training robustness evaluations, which only the curve
    runs do; `curve_seconds` (the excess of those batches over the median step, plus one such evaluation
    for the one at step 0 when the curve starts there) is subtracted before computing time ratios.
    """
    import keras

    path = pathlib.Path(directory) / STEP_TIMES_FILE

    class StepTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            earlier = _read_json(path) or {"segments": []}
            self.segments = earlier["segments"]
            self.index = len(self.segments)
            self.first_step = int(self.model.optimizer.iterations.numpy())
            self.durations, self.curve = [], []

        def on_train_batch_begin(self, batch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            seconds = time.perf_counter() - self.started
            step = int(self.model.optimizer.iterations.numpy())
            self.durations.append(seconds)
            if every_steps and step % every_steps == 0:
                self.curve.append((step, seconds))

        def on_epoch_end(self, epoch, logs=None):
            median = float(np.median(self.durations)) if self.durations else 0.0
            excess = [max(0.0, seconds - median) for _, seconds in self.curve]
            at_start = bool(every_steps) and self.first_step == 0 and bool(excess)
            segment = {"first_step": self.first_step, "batches": len(self.durations),
                       "batch_seconds": float(sum(self.durations)), "median_step_seconds": median,
                       "curve_evaluations": len(excess) + int(at_start),
                       "curve_seconds": float(sum(excess) + (float(np.mean(excess)) if at_start else 0.0))}
            self.segments[self.index:] = [segment]
            train_lib.write_json(path, {"segments": self.segments})

    return StepTimer()


def _collapse_note(history, training) -> str:
    """'**collapsed** ...; ' when the run's last epoch ended below its collapse threshold (train_lib's watch)."""
    spreads = ((history or {}).get("history") or {}).get("code_spread") or []
    threshold = training.train.get("collapse_threshold")
    if not spreads or threshold is None or spreads[-1] >= threshold:
        return ""
    return f"**collapsed**: code spread {spreads[-1]:.2g} < {threshold:g} per dimension at the last epoch; "


def step_times_summary(directory) -> dict[str, Any] | None:
    recorded = _read_json(pathlib.Path(directory) / STEP_TIMES_FILE)
    if not recorded or not recorded.get("segments"):
        return None
    segments = recorded["segments"]
    batches = sum(s["batches"] for s in segments)
    return {"curve_seconds": float(sum(s["curve_seconds"] for s in segments)),
            "curve_evaluations": int(sum(s["curve_evaluations"] for s in segments)),
            "median_step_ms": 1000.0 * float(np.median([s["median_step_seconds"] for s in segments])),
            "batches_timed": int(batches)}


def _read_json(path):
    path = pathlib.Path(path)
    return json.loads(path.read_text()) if path.exists() else None


def training_state(directory, training_config) -> dict[str, Any]:
    """{"finished": bool, "steps": int, "seconds": float|None}; raises ValueError if the sub-workdir holds
    a run of another config (train_lib refuses it, nothing is changed)."""
    directory = pathlib.Path(directory)
    train_lib.check_workdir_config(directory, training_config)
    history = _read_json(directory / train_lib.HISTORY_FILE)
    steps = int(history["steps"]) if history else 0
    finished = bool(history) and (directory / train_lib.MODEL_FILE).exists() and steps >= total_steps(training_config)
    return {"finished": finished, "steps": steps, "seconds": history.get("seconds") if history else None}


def evaluation_is_current(directory, settings) -> bool:
    """eval.json exists, was made with these settings (eval_settings.json) and is newer than model.keras."""
    directory = pathlib.Path(directory)
    eval_path, model_path = directory / train_lib.EVAL_FILE, directory / train_lib.MODEL_FILE
    recorded = _read_json(directory / EVAL_SETTINGS_FILE)
    if not eval_path.exists() or not model_path.exists() or recorded is None:
        return False
    if _compared_settings(recorded.get("settings", {})) != _compared_settings(json.loads(json.dumps(settings))):
        return False
    if recorded.get("eval_sha256") != hashlib.sha256(eval_path.read_bytes()).hexdigest():
        return False
    return eval_path.stat().st_mtime >= model_path.stat().st_mtime


def _classifier_dir(settings):
    return settings.get("classifier_dir") or str(data.data_dir() / "fid_classifiers")


def evaluate_run(directory, settings) -> dict[str, float]:
    """eval_lib.evaluate_path with the experiment's settings; records them in eval_settings.json."""
    directory = pathlib.Path(directory)
    options = {k: v for k, v in settings.items() if k not in ("feature", "classifier_dir")}
    options["radii"] = tuple(options["radii"])
    started = time.perf_counter()
    numbers = eval_lib.evaluate_path(directory, feature=settings.get("feature", "auto"),
                                     classifier_dir=_classifier_dir(settings), **options)
    train_lib.write_json(directory / EVAL_SETTINGS_FILE, {
        "settings": json.loads(json.dumps(settings)),
        "eval_sha256": hashlib.sha256((directory / train_lib.EVAL_FILE).read_bytes()).hexdigest(),
        "seconds": time.perf_counter() - started,
    })
    return numbers


def check_data_available(run_configs: Mapping[str, Any], settings) -> None:
    """Every (dataset, split) the runs and their evaluation read must be on this machine; raises
    DatasetNotAvailableError (with the command that prepares it) before anything is trained."""
    needed = set()
    for training in run_configs.values():
        name = training.data.name
        if training.model.name != "avae_ss":
            needed.add((name, training.data.train_split))
            if training.data.eval_split:
                needed.add((name, training.data.eval_split))
        needed.update({(name, "train"), (name, "test")})  # the evaluation's probe and test splits
    for name, split in sorted(needed):
        try:
            data.build_dataset(name, split, 1, shuffle=False, limit=1, prefetch=False)
        except data.DatasetNotAvailableError as error:
            raise data.DatasetNotAvailableError(
                f"this experiment needs {name!r} (split {split!r}), which is not available here: {error}") from error


# --------------------------------------------------------------------------- the pipeline
def run(config, workdir, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Trains and evaluates every run of the experiment (skipping what is done); writes results.* and plots.

    Returns the results dict (what results.json holds). A run that fails is logged with its error and
    recorded as failed; runs that refer to it are not attempted; the others go on.
    """
    workdir = pathlib.Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    log = log or Log(workdir)
    run_configs = build_run_configs(config, workdir)
    settings = evaluation_settings(config)
    train_lib.write_json(workdir / EXPERIMENT_FILE, _to_dict(config))
    log(f"experiment {config.experiment!r} ({config.title}): runs {', '.join(run_configs)}; budget "
        f"{_to_dict(config.budget)}; evaluation {settings}; workdir {workdir}")
    try:
        check_data_available(run_configs, settings)
    except data.DatasetNotAvailableError as error:
        log(f"DatasetNotAvailableError: {error}")
        raise
    failed: dict[str, str] = {}
    for name, training in run_configs.items():
        directory = run_dir(workdir, name)
        blocked = [n for n in run_dependencies(config, name) if n in failed]
        if blocked:
            failed[name] = f"not attempted: it needs run(s) {blocked}, which failed"
            log(f"{name}: {failed[name]}")
            continue
        try:
            _train_stage(name, training, directory, log)
            _eval_stage(name, directory, settings, log)
        except Exception as error:  # noqa: BLE001 -- one failed run must not lose the others
            failed[name] = f"{type(error).__name__}: {error}"
            log(f"{name}: FAILED {failed[name]}")
            log(traceback.format_exc())
        finally:
            import keras

            keras.backend.clear_session()
        write_report(config, workdir, run_configs, settings, failed, plots=False)  # partial results as runs finish
    results = write_report(config, workdir, run_configs, settings, failed, log=log)
    log(f"done: {len(run_configs) - len(failed)}/{len(run_configs)} runs complete"
        + (f"; failed: {sorted(failed)}" if failed else ""))
    return results


def _train_stage(name, training, directory, log):
    state = training_state(directory, training)
    if state["finished"]:
        log(f"{name}: train skipped (finished: {state['steps']} steps in {state['seconds']:.1f} s; model.keras kept)")
        return
    steps = sorted(int(path.name.split("-")[1]) for path in (directory / train_lib.CHECKPOINT_DIR).glob("ckpt-*")
                   if path.name.split("-")[1].isdigit())
    how = f"resuming from the checkpoint of step {steps[-1]}" if steps else "from step 0"
    log(f"{name}: train start ({training.model.name}, {total_steps(training)} steps of batch "
        f"{training.train.batch_size}, lr {training.train.learning_rate}, seed {training.seed}; {how}) -> {directory}")
    started = time.perf_counter()
    every = training.eval.every_steps if training.get("eval") is not None else None
    train_lib.train(training, directory, extra_callbacks=[_step_timer(directory, every)], resume=True)
    history = _read_json(directory / train_lib.HISTORY_FILE) or {}
    log(f"{name}: train done ({history.get('steps')} steps; {history.get('seconds', float('nan')):.1f} s of "
        f"training, {time.perf_counter() - started:.1f} s in this call)")


def _eval_stage(name, directory, settings, log):
    if evaluation_is_current(directory, settings):
        log(f"{name}: eval skipped (eval.json is current for these settings)")
        return
    log(f"{name}: eval start (radii {settings['radii']}, {settings['pgd_steps']} PGD steps, "
        f"limit {settings['limit']})")
    started = time.perf_counter()
    evaluate_run(directory, settings)
    log(f"{name}: eval done in {time.perf_counter() - started:.1f} s")


# --------------------------------------------------------------------------- results
def collect_results(config, workdir, run_configs, settings, failed=None) -> dict[str, Any]:
    """results.json's content, read from the sub-workdirs (whatever exists)."""
    workdir = pathlib.Path(workdir)
    failed = failed or {}
    report = _to_dict(config.report)
    paper = PAPER_TABLES.get(report.get("paper_table"), {})
    runs = {}
    declared = list(config.get("table_order", ()))
    ordered = sorted(run_configs, key=lambda n: declared.index(n) if n in declared else len(declared))
    for name in ordered:
        training = run_configs[name]
        spec = config.runs[name]
        directory = run_dir(workdir, name)
        history = _read_json(directory / train_lib.HISTORY_FILE)
        metrics = _read_json(directory / train_lib.EVAL_FILE)
        recorded = _read_json(directory / EVAL_SETTINGS_FILE)
        curve = _read_json(directory / train_lib.CURVE_FILE)
        finished = bool(history) and int(history.get("steps", 0)) >= total_steps(training)
        timing = step_times_summary(directory) or {}
        status = failed.get(name) or (
            "done" if finished and metrics is not None else
            "not evaluated" if finished else "training unfinished" if history or (directory / "checkpoints").exists()
            else "not started")
        sweep_value = None
        if report.get("sweep_key"):
            try:
                sweep_value = _get_path(training, report["sweep_key"])
            except KeyError:
                sweep_value = report.get("sweep_default")
        runs[name] = {
            "label": spec.label,
            "role": spec.role,
            "note": _collapse_note(history, training) + spec.get("note", ""),
            "paper": spec.paper or None,
            "model": _to_dict(training.model),
            "network": _to_dict(training.network),
            "data": training.data.name,
            "budget": budget_of(training),
            "seed": int(training.seed),
            "workdir": str(directory),
            "status": status,
            "train": None if history is None else {
                "steps": int(history.get("steps", 0)), "seconds": float(history.get("seconds", float("nan"))),
                "curve_seconds": timing.get("curve_seconds", 0.0), "median_step_ms": timing.get("median_step_ms"),
                "finished": finished, "resumed_from_step": history.get("resumed_from_step")},
            "metrics": metrics,
            "eval_settings": (recorded or {}).get("settings"),
            "eval_seconds": (metrics or {}).get("time/total"),
            "curve": (curve or {}).get("records"),
            "sweep_value": sweep_value,
        }
    results = {
        "experiment": config.experiment,
        "title": config.title,
        "written": datetime.datetime.now().isoformat(timespec="seconds"),
        "workdir": str(workdir),
        "budget": _to_dict(config.budget),
        "evaluation": json.loads(json.dumps(settings)),
        "report": report,
        "paper": {row: values for row, values in paper.items()
                  if any(r["paper"] == row for r in runs.values())},
        "paper_budget": PAPER_BUDGET.get(report.get("paper_table"), ""),
        "run_order": list(runs),  # results.json is written with sorted keys
        "runs": runs,
        "plots": {},
    }
    return _add_derived(results)


def _add_derived(results: dict[str, Any]) -> dict[str, Any]:
    """The figures computed across runs (time ratios, comparisons, sweep trends), from `runs` and `report`."""
    runs, report = results["runs"], results["report"]
    results["time_ratios"] = time_ratios(results)
    results["comparisons"] = [{**item, **compare_runs(results, item["run"], item["against"], item.get("radii"))}
                              for item in report.get("comparisons", ()) if item["run"] in runs
                              and item["against"] in runs]
    for name, series in SWEEP_SERIES.items():
        results[series.trends_field] = sweep_trends(results, name) if report.get("sweep_key") else {}
    return results


# What every results.json merged into one report must share: one experiment, budget and evaluation protocol.
# Their report layouts may differ (a config that gained runs between them); the newest one is used.
MERGE_SHARED = ("experiment", "title", "budget", "evaluation", "paper_budget")
MERGED_FROM = "merged_from"


def _placed_runs(report: Mapping[str, Any]) -> set[str]:
    """The runs a report layout names in its run lists (sweep series, curves, ...)."""
    return {name for key, value in report.items() if key.endswith("_runs") for name in value or ()}


def load_results_file(path) -> dict[str, Any]:
    """A results.json written by `write_report` (or `merge_results`); a clear ValueError for anything else."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"results file {str(path)!r} does not exist (expected a reproduce results.json).")
    try:
        results = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"results file {str(path)!r} is not valid JSON ({error}).") from None
    missing = [key for key in (*MERGE_SHARED, "report", "runs", "run_order") if not isinstance(results, dict) or key not in results]
    if missing:
        raise ValueError(f"results file {str(path)!r} is not a reproduce results.json: it lacks {missing}.")
    return results


def merge_results(parts: list[Mapping[str, Any]], workdir, sources: list[str] | None = None) -> dict[str, Any]:
    """One report from the results.json of several workdirs of the same experiment (runs trained apart).

    The parts must agree on `MERGE_SHARED` (experiment, budget, evaluation settings) and hold disjoint runs;
    runs keep their order, part by part, and their own `workdir`. The report layout is the newest part's (by
    `written`), as a report pass of reproduce.py lays out old runs with the current config; it must place every
    run that its own part's layout placed. Time ratios, comparisons and sweep trends are recomputed over the
    union (time ratios then compare runs that may have trained on other machines or beside other jobs).
    """
    sources = [str(s) for s in (sources or [f"part {i}" for i in range(len(parts))])]
    if len(parts) < 2:
        raise ValueError(f"merge_results needs at least two results to merge; got {len(parts)}.")
    if len(sources) != len(parts):
        raise ValueError(f"sources names {len(sources)} files for {len(parts)} results.")
    first = parts[0]
    for source, part in zip(sources[1:], parts[1:]):
        for key in MERGE_SHARED:
            if part.get(key) != first.get(key):
                raise ValueError(f"{source} and {sources[0]} differ in {key!r} ({part.get(key)!r} vs "
                                 f"{first.get(key)!r}): only reports of one experiment with the same budget and "
                                 "evaluation settings can be merged.")
    newest = max(range(len(parts)), key=lambda i: str(parts[i].get("written", "")))
    layout = parts[newest]["report"]
    for source, part in zip(sources, parts):
        unplaced = sorted((_placed_runs(part["report"]) & set(part["runs"])) - _placed_runs(layout))
        if unplaced:
            raise ValueError(f"the newest report layout ({sources[newest]}) does not place run(s) {unplaced} of "
                             f"{source}, which its own layout does: merge after a report pass of the current config "
                             "over that part.")
    runs, paper, owner = {}, {}, {}
    for source, part in zip(sources, parts):
        for name, entry in _runs_in_order(part):
            if name in runs:
                raise ValueError(f"run {name!r} is in both {owner[name]} and {source}: merge disjoint runs only.")
            runs[name], owner[name] = entry, source
        paper.update(part.get("paper") or {})
    results = {key: first[key] for key in MERGE_SHARED}
    results.update({
        "report": layout,
        "written": datetime.datetime.now().isoformat(timespec="seconds"),
        "workdir": str(workdir),
        MERGED_FROM: sources,
        "paper": paper,
        "run_order": list(runs),
        "runs": runs,
        "plots": {},
    })
    return _add_derived(results)


def merge_files(inputs, workdir, plots=True, log=None) -> dict[str, Any]:
    """`merge_results` of the results.json files `inputs`, written into `workdir` (scripts/merge_results.py).

    ValueError, with nothing written, when an input is missing or does not fit the others, or when `workdir`
    already holds a results.json that is not a merge (a reproduce.py report is never overwritten).
    """
    workdir = pathlib.Path(workdir)
    existing = workdir / RESULTS_JSON
    if existing.exists():
        try:
            merged_before = MERGED_FROM in load_results_file(existing)
        except ValueError:
            merged_before = False
        if not merged_before:
            raise ValueError(f"workdir {str(workdir)!r} already holds a results.json that is not a merge (a "
                             "reproduce.py report, or something else): choose another workdir.")
    parts = [load_results_file(path) for path in inputs]
    results = merge_results(parts, workdir, sources=[str(path) for path in inputs])
    workdir.mkdir(parents=True, exist_ok=True)
    return write_results(results, workdir, log=log, plots=plots)


def write_report(config, workdir, run_configs, settings, failed=None, log=None, plots=True) -> dict[str, Any]:
    """Rebuilds results.json, the plots (unless `plots=False`) and results.md from the sub-workdirs."""
    results = collect_results(config, pathlib.Path(workdir), run_configs, settings, failed)
    return write_results(results, workdir, log=log, plots=plots)


def write_results(results: dict[str, Any], workdir, log=None, plots=True) -> dict[str, Any]:
    """Writes the plots (unless `plots=False`), then results.json and results.md of `results` into `workdir`."""
    workdir = pathlib.Path(workdir)
    for plot in results["report"]["plots"] if plots else ():
        try:
            path = PLOTS[plot](results, workdir / PLOTS_DIR)
        except Exception as error:  # noqa: BLE001 -- a plot must not lose the numbers
            if log:
                log(f"plot {plot!r} not written: {type(error).__name__}: {error}")
            continue
        if path:
            results["plots"][plot] = os.path.relpath(path, workdir)
    train_lib.write_json(workdir / RESULTS_JSON, results)
    markdown = results_markdown(results)
    train_lib.write_atomically(workdir / RESULTS_MD, lambda tmp: pathlib.Path(tmp).write_text(markdown))
    if log:
        log(f"report: {workdir / RESULTS_JSON}, {workdir / RESULTS_MD}, plots {sorted(results['plots'].values())}")
    return results


def output_lines(results: Mapping[str, Any]) -> list[str]:
    """Where a written report's files are: the lines scripts/reproduce.py and scripts/merge_results.py print."""
    workdir = results["workdir"]
    return [f"{RESULTS_JSON}: {workdir}/{RESULTS_JSON}", f"{RESULTS_MD}:   {workdir}/{RESULTS_MD}",
            *(f"plot {name}: {workdir}/{path}" for name, path in results["plots"].items())]


# --------------------------------------------------------------------------- pure report helpers
def training_seconds(train: Mapping[str, Any] | None) -> float | None:
    """history.json seconds minus the time spent in during-training robustness evaluations (if any)."""
    if not train or train.get("seconds") is None:
        return None
    return float(train["seconds"]) - float(train.get("curve_seconds") or 0.0)


def time_ratios(results: Mapping[str, Any]) -> dict[str, float | None]:
    """{run: training seconds / the reference run's seconds} (None where either is missing)."""
    runs = results["runs"]
    base = training_seconds(runs.get(results["report"].get("time_reference") or "", {}).get("train"))
    ratios = {}
    for name, entry in runs.items():
        seconds = training_seconds(entry.get("train"))
        ok = base and seconds is not None and math.isfinite(base) and math.isfinite(seconds) and base > 0
        ratios[name] = float(seconds) / float(base) if ok else None
    return ratios


def _fmt(value, digits=1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}f}"


def _cell(ours, paper, digits=1) -> str:
    return f"{_fmt(ours, digits)} ({_fmt(paper, digits)})" if paper is not None else _fmt(ours, digits)


def _metric(entry, key):
    return (entry.get("metrics") or {}).get(key)


def adv_key(task: str, radius: float) -> str:
    """As tf_avae.evaluation.radius_key: adv/<task>/eps=<radius shortest>."""
    return f"adv/{task}/eps={float(radius):g}"


def _runs_in_order(results):
    runs = results["runs"]
    order = [name for name in results.get("run_order") or () if name in runs]
    return [(name, runs[name]) for name in order + [n for n in runs if n not in order]]


def network_text(network: Mapping[str, Any]) -> str:
    """A training config's network in words: architecture, latent size, likelihood and any widths / decoder options,
    e.g. "conv, latent 64, Gaussian likelihood (observation variance 0.5), width_multiplier=4"."""
    likelihood = network.get("likelihood", "gaussian")
    if likelihood != "gaussian":
        words = f"{likelihood} likelihood"
    elif network.get("learn_variance"):
        words = "Gaussian likelihood (learned variance)"
    else:
        words = f"Gaussian likelihood (observation variance {network.get('observation_variance'):g})"
    options = [f"{key}={value}" for key, value in sorted((network.get("kwargs") or {}).items())]
    return ", ".join([network["architecture"], f"latent {network['latent_dim']}", words, *options])


def _networks_line(results) -> list[str]:
    """The header line naming each run's network: once when every run shares it, else each with its runs."""
    runs = {}
    for name, entry in _runs_in_order(results):
        if entry.get("network"):  # (results written before runs recorded their network have none)
            runs.setdefault(network_text(entry["network"]), []).append(name)
    if not runs:
        return []
    if len(runs) == 1 and sum(map(len, runs.values())) == len(results["runs"]):
        return ["", f"**Network (every run):** {next(iter(runs))}."]
    return ["", "**Networks:** " + "; ".join(f"{text} ({', '.join(names)})" for text, names in runs.items()) + "."]


def _section_table(results) -> list[str]:
    """Paper Table 1 layout: digit and colour accuracy per radius, MSE, FID, time (ours (paper))."""
    radii = results["evaluation"]["radii"]
    tasks = results["report"]["tasks"]
    ratios = time_ratios(results)
    has_paper = bool(results["paper"])
    header = ["model"] + [f"{task} {r:g}" for task in tasks for r in radii] + ["MSE", "FID", "time", "train s",
                                                                               "steps", "seed"]
    reference = results["report"].get("time_reference")
    time_caption = (f"time = training wall time (history.json seconds minus the during-training robustness "
                    f"evaluations) / that of run `{reference}`, measured here on a shared CPU" if reference else
                    "time: not compared (the experiment names no reference run)")
    lines = [f"Adversarial accuracy (%) under L-inf PGD at radius eps; cells are "
             f"{'ours (paper)' if has_paper else 'ours'}. {time_caption}; train s = history.json seconds.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, entry in _runs_in_order(results):
        paper = results["paper"].get(entry.get("paper") or "", None) if has_paper else None
        label = entry["label"] + (" *(control)*" if entry["role"] == "control" else "")
        cells = [label]
        for task in tasks:
            for radius in radii:
                key = adv_key(task, radius)
                cells.append(_cell(_metric(entry, key), (paper or {}).get(key) if has_paper else None))
        ratio = ratios.get(name)
        cells += [_fmt(_metric(entry, "mse"), 4), _fmt(_metric(entry, "fid"), 2),
                  _cell(None if ratio is None else f"x{ratio:.2f}", (paper or {}).get("time") if has_paper else None),
                  _fmt((entry.get("train") or {}).get("seconds"), 0),
                  str((entry.get("train") or {}).get("steps", "—")), str(entry["seed"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _two_se(p, q, n) -> float:
    """Two standard errors (percentage points) of the difference of two accuracies (%) on n examples each."""
    if not n:
        return float("inf")
    a, b = p / 100.0, q / 100.0
    return 200.0 * math.sqrt(max(a * (1 - a), 0.0) / n + max(b * (1 - b), 0.0) / n)


def compare_runs(results, run: str, against: str, radii=None) -> dict[str, Any]:
    """Per (task, radius): ours[run] - ours[against] and whether it exceeds two standard errors.

    `radii`: the radii compared (default: every non-zero radius evaluated, i.e. the adversarial cells;
    (0,) compares the clean linear-probe accuracy)."""
    runs = results["runs"]
    a, b = runs.get(run), runs.get(against)
    cells, verdicts = {}, []
    chosen = [r for r in results["evaluation"]["radii"] if r != 0] if radii is None else [float(r) for r in radii]
    for task in results["report"]["tasks"]:
        for radius in chosen:
            key = adv_key(task, radius)
            x, y = (_metric(a or {}, key), _metric(b or {}, key))
            if x is None or y is None:
                continue
            n = min(_metric(a, "data/num_test") or 0, _metric(b, "data/num_test") or 0)
            margin = _two_se(x, y, n)
            sign = "higher" if x - y > margin else "lower" if y - x > margin else "same"
            cells[key] = {"run": x, "against": y, "difference": x - y, "two_se": margin, "verdict": sign}
            verdicts.append(sign)
    if not verdicts:
        overall = "not measured yet"
    elif all(v == "higher" for v in verdicts):
        overall = "yes: higher in every compared cell"
    elif all(v in ("lower", "same") for v in verdicts):
        overall = "no: not higher in any compared cell" + (" (lower in some)" if "lower" in verdicts else "")
    else:
        overall = f"mixed: higher in {verdicts.count('higher')} of {len(verdicts)} compared cells"
    return {"cells": cells, "overall": overall}


def _section_comparisons(results) -> list[str]:
    lines = []
    for item in results["report"]["comparisons"]:
        runs = results["runs"]
        run, against = item["run"], item["against"]
        if run not in runs or against not in runs:
            continue
        outcome = compare_runs(results, run, against, item.get("radii"))
        lines += [f"**{item['question']}** {runs[run]['label']} vs {runs[against]['label']}: "
                  f"**{outcome['overall']}** (a difference counts when it exceeds two standard errors).", ""]
        if outcome["cells"]:
            lines += ["| cell | " + runs[run]["label"] + " | " + runs[against]["label"] + " | difference | 2 SE |",
                      "|---|---|---|---|---|"]
            for key, cell in outcome["cells"].items():
                lines.append(f"| {key} | {cell['run']:.1f} | {cell['against']:.1f} | {cell['difference']:+.1f} | "
                             f"{cell['two_se']:.1f} |")
            lines.append("")
    return lines


def _section_radii(results) -> list[str]:
    """Rows = radius, columns = run x task (paper Figure 5, right, as a table)."""
    tasks, runs = results["report"]["tasks"], _runs_in_order(results)
    header = ["eps"] + [f"{entry['label']}: {task}" for _, entry in runs for task in tasks]
    lines = ["Adversarial accuracy (%) against the L-inf radius.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for radius in results["evaluation"]["radii"]:
        cells = [f"{radius:g}"] + [_fmt(_metric(entry, adv_key(task, radius))) for _, entry in runs for task in tasks]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _section_sweep(results) -> list[str]:
    """Rows = the swept value (e.g. rho), columns = task x radius."""
    tasks, radii = results["report"]["tasks"], results["evaluation"]["radii"]
    label = results["report"].get("sweep_label") or results["report"].get("sweep_key")
    header = [label] + [f"{task} {r:g}" for task in tasks for r in radii] + ["MSE", "train s", "seed"]
    lines = [f"Accuracy (%) against {label}: clean linear probe at eps 0, adversarial (L-inf PGD) otherwise.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows = [(entry, index) for index, name in enumerate(SWEEP_SERIES) for _, entry in _series_runs(results, name)]
    for entry, _ in sorted(rows, key=lambda item: (_sort_key(item[0].get("sweep_value")), item[1])):
        cells = [f"{entry['label']}"] + [_fmt(_metric(entry, adv_key(t, r))) for t in tasks for r in radii]
        cells += [_fmt(_metric(entry, "mse"), 4), _fmt((entry.get("train") or {}).get("seconds"), 0), str(entry["seed"])]
        lines.append("| " + " | ".join(cells) + " |")
    captions = {series.trends_field: f"Trend (Spearman rank correlation of accuracy with {label}; +1 = rises "
                                     "monotonically): " if name == "main" else
                f"Trend of the {_series_label(results['report'], name)} runs: "
                for name, series in SWEEP_SERIES.items()}
    keys = [_trend_key(task, radius) for task in tasks for radius in radii]  # JSON sorts the stored keys
    for field, caption in captions.items():  # computed once, by collect_results
        trends = results.get(field) or {}
        if trends:
            lines += ["", caption + ", ".join(f"{key} {trends[key]:+.2f}" for key in keys if key in trends) + "."]
    return lines


def _trend_key(task: str, radius: float) -> str:
    return f"{task} eps={radius:g}"


def sweep_trends(results, series: str = "main") -> dict[str, float]:
    """{"<task> eps=<r>": Spearman correlation between the swept value and the accuracy} over the runs of one
    series ("main": the sweep runs, "control": `sweep_control_runs`, "extra": `sweep_extra_runs`) that have both
    (NaN-free; needs >= 3 runs and some spread)."""
    runs = _series_runs(results, series)
    points = [(e.get("sweep_value"), e) for _, e in runs
              if isinstance(e.get("sweep_value"), (int, float)) and e.get("metrics")]
    trends = {}
    for task in results["report"]["tasks"]:
        for radius in results["evaluation"]["radii"]:
            pairs = [(x, _metric(e, adv_key(task, radius))) for x, e in points]
            pairs = [(x, y) for x, y in pairs if y is not None]
            if len(pairs) < 3:
                continue
            xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
            if len(set(xs)) < 2 or len(set(ys)) < 2:  # no spread: no rank correlation
                continue
            trends[_trend_key(task, radius)] = float(stats.spearmanr(xs, ys).statistic)
    return trends


def _series_runs(results, series: str):
    """[(name, entry)] of one sweep series (a key of SWEEP_SERIES), in run order."""
    report = results["report"]
    listed = {name: set(report.get(spec.runs_key) or ()) for name, spec in SWEEP_SERIES.items()}
    if series == "main" and not listed["main"]:  # every run that belongs to no other series
        others = set().union(*(runs for name, runs in listed.items() if name != "main"))
        return [(n, e) for n, e in _runs_in_order(results) if n not in others]
    return [(n, e) for n, e in _runs_in_order(results) if n in listed[series]]


def _series_label(report, series: str) -> str:
    """The series' name in captions and legends ("" for an unnamed main series; older reports lack the key)."""
    return report.get(SWEEP_SERIES[series].label_key) or ("" if series == "main" else series)


def _sort_key(value):
    return (0, float(value)) if isinstance(value, (int, float)) else (1, 0.0)


def _section_probe(results) -> list[str]:
    """Linear-probe accuracy per run (AAVAE vs VAE vs AE; beta sweep)."""
    tasks = results["report"]["tasks"]
    ratios = time_ratios(results)
    paper_rows = results["paper"]
    header = ["model"] + [f"probe {t} (%)" for t in tasks] + ["MSE", "FID", "time", "train s", "steps", "seed"]
    lines = ["Clean linear-probe test accuracy on the frozen encoder's feature "
             f"({results['evaluation'].get('feature')}: backbone for ResNets, posterior mean otherwise).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, entry in _runs_in_order(results):
        paper = paper_rows.get(entry.get("paper") or "")
        cells = [entry["label"]] + [_cell(_metric(entry, f"probe/{t}"), (paper or {}).get(f"probe/{t}") if paper
                                          else None) for t in tasks]
        ratio = ratios.get(name)
        cells += [_fmt(_metric(entry, "mse"), 4), _fmt(_metric(entry, "fid"), 2),
                  "—" if ratio is None else f"x{ratio:.2f}", _fmt((entry.get("train") or {}).get("seconds"), 0),
                  str((entry.get("train") or {}).get("steps", "—")), str(entry["seed"])]
        lines.append("| " + " | ".join(cells) + " |")
    if paper_rows:
        lines += ["", "In parentheses: " + "; ".join(f"{row} {values}" for row, values in paper_rows.items())
                  + f" ({results.get('paper_budget')})."]
    return lines


def _section_curve(results) -> list[str]:
    keys = results["report"]["curve_keys"]
    lines = []
    for name in results["report"]["curve_runs"]:
        entry = results["runs"].get(name)
        if not entry or not entry.get("curve"):
            continue
        points = ", ".join(f"{step}: " + "/".join(_fmt(m.get(k)) for k in keys) for step, m in entry["curve"])
        lines.append(f"- {entry['label']} ({'/'.join(keys)} by step): {points}")
    if lines:
        lines = ["Accuracy (%) during training: a quick probe refitted on a train subset and PGD on a test subset "
                 "(each run's robustness_curve.json; `curve` settings of the experiment).", ""] + lines
    return lines


SECTIONS: dict[str, tuple[str, Callable[[Mapping[str, Any]], list[str]]]] = {
    "table": ("Results", _section_table),
    "comparisons": ("Controls", _section_comparisons),
    "radii": ("Accuracy against the radius", _section_radii),
    "sweep": ("Sweep", _section_sweep),
    "probe": ("Linear probe", _section_probe),
    "curve": ("During training", _section_curve),
}


def results_markdown(results: Mapping[str, Any]) -> str:
    """results.md from a results dict (results.json): pure, no file or TensorFlow access."""
    budget = results["budget"]
    settings = results["evaluation"]
    lines = [f"# {results['title']}", "",
             f"Experiment `{results['experiment']}`, written {results.get('written', '')}, workdir "
             f"`{results.get('workdir', '')}`.", "",
             f"**Budget (every run):** {budget['num_steps']} steps of batch {budget['batch_size']}, Adam lr "
             f"{budget['learning_rate']}, {budget['steps_per_epoch']} steps per epoch, seed {budget['seed']}."
             + (f" Paper: {results['paper_budget']}." if results.get("paper_budget") else ""), "",
             f"**Evaluation:** linear probe on the frozen encoder (feature `{settings.get('feature')}`, probe train "
             f"limit {settings.get('probe_train_limit')}), L-inf PGD with {settings.get('pgd_steps')} steps at radii "
             f"{', '.join(f'{r:g}' for r in settings['radii'])} on {settings.get('limit') or 'all'} test examples, "
             f"seed {settings.get('seed')}. FID is a classifier FID (features of a small in-project classifier, not "
             f"Inception)."]
    lines += _networks_line(results)
    for claim in results["report"].get("claims", ()):
        lines += ["", f"- Claim: {claim}"]
    for section in results["report"]["sections"]:
        title, build = SECTIONS[section]
        body = build(results)
        if body:
            lines += ["", f"## {title}", "", *body]
    lines += ["", "## Runs", "",
              "| run | model | status | steps | train s | curve s | step ms | eval s | seed | budget | note |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, entry in _runs_in_order(results):
        train = entry.get("train") or {}
        model = ", ".join(f"{k}={v}" for k, v in sorted(entry["model"].items()) if k != "vae_workdir")
        budget = ", ".join(f"{k}={entry['budget'][k]}" for k in (*BUDGET_KEYS, "seed") if k in entry["budget"])
        lines.append(f"| {name} | {model} | {entry['status']} | {train.get('steps', '—')} | "
                     f"{_fmt(train.get('seconds'), 0)} | {_fmt(train.get('curve_seconds'), 0)} | "
                     f"{_fmt(train.get('median_step_ms'), 0)} | {_fmt(entry.get('eval_seconds'), 0)} | {entry['seed']} | "
                     f"{budget} | {entry.get('note', '')} |")
    if results.get(MERGED_FROM):
        lines += ["", f"Merged from {', '.join(f'`{source}`' for source in results[MERGED_FROM])}; each run's "
                  "sub-workdir is its `workdir` in results.json."]
    else:
        lines += ["", f"Sub-workdirs: `{results.get('workdir', '')}/<run>/` (config.json, history.json, model.keras, "
                  "eval.json, robustness_curve.json, step_times.json)."]
    if results.get("plots"):
        order = [name for name in results["report"]["plots"] if name in results["plots"]]  # JSON sorts keys
        lines += ["", "## Plots", ""] + [f"![{name}]({results['plots'][name]})" for name in order]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- plots
def _colour(number: int, count: int):
    """Colour of series `number` of `count` on one plot: Matplotlib's default cycle up to its 10 colours, tab20's
    20 beyond that, so that up to 20 series never share a colour (the default cycle repeats from the 11th)."""
    if count <= 10:
        return f"C{number}"
    from matplotlib import colormaps

    return colormaps["tab20"](number % 20)


def _figure():
    from matplotlib.figure import Figure

    return Figure(figsize=(10, 4))


def _save(figure, path) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    return str(path)


def plot_runs_vs_radius(results, directory) -> str | None:
    """Robust accuracy against the radius, one panel per task, one line per run (all runs on one figure)."""
    tasks, radii = results["report"]["tasks"], results["evaluation"]["radii"]
    runs = [(n, e) for n, e in _runs_in_order(results) if e.get("metrics")]
    if not runs:
        return None
    figure = _figure()
    legend = {}
    for index, task in enumerate(tasks):
        axes = figure.add_subplot(1, len(tasks), index + 1)
        for number, (name, entry) in enumerate(runs):
            values = [_metric(entry, adv_key(task, r)) for r in radii]
            points = [(r, v) for r, v in zip(radii, values) if v is not None]
            if points:
                xs, ys = zip(*points)
                (line,) = axes.plot(xs, ys, "--" if entry["role"] == "control" else "-", marker="o",
                                    color=_colour(number, len(runs)), label=entry["label"])
                legend.setdefault(entry["label"], line)
        axes.set(xlabel="L-inf radius eps", ylabel="adversarial accuracy (%)", ylim=(-2, 102), title=task)
        axes.grid(alpha=0.3)
    # One legend below the panels, where it hides no line.
    figure.legend(list(legend.values()), list(legend), loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3,
                  fontsize=7)
    return _save(figure, pathlib.Path(directory) / "robustness.png")


def plot_training_curves(results, directory) -> str | None:
    """Adversarial accuracy against training steps for the curve runs (paper Figure 5, middle)."""
    from tf_avae.evaluation import plots

    records = []
    for name in results["report"]["curve_runs"]:
        entry = results["runs"].get(name) or {}
        for step, metrics in entry.get("curve") or []:
            records.append((int(step), {f"{entry['label']}: {k}": metrics[k]
                                        for k in results["report"]["curve_keys"] if k in metrics}))
    if not any(metrics for _, metrics in records):
        return None
    return plots.plot_training_curves(sorted(records, key=lambda r: r[0]),
                                      pathlib.Path(directory) / "training_curves.png",
                                      title="adversarial accuracy during training")


def plot_sweep(results, directory) -> str | None:
    """Adversarial accuracy against the swept value (rho: paper Figure 5, left), one line per task x radius; with
    `sweep_control_runs` (dashed) and/or `sweep_extra_runs` (dash-dotted), one panel per task and one legend."""
    report = results["report"]
    tasks, radii = report["tasks"], results["evaluation"]["radii"]
    # (label suffix, points, SweepSeries) per series that has points; the main series first
    series = []
    for name, spec in SWEEP_SERIES.items():
        points, label_text = _sweep_points(_series_runs(results, name)), _series_label(report, name)
        if points or name == "main":
            series.append((f" ({label_text})" if label_text else "", points, spec))
    if not series[0][1]:
        return None
    values = sorted({x for _, points, _ in series for x, _ in points})  # every swept value drawn
    several = len(series) > 1  # one panel per task
    figure = _figure()
    panels = [(tasks, figure.add_subplot())] if not several else [
        ((task,), figure.add_subplot(1, len(tasks), number + 1)) for number, task in enumerate(tasks)]
    label = report.get("sweep_label") or report.get("sweep_key")
    kind = "adversarial" if any(radii) else "linear-probe"
    for panel_tasks, axes in panels:
        lines = len(panel_tasks) * len(radii)
        for number, (task, radius) in enumerate((t, r) for t in panel_tasks for r in radii):
            for suffix, runs, spec in series:
                ys = [_metric(e, adv_key(task, radius)) for _, e in runs]
                axes.plot([x for x, _ in runs], [np.nan if y is None else y for y in ys],
                          spec.style if radius else spec.clean_style, marker=spec.marker, color=_colour(number, lines),
                          label=f"eps={radius:g}{suffix}" if several else f"{task}, eps={radius:g}{suffix}")
        title = panel_tasks[0] if several else f"{kind} accuracy against {label}"
        axes.set(xlabel=label, ylabel="accuracy (%)", ylim=(-2, 102), title=title)
        if report.get("sweep_log"):
            if values[0] > 0:
                axes.set_xscale("log")
            else:  # a swept 0 (beta): linear around it
                axes.set_xscale("symlog", linthresh=0.01)
                if values[0] == 0:
                    axes.set_xlim(left=0.0)  # no empty negative half of the symlog axis
            # ticks at the swept values, as written in the table; no "3 x 10^1" minor labels running into them
            axes.set_xticks(values, [f"{value:g}" for value in values])
            axes.set_xticks([], minor=True)
        axes.grid(alpha=0.3)
        if not several:
            axes.legend(fontsize=7)
    if several:  # the panels share colours and styles: one legend, below them, where it hides no line
        figure.legend(*panels[0][1].get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.0),
                      ncol=len(radii), fontsize=8)
        figure.suptitle(f"{kind} accuracy against {label}", y=1.02)
    return _save(figure, pathlib.Path(directory) / "sweep.png")


def _sweep_points(runs):
    """[(swept value, entry)] of the evaluated runs, sorted by the value."""
    return sorted(((e.get("sweep_value"), e) for _, e in runs
                   if e.get("metrics") and isinstance(e.get("sweep_value"), (int, float))), key=lambda p: p[0])


def plot_probe(results, directory) -> str | None:
    """Linear-probe accuracy per run, one group of bars per task."""
    tasks = results["report"]["tasks"]
    runs = [(n, e) for n, e in _runs_in_order(results) if e.get("metrics")]
    if not runs:
        return None
    figure = _figure()
    axes = figure.add_subplot()
    width = 0.8 / len(runs)
    for number, (name, entry) in enumerate(runs):
        values = [_metric(entry, f"probe/{t}") or 0.0 for t in tasks]
        axes.bar(np.arange(len(tasks)) + number * width, values, width, color=_colour(number, len(runs)),
                 label=entry["label"])
    axes.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks)
    axes.set(ylabel="linear-probe accuracy (%)", ylim=(0, 102), title="linear probe on the frozen encoder")
    axes.legend(fontsize=7)
    return _save(figure, pathlib.Path(directory) / "probe.png")


PLOTS: dict[str, Callable[[Mapping[str, Any], Any], str | None]] = {
    "robustness": plot_runs_vs_radius,
    "training_curves": plot_training_curves,
    "sweep": plot_sweep,
    "probe": plot_probe,
}


__all__ = [
    "EXPERIMENTS", "PAPER_TABLE1", "PLOTS", "SECTIONS", "aavae_vs_vae_experiment", "add_run", "build_run_configs", "collect_results",
    "compare_runs", "evaluation_is_current", "run_dependencies", "sweep_trends", "evaluation_settings", "experiment_config", "results_markdown",
    "CONV_WIDTHS", "run", "smoke_experiment", "table1_report", "time_ratios", "training_state", "with_observation_noise", "write_report",
]

if __name__ == "__main__":  # pragma: no cover
    sys.exit("use scripts/reproduce.py --config configs/reproduce_color_mnist.py --workdir DIR")
