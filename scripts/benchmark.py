r"""Speed and memory of tf_avae on this machine: step times and ratios, `model.fit` throughput, PGD
evaluation, input pipelines, peak memory. Writes `<output_dir>/results.json` and `results.md` (also printed).

    python scripts/benchmark.py                                  # the full run, ~15 min on 2 busy cores
    python scripts/benchmark.py --quick --output_dir /tmp/bench  # a tiny run (the smoke test), ~2 min
    python scripts/benchmark.py --sections=fit,pipeline          # only some sections

Sections (every number carries its repeats, quartiles, the CPU time it used and the load average):

* ``step_time`` -- seconds per training step of VAE, AE, AAVAE, AVAE, SE(5 PGD steps), SE-AVAE on the MLP
  (4 x 200) and the ConvNet at colorMNIST shapes (28x28x3), and VAE vs AAVAE on the narrow ResNet-18 of
  `configs/aavae_cifar10.py` at CIFAR shapes (32x32x3), batch 64 (and 256 for the ResNet pair). Each
  step is Keras' own compiled train function (`model.train_function`, what `fit` runs) on one cached
  batch, `steps_per_execution` steps per call, so neither the input pipeline nor Python is timed. Both
  `jit_compile=False` ("graph") and `jit_compile=True` ("xla"; not for the ResNet, whose XLA compile is
  minutes on this CPU, nor for AAVAE with SimCLR augmentation, whose crop has no XLA kernel). Ratios
  divide by the VAE's step time on the same network, batch and mode. Profile rows explain the SE's cost
  (the attack alone, encoder passes) and the AAVAE's (the augmentation layer alone).
* ``fit`` -- end-to-end `model.fit` throughput of the MLP VAE and AVAE at batch 64 with the real
  `tf.data` pipeline (`train_lib.build_datasets`, i.e. `data.build_dataset("color_mnist", ...)`), for the
  settings a user sets in a config (`train.jit_compile`, `train.steps_per_execution`), against the JAX/Haiku
  reference of the AVAE authors (8,868 img/s VAE, 7,142 img/s AVAE on this machine kind). Each repeat is
  one `fit` call; its first execution (iterator start, shuffle-buffer fill) is excluded by a callback.
  A "cached batch" row runs the same compiled loop without the pipeline, which splits a fit step into
  graph time, input pipeline and Python overhead. With `--reference_python` and `--reference_dir` the
  section also runs `scripts/jax_reference.py` (the reference itself, in its own environment) before and
  after the fits, and divides by that too: a like-for-like ratio on this machine.
* ``pgd`` -- images/s of the evaluation suite's attack: `adversarial.make_adversarial_correctness_fn` on
  `probe.make_logits_fn(model, LinearProbe)` (encoder mean -> linear probe), L-inf eps 0.1, 40 steps,
  batch 512, traced with a `None` batch dimension exactly as `RobustnessEvaluator` does.
* ``pipeline`` -- `data.build_dataset("color_mnist", "train", 64)` consumed inside a graph loop (as `fit`
  with `steps_per_execution` consumes it), with and without a SimCLR augmentation `map`; the AAVAE's in-step
  augmentation layer alone on cached batches; and how much faster each is than its consumer.
* ``memory`` -- peak resident memory of a colorMNIST ConvNet AVAE training run (`scripts/train.py --config
  configs/avae_color_mnist.py`, 500 steps) in a subprocess: its VmHWM (and its own `ru_maxrss`) at exit, so
  it is that run's peak alone (run first, while this process is small); and this process's `ru_maxrss`.

Timing method: all variants of one table are built first, traced and warmed up (excluded), then take turns
for `--repeats` rounds (the order rotates every round) and each row is the median over rounds. Other
engineers train on the same 2 cores: the load average and CPU pressure (/proc/pressure/cpu) are recorded
before and after every section and with every row, and `cpu_ms_per_step` (process CPU time) is a figure
that moves less with the load than the wall time does.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import math
import os
import pathlib
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, NamedTuple

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
SECTIONS = ("step_time", "fit", "pgd", "pipeline", "memory")

FLAGS = flags.FLAGS
flags.DEFINE_boolean("quick", False, "A tiny run (few steps and repeats, tiny ResNet, graph mode only): checks "
                     "that everything runs, its numbers mean little.")
flags.DEFINE_string("output_dir", str(ROOT / "benchmarks"), "Where results.json and results.md go.")
flags.DEFINE_list("sections", list(SECTIONS), f"Sections to run, any of {','.join(SECTIONS)}.")
flags.DEFINE_integer("repeats", None, "Timed rounds per table (default 7; 2 with --quick).")
flags.DEFINE_integer("fit_repeats", None, "Timed fit calls per setting (default 5; 2 with --quick).")
flags.DEFINE_integer("seed", 0, "Seed of weights, data order and random batches.")
flags.DEFINE_integer("memory_steps", 500, "Training steps of the memory subprocess (full run).")
flags.DEFINE_string("reference_python", None, "A Python environment with JAX and Haiku (see scripts/jax_reference.py): "
                    "the fit section then also times the AVAE authors' reference on this machine, before and after "
                    "its own fits, and compares with that as well as with the issue's figures.")
flags.DEFINE_string("reference_dir", None, "With --reference_python: the directory holding the reference's `avae` "
                    "package (a checkout of google-deepmind/deepmind-research).")

# The JAX/Haiku reference of the AVAE authors on this machine kind: MLP 4 x 200, colorMNIST, batch 64.
REFERENCE_IMAGES_PER_S = {"VAE": 8868.0, "AVAE": 7142.0}
TARGETS = {
    "fit_vs_reference": 1.0, "fit_vs_reference_goal": 1.2, "avae_over_vae": 1.3, "se5_over_vae": 3.5,
    "aavae_over_vae_resnet": 1.3, "pipeline_over_consumer": 5.0, "conv_training_peak_gb": 3.0,
}
PAPER_RATIOS = {"AVAE": 1.5, "SE(5)": 4.0, "SE-AVAE(5)": 4.7}
# "AVAE(mean)" is the AVAE with the reference code's x~ (the decoder mean, no noise draw): the workload of the JAX
# reference's AVAE figure (its AVAE / VAE: 8,868 / 7,142 img/s = 1.24), and what the AVAE costs without drawing its
# [B, H, W, C] delusion noise. Shown in the step tables; not a target.
MODEL_NAMES = ("VAE", "AE", "AAVAE", "AVAE", "AVAE(mean)", "SE(5)", "SE-AVAE(5)")
COLOR_MNIST_SHAPE = (28, 28, 3)
CIFAR_SHAPE = (32, 32, 3)


# --------------------------------------------------------------------------- environment
def load_average() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def cpu_pressure() -> dict[str, float] | None:
    """The 'some' line of /proc/pressure/cpu: % of time a runnable task waited for a CPU."""
    try:
        line = pathlib.Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    fields = dict(part.split("=") for part in line.split()[1:])
    return {key: float(fields[key]) for key in ("avg10", "avg60", "avg300") if key in fields}


def max_rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux reports KiB


def _cpu_model() -> str | None:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _git(*args) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict[str, Any]:
    import keras
    import numpy as np
    import tensorflow as tf

    import tf_avae

    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory_gb = None
    return {
        "python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
        "numpy": np.__version__, "tf_avae": getattr(tf_avae, "__version__", None),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "platform": platform.platform(), "cpu_model": _cpu_model(), "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": None if memory_gb is None else round(memory_gb, 1),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "env": {key: os.environ.get(key) for key in ("XLA_FLAGS", "TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS",
                                                     "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")},
        "quick": bool(FLAGS.quick),
    }


# --------------------------------------------------------------------------- timing
class Timed(NamedTuple):
    """What a runner returns when it times itself (the fit runner, which excludes its first execution)."""

    seconds: float
    cpu_seconds: float
    steps: int


class Runner:
    """One row of a table: `fn()` runs `steps` steps and waits for them.

    `fn` may return a `Timed` measured inside; otherwise the call is timed from outside.
    """

    def __init__(self, name: str, fn: Callable[[], Any], steps: int, images_per_step: int, **meta):
        self.name, self.fn, self.steps, self.images_per_step, self.meta = name, fn, steps, images_per_step, meta


def _quartiles(values):
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def measure(runners: list[Runner], repeats: int, warmup_calls: int = 1) -> list[dict[str, Any]]:
    """Traces and warms up every runner (not timed), then times them interleaved; one dict per runner."""
    live, rows = [], {}
    for runner in runners:
        try:
            start = time.perf_counter()
            runner.fn()  # tracing / XLA compile
            first = time.perf_counter() - start
            for _ in range(warmup_calls):
                runner.fn()
            live.append(runner)
            rows[runner.name] = {"first_call_s": round(first, 3)}
        except Exception as error:  # one broken variant must not sink the whole benchmark
            rows[runner.name] = {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"}
    samples = {r.name: [] for r in live}
    cpu = {r.name: [] for r in live}
    loads = {r.name: [] for r in live}
    for repeat in range(repeats):
        shift = repeat % max(len(live), 1)
        for runner in live[shift:] + live[:shift]:
            cpu_start, start = time.process_time(), time.perf_counter()
            inner = runner.fn()
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
            steps = runner.steps
            if isinstance(inner, Timed):
                seconds, cpu_seconds, steps = inner
            samples[runner.name].append(seconds / steps)
            cpu[runner.name].append(cpu_seconds / steps)
            loads[runner.name].append(os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
    out = []
    for runner in runners:
        row = {"name": runner.name, **runner.meta, **rows[runner.name]}
        values = samples.get(runner.name)
        if values:
            median = statistics.median(values)
            q1, q3 = _quartiles(values)
            row.update({
                "median_ms": 1e3 * median, "q1_ms": 1e3 * q1, "q3_ms": 1e3 * q3, "min_ms": 1e3 * min(values),
                "images_per_s": runner.images_per_step / median,
                "best_images_per_s": runner.images_per_step / min(values),
                "cpu_ms_per_step": 1e3 * statistics.median(cpu[runner.name]),
                "load_1m": statistics.median(loads[runner.name]),
                "repeats": len(values), "steps_per_repeat": runner.steps, "images_per_step": runner.images_per_step,
                "samples_ms": [round(1e3 * v, 3) for v in values],
            })
        out.append(row)
    return out


# --------------------------------------------------------------------------- models
def _build(name: str, architecture: str, image_shape, *, latent_dim: int, network_kwargs=None, preset="color_mnist",
           observation_variance=0.5, seed=0):
    import keras

    from tf_avae import augment, models
    from tf_avae.networks import build_networks

    keras.utils.set_random_seed(seed)  # the same initial weights for every model of a table
    encoder, decoder = build_networks(architecture, image_shape, latent_dim, observation_variance=observation_variance,
                                      **(network_kwargs or {}))
    attack = dict(epsilon=0.1, pgd_steps=5)
    if name == "VAE":
        return models.VAE(encoder, decoder, beta=1.0, seed=seed)
    if name == "AE":
        return models.AE(encoder, decoder, seed=seed)
    if name == "AAVAE":
        augmentation = augment.simclr_augment(preset, seed=seed)
        return models.AAVAE(encoder, decoder, augmentation=augmentation, beta=0.0, seed=seed)
    if name in ("AVAE", "AVAE(mean)"):
        delusion = "mean" if name == "AVAE(mean)" else "sample"
        return models.AVAE(encoder, decoder, rho=0.975, beta=1.0, delusion=delusion, seed=seed)
    if name == "SE(5)":
        return models.SmoothEncoder(encoder, decoder, rho=0.95, seed=seed, **attack)
    if name == "SE-AVAE(5)":
        return models.SEAVAE(encoder, decoder, rho=0.975, se_rho=0.95, seed=seed, **attack)
    raise ValueError(name)


def _supports_xla(model) -> bool:
    augmentation = getattr(model, "augmentation", None)
    return augmentation is None or getattr(augmentation, "supports_jit", True)


def _cached_step_runner(model, batch, steps_per_call: int):
    """Keras' compiled train function on a cached batch: `steps_per_call` steps per call, nothing else."""
    import tensorflow as tf

    model.make_train_function()
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())

    def run():
        logs = model.train_function(iterator)
        float(logs["loss"])  # waits for the result

    return run


def _random_images(shape, batch, seed):
    import numpy as np
    import tensorflow as tf

    return tf.constant(np.random.default_rng(seed).random((batch, *shape)).astype(np.float32))


def step_time_groups(quick: bool):
    """Tables: (key, architecture, image shape, batch, latent, network kwargs, augmentation preset,
    observation variance, models, modes, steps per call)."""
    modes = ("graph",) if quick else ("graph", "xla")
    resnet = {"width": 16, "head_units": 512}  # configs/aavae_cifar10.py
    if quick:
        resnet = {"width": 4, "blocks_per_stage": (1, 1, 1, 1), "head_units": 16}
    batch = 8 if quick else 64
    groups = [
        (f"mlp/b{batch}", "mlp", COLOR_MNIST_SHAPE, batch, 64, {}, "color_mnist", 0.5, MODEL_NAMES, modes,
         1 if quick else 20),
        (f"conv/b{batch}", "conv", COLOR_MNIST_SHAPE, batch, 64, {}, "color_mnist", 0.5, MODEL_NAMES, modes,
         1 if quick else 5),
        (f"resnet18-narrow/b{batch}", "resnet", CIFAR_SHAPE, batch, 128, resnet, "cifar10", 1.0,
         ("VAE", "AAVAE"), ("graph",), 1 if quick else 2),
    ]
    if not quick:
        groups.append(("resnet18-narrow/b256", "resnet", CIFAR_SHAPE, 256, 128, resnet, "cifar10", 1.0,
                       ("VAE", "AAVAE"), ("graph",), 1))
    return groups


def _profile_runners(group, models_by_key, batch, images_per_step):
    """Rows that explain the costs: SE's attack and encoder passes (conv), the augmentation layer (resnet)."""
    import tensorflow as tf

    rows = []
    se = models_by_key.get(("SE(5)", "graph"))
    if se is not None and group.startswith("conv"):
        step = tf.constant(0, tf.int64)
        encoder = se.encoder

        @tf.function
        def attack(x):
            return se.adversarial_images(x, step)

        @tf.function
        def encoder_forward(x):
            return encoder(x, training=True)

        @tf.function
        def encoder_forward_backward(x):
            with tf.GradientTape() as tape:
                mean, log_variance = encoder(x, training=True)
                loss = tf.reduce_sum(mean) + tf.reduce_sum(log_variance)
            return tape.gradient(loss, encoder.trainable_variables)

        def run(fn):
            return lambda: tf.nest.map_structure(lambda t: t.numpy(), fn(batch))

        rows += [
            Runner("profile: SE attack alone (5 PGD steps)", run(attack), 1, images_per_step, kind="profile",
                   mode="graph"),
            Runner("profile: encoder forward", run(encoder_forward), 1, images_per_step, kind="profile", mode="graph"),
            Runner("profile: encoder forward+backward", run(encoder_forward_backward), 1, images_per_step,
                   kind="profile", mode="graph"),
        ]
    aavae = models_by_key.get(("AAVAE", "graph"))
    if aavae is not None:
        layer = aavae.augmentation
        augment_fn = tf.function(lambda x: layer(x, training=True))
        rows.append(Runner("profile: augmentation layer alone", lambda: augment_fn(batch).numpy(), 1, images_per_step,
                           kind="profile", mode="graph"))
    return rows


XLA_LOOP_MODELS = ("VAE", "AVAE", "AVAE(mean)")
XLA_LOOP = "(one XLA loop)"


def _xla_loop_runners(models_by_key, batch, images_per_step, steps_per_call: int):
    """The MLP's train_step `steps_per_call` times inside ONE XLA-compiled function on the cached batch: the step's
    own cost without Keras' per-step loop (fit with jit_compile=True and steps_per_execution runs a non-XLA
    while loop that launches the XLA-compiled step once per step). Not what fit does: what it leaves on the table,
    and what `scripts/jax_reference.py --update_step_repeats`'s lax.scan times for the reference."""
    import tensorflow as tf

    rows = []
    for name in XLA_LOOP_MODELS:
        model = models_by_key.get((name, "xla"), models_by_key.get((name, "graph")))
        if model is None:
            continue

        @tf.function(jit_compile=True)
        def loop(x, model=model):
            loss = tf.zeros([])
            for _ in tf.range(steps_per_call):  # train_step traced once, inside the loop
                loss = model.train_step(x)["loss"]
            return loss

        rows.append(Runner(f"{name} {XLA_LOOP}", lambda loop=loop: float(loop(batch)), steps_per_call,
                           images_per_step, kind=XLA_LOOP, mode="xla"))
    return rows


def run_step_time(quick: bool, repeats: int, seed: int) -> dict[str, Any]:
    import keras

    tables = []
    for spec in step_time_groups(quick):
        group, arch, shape, batch_size, latent, kwargs, preset, variance, names, modes, per_call = spec
        batch = _random_images(shape, batch_size, seed)
        runners, built, skipped = [], {}, []
        for mode in modes:
            for name in names:
                model = _build(name, arch, shape, latent_dim=latent, network_kwargs=kwargs, preset=preset,
                               observation_variance=variance, seed=seed)
                if mode == "xla" and not _supports_xla(model):
                    skipped.append({"name": name, "mode": mode, "why": "augmentation declares supports_jit=False "
                                    "(CropAndResize has no XLA kernel)"})
                    continue
                model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=mode == "xla",
                              steps_per_execution=per_call)
                built[(name, mode)] = model
                runners.append(Runner(name, _cached_step_runner(model, batch, per_call), per_call, batch_size,
                                      kind="model step", mode=mode))
        runners += _profile_runners(group, built, batch, batch_size)
        if arch == "mlp":
            runners += _xla_loop_runners(built, batch, batch_size, per_call)
        # Row names must be unique within measure(): suffix the mode.
        for runner in runners:
            runner.meta["model"] = runner.name
            runner.name = f"{runner.name} [{runner.meta['mode']}]"
        rows = measure(runners, repeats)
        for row in rows:
            vae = f"VAE {XLA_LOOP}" if row.get("kind") == XLA_LOOP else "VAE"  # the VAE of the row's kind
            baseline = next((r for r in rows if r.get("model") == vae and r.get("mode") == row.get("mode")
                             and "median_ms" in r), None)
            if baseline is not None and "median_ms" in row:
                row["ratio_to_vae"] = row["median_ms"] / baseline["median_ms"]
        tables.append({
            "group": group, "architecture": arch, "image_shape": list(shape), "batch_size": batch_size,
            "latent_dim": latent,
            "network_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
            "augmentation_preset": preset, "steps_per_call": per_call, "rows": rows, "skipped": skipped,
        })
        del built, runners
        gc.collect()
    return {
        "what": "seconds per training step: Keras' compiled train function (model.train_function, what fit runs) on "
                "one cached batch of uniform random images, steps_per_execution steps per call; median over "
                "interleaved repeats; ratio_to_vae divides by the VAE of the same network, batch and mode",
        "optimizer": "Adam(1e-4)", "models": {
            "VAE": "beta 1", "AE": "deterministic", "AAVAE": "beta 0, SimCLR augmentation (preset per dataset)",
            "AVAE": "rho 0.975, delusion=sample", "AVAE(mean)": "rho 0.975, delusion=mean (the reference code's x~)",
            "SE(5)": "L-inf eps 0.1, 5 PGD steps, rho 0.95",
            "SE-AVAE(5)": "rho 0.975, se_rho 0.95, eps 0.1, 5 PGD steps"},
        "tables": tables,
    }


# --------------------------------------------------------------------------- fit
class _FitTimer:
    """Times a fit call from the end of its first execution to the end of the epoch (async-safe)."""

    def __init__(self):
        import keras

        class Callback(keras.callbacks.Callback):
            async_safe = True  # keeps Keras' asynchronous dispatch (no per-batch sync)

            def on_train_begin(cb, logs=None):
                self.start = None

            def on_train_batch_end(cb, batch, logs=None):
                if self.start is None:
                    self.start, self.cpu_start, self.first_steps = time.perf_counter(), time.process_time(), batch + 1

            def on_epoch_end(cb, epoch, logs=None):
                self.end, self.cpu_end = time.perf_counter(), time.process_time()

        self.callback = Callback()


def _fit_config(model_spec: dict, jit: bool, steps_per_execution: int, seed: int):
    from tf_avae import train_lib

    config = train_lib.base_config()
    config.seed = seed
    config.data.name = "color_mnist"
    config.network.architecture = "mlp"  # 4 x 200 ReLU (MLPEncoder/MLPDecoder defaults), as the reference
    config.network.latent_dim = 64
    config.model = model_spec
    config.train.batch_size = 64
    config.train.learning_rate = 1e-4
    config.train.jit_compile = jit
    config.train.steps_per_execution = steps_per_execution
    return config


def _fit_settings(quick: bool):
    if quick:
        return [(False, 1), (True, 2)], 6
    return [(False, 1), (True, 1), (False, 100), (True, 10), (True, 100)], 300


REFERENCE_LABELS = {"vae": "VAE", "avae": "AVAE"}  # scripts/jax_reference.py's model names -> fit's labels


def time_reference(python: str, reference_dir: str, intervals: int) -> dict[str, Any]:
    """One run of scripts/jax_reference.py in its own interpreter: {label: row} or {"error": ...}."""
    from tf_avae.data import mnist

    with tempfile.TemporaryDirectory() as directory:
        output = os.path.join(directory, "reference.json")
        command = [python, str(ROOT / "scripts" / "jax_reference.py"), f"--reference_dir={reference_dir}",
                   f"--mnist_npz={mnist.mnist_cache_path()}", f"--intervals={intervals}", f"--output={output}"]
        print(f"[benchmark] timing the JAX reference: {' '.join(command)}", flush=True)
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""})
        if done.returncode != 0 or not os.path.exists(output):
            return {"error": f"exit {done.returncode}: {done.stderr.strip()[-2000:]}"}
        with open(output, encoding="utf-8") as handle:
            measured = json.load(handle)
    return {REFERENCE_LABELS[row["model"]]: {**row, "load_1m": measured["load_1m"], "jax": measured["jax"]}
            for row in measured["rows"]}


def pool_reference_runs(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Images/s of each model from the median of all its timed intervals over the runs (before and after)."""
    pooled = {}
    for label in REFERENCE_LABELS.values():
        rows = [run[label] for run in runs if label in run]
        if not rows:
            continue
        intervals = [seconds for row in rows for seconds in row["intervals_s"]]
        pooled[label] = {
            "images_per_s": rows[0]["batch_size"] * rows[0]["steps_per_interval"] / statistics.median(intervals),
            "intervals": len(intervals)}
    return pooled


def run_fit(quick: bool, repeats: int, seed: int, reference: tuple[str, str] | None = None) -> dict[str, Any]:
    import keras

    from tf_avae import train_lib

    reference_runs, reference_intervals = [], 1 if quick else 5
    if reference:  # before the fits, and again after them
        reference_runs.append(time_reference(*reference, reference_intervals))
    settings, steps = _fit_settings(quick)
    best_setting = settings[-1]
    specs = {
        "VAE": ({"name": "vae", "beta": 1.0}, settings),
        "AVAE": ({"name": "avae", "rho": 0.975, "beta": 1.0, "delusion": "sample"}, settings),
        # DeepMind's reference code uses the decoder mean as x~ (README, `delusion="mean"`): its exact workload.
        "AVAE (delusion=mean)": ({"name": "avae", "rho": 0.975, "beta": 1.0, "delusion": "mean"}, [best_setting]),
    }
    timer = _FitTimer()
    runners = []
    dataset = None
    for label, (spec, model_settings) in specs.items():
        for jit, per_execution in model_settings:
            config = _fit_config(dict(spec), jit, per_execution, seed)
            keras.utils.set_random_seed(seed)
            model = train_lib.build_model(config)
            # exactly the compile of train_lib._build_compiled_model (default strategy, float32)
            model.compile(optimizer=keras.optimizers.Adam(config.train.learning_rate),
                          jit_compile=bool(config.train.jit_compile),
                          steps_per_execution=config.train.steps_per_execution)
            if dataset is None:
                dataset, _ = train_lib.build_datasets(config)  # build_dataset("color_mnist", "train", 64, ...)

            def run(model=model):
                model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False,
                          callbacks=[timer.callback])
                timed = steps - timer.first_steps
                return Timed(timer.end - timer.start, timer.cpu_end - timer.cpu_start, timed)

            setting = {"train.jit_compile": jit, "train.steps_per_execution": per_execution}
            runners.append(Runner(f"{label} fit jit={jit} spe={per_execution}", run, steps, 64, model=label,
                                  kind="fit", setting=setting))
            if (jit, per_execution) == best_setting and label != "AVAE (delusion=mean)":
                batch, _ = next(iter(dataset))
                runners.append(Runner(f"{label} cached batch jit={jit} spe={per_execution}",
                                      _cached_step_runner(model, batch, per_execution), per_execution, 64, model=label,
                                      kind="cached batch (no input pipeline, no Python per step)", setting=setting))
    # No extra warm-up call: the first (tracing) call is one, and every call excludes its first execution.
    rows = measure(runners, repeats, warmup_calls=0)
    if reference:
        reference_runs.append(time_reference(*reference, reference_intervals))
    measured_reference = pool_reference_runs(reference_runs)
    summary = {}
    for label, reference_rate in REFERENCE_IMAGES_PER_S.items():
        fits = [r for r in rows if r.get("model") == label and r.get("kind") == "fit" and "images_per_s" in r]
        if not fits:
            continue
        best = max(fits, key=lambda r: r["images_per_s"])
        summary[label] = {
            "best_setting": best["setting"], "images_per_s": best["images_per_s"],
            "best_repeat_images_per_s": best["best_images_per_s"], "reference_images_per_s": reference_rate,
            "ratio_to_reference": best["images_per_s"] / reference_rate,
            "best_repeat_ratio_to_reference": best["best_images_per_s"] / reference_rate,
            "load_1m": best.get("load_1m"),
        }
        if label in measured_reference:
            summary[label]["measured_reference_images_per_s"] = measured_reference[label]["images_per_s"]
            summary[label]["ratio_to_measured_reference"] = (best["images_per_s"]
                                                             / measured_reference[label]["images_per_s"])
        by_setting = {(r["setting"]["train.jit_compile"], r["setting"]["train.steps_per_execution"]): r for r in fits}
        cached = next((r for r in rows if r.get("model") == label and r.get("kind", "").startswith("cached")
                       and "median_ms" in r), None)
        breakdown = {}
        jit_best, spe_best = best_setting
        if (jit_best, spe_best) in by_setting and cached is not None:
            fit_ms = by_setting[(jit_best, spe_best)]["median_ms"]
            breakdown["graph_ms_per_step_cached_batch"] = cached["median_ms"]
            breakdown["fit_ms_per_step"] = fit_ms
            breakdown["input_pipeline_and_loop_ms_per_step"] = fit_ms - cached["median_ms"]
        if (jit_best, 1) in by_setting and (jit_best, spe_best) in by_setting:
            breakdown["python_overhead_ms_per_step"] = (by_setting[(jit_best, 1)]["median_ms"]
                                                        - by_setting[(jit_best, spe_best)]["median_ms"])
        if (False, 1) in by_setting:
            breakdown["default_config_images_per_s"] = by_setting[(False, 1)]["images_per_s"]
        summary[label]["breakdown"] = breakdown
    del runners
    gc.collect()
    return {
        "what": "model.fit throughput (img/s), MLP 4x200 latent 64, colorMNIST, batch 64, real tf.data pipeline; "
                "each repeat is one fit(epochs=1, steps_per_epoch=S) call timed from the end of its first execution",
        "steps_per_fit": steps, "reference": REFERENCE_IMAGES_PER_S, "rows": rows, "summary": summary,
        "measured_reference": {"runs": reference_runs, "pooled": measured_reference} if reference else None,
    }


# --------------------------------------------------------------------------- PGD evaluation
def run_pgd(quick: bool, repeats: int, seed: int) -> dict[str, Any]:
    import tensorflow as tf

    from tf_avae import data
    from tf_avae.adversarial import make_adversarial_correctness_fn
    from tf_avae.evaluation.probe import LinearProbe, make_logits_fn

    batch_size = 16 if quick else 512  # RobustnessEvaluator's default batch
    steps = 40
    images, labels = data.load_arrays("color_mnist", "test", limit=batch_size, seed=seed)
    x, y = tf.constant(images), tf.constant(labels["digit"].astype("int64"))
    runners = []
    for arch in ("mlp", "conv"):
        model = _build("VAE", arch, COLOR_MNIST_SHAPE, latent_dim=64, seed=seed)
        probe = LinearProbe(64, 10)  # PGD's cost does not depend on the probe's (or encoder's) values
        fn = make_adversarial_correctness_fn(make_logits_fn(model, probe, "mean"), epsilon=0.1, num_steps=steps)
        concrete = fn.get_concrete_function(tf.TensorSpec([None, *COLOR_MNIST_SHAPE], tf.float32),
                                            tf.TensorSpec([None], tf.int64), tf.TensorSpec([2], tf.int64))
        batch_seed = tf.constant([seed, 0], tf.int64)
        runners.append(Runner(f"{arch} encoder + linear probe", lambda c=concrete: c(x, y, batch_seed).numpy(), 1,
                              batch_size, architecture=arch))
    rows = measure(runners, repeats, warmup_calls=0 if not quick else 1)
    return {
        "what": "images/s through the evaluation attack (clean pass + L-inf PGD eps 0.1, 40 steps, random start) "
                "of image -> encoder mean -> linear probe; graph mode as RobustnessEvaluator's default",
        "pgd_steps": steps, "batch_size": batch_size, "rows": rows,
    }


# --------------------------------------------------------------------------- input pipelines
def _consumer(iterator, batches: int):
    """Pulls `batches` batches inside one graph loop (as fit with steps_per_execution does)."""
    import tensorflow as tf

    @tf.function
    def consume(n):
        total = tf.constant(0.0)
        for _ in tf.range(n):
            images, _ = next(iterator)
            total += images[0, 0, 0, 0]
        return total

    count = tf.constant(batches)
    return lambda: consume(count).numpy()


def run_pipeline(quick: bool, repeats: int, seed: int, consumers: dict[str, float]) -> dict[str, Any]:
    import tensorflow as tf

    from tf_avae import augment, data

    batches = 20 if quick else 500
    base = data.build_dataset("color_mnist", "train", 64, shuffle=True, seed=seed, repeat=True, drop_remainder=True)
    layer_map = augment.simclr_augment("color_mnist", seed=seed)
    augmented = base.map(lambda x, y: (layer_map(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE,
                         deterministic=True).prefetch(tf.data.AUTOTUNE)
    runners = [
        Runner("build_dataset color_mnist (b64)", _consumer(iter(base), batches), batches, 64, kind="tf.data"),
        Runner("build_dataset color_mnist (b64) + SimCLR map", _consumer(iter(augmented), batches), batches, 64,
               kind="tf.data"),
    ]
    layer_sizes = [("cifar10", CIFAR_SHAPE, 64), ("color_mnist", COLOR_MNIST_SHAPE, 64)]
    if not quick:
        layer_sizes.insert(1, ("cifar10", CIFAR_SHAPE, 256))
    for preset, shape, batch_size in layer_sizes:
        layer = augment.simclr_augment(preset, seed=seed)
        images = _random_images(shape, batch_size, seed)
        calls = 2 if quick else 20

        @tf.function
        def apply(n, layer=layer, images=images):
            total = tf.constant(0.0)
            for _ in tf.range(n):
                total += layer(images, training=True)[0, 0, 0, 0]
            return total

        count = tf.constant(calls)
        runners.append(Runner(f"in-step SimCLR layer {preset} {shape[0]}x{shape[1]}x{shape[2]} (b{batch_size})",
                              lambda apply=apply, count=count: apply(count).numpy(), calls, batch_size,
                              kind="augmentation layer", preset=preset, batch_size=batch_size))
    rows = measure(runners, repeats)
    by_name = {r["name"]: r for r in rows}

    def ratio(name, consumer_key):
        row, rate = by_name.get(name, {}), consumers.get(consumer_key)
        if "images_per_s" not in row or not rate:
            return None
        return {"producer": name, "consumer": consumer_key, "producer_images_per_s": row["images_per_s"],
                "consumer_images_per_s": rate, "ratio": row["images_per_s"] / rate}

    comparisons = [c for c in (
        ratio("build_dataset color_mnist (b64)", "MLP VAE fit (best setting)"),
        ratio("build_dataset color_mnist (b64)", "reference JAX VAE (8,868 img/s)"),
        ratio("build_dataset color_mnist (b64)", "ConvNet VAE step [graph]"),
        ratio("build_dataset color_mnist (b64) + SimCLR map", "ConvNet AAVAE step [graph]"),
        ratio("in-step SimCLR layer cifar10 32x32x3 (b64)", "ResNet AAVAE step b64 [graph]"),
        ratio("in-step SimCLR layer cifar10 32x32x3 (b256)", "ResNet AAVAE step b256 [graph]"),
        ratio("in-step SimCLR layer color_mnist 28x28x3 (b64)", "ConvNet AAVAE step [graph]"),
    ) if c is not None]
    return {
        "what": "images/s of input pipelines consumed inside a graph loop, and of the AAVAE augmentation layer alone "
                "on cached batches; comparisons divide by the rate at which a model consumes images",
        "rows": rows, "comparisons": comparisons,
    }


# --------------------------------------------------------------------------- memory
# Runs the training script and, when it exits, reports the peak RSS of *its* address space (VmHWM: the
# high-water mark of the memory map created by exec) and its getrusage(RUSAGE_SELF).ru_maxrss. Linux starts
# a forked child's ru_maxrss at the parent's resident size at fork time, so the memory section runs first,
# while this process is still small, and VmHWM (not inherited) is the headline figure.
_MEMORY_WRAPPER = """
import atexit, resource, runpy, sys
def _report():
    hwm = next((line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')), 'nan')
    sys.stderr.write('BENCHMARK_MEMORY vmhwm_kb=%s ru_maxrss_kb=%d\\n'
                     % (hwm, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
    sys.stderr.flush()
atexit.register(_report)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def run_memory(quick: bool, steps: int) -> dict[str, Any]:
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tf_avae_benchmark_memory_"))
    config = "configs/avae_color_mnist.py" + (":smoke" if quick else "")
    arguments = ["scripts/train.py", f"--config={config}", f"--workdir={workdir / 'run'}", "--config.train.verbose=2"]
    if not quick:
        arguments += [f"--config.train.num_steps={steps}", f"--config.train.steps_per_epoch={steps}"]
    log_path = workdir / "train.log"
    parent_rss_mb = max_rss_mb()
    start = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-c", _MEMORY_WRAPPER, *arguments], cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    text = log_path.read_text(errors="replace")
    report = next((line for line in text.splitlines() if line.startswith("BENCHMARK_MEMORY")), "")
    fields = dict(part.split("=") for part in report.split()[1:])
    vmhwm_mb = float(fields["vmhwm_kb"]) / 1024.0 if fields.get("vmhwm_kb", "nan") != "nan" else None
    child = {
        "command": " ".join(arguments).replace(str(workdir), "<tmp>"), "returncode": process.returncode,
        "seconds": round(seconds, 1), "peak_rss_mb": vmhwm_mb,
        "ru_maxrss_mb": float(fields["ru_maxrss_kb"]) / 1024.0 if "ru_maxrss_kb" in fields else None,
        "wait4_ru_maxrss_mb": usage.ru_maxrss / 1024.0, "parent_rss_mb_at_start": parent_rss_mb,
        "what": "colorMNIST ConvNet AVAE training run (scripts/train.py: real pipeline, evaluation, checkpoint, "
                "TensorBoard) in a subprocess; peak_rss_mb is its VmHWM at exit, ru_maxrss_mb its own getrusage",
    }
    if process.returncode != 0 or vmhwm_mb is None:
        child["log_tail"] = text[-2000:]
    shutil.rmtree(workdir, ignore_errors=True)
    return {"training_subprocess": child}


# --------------------------------------------------------------------------- report
def _fmt(value, digits=1):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []

    def add(what, value, target, passed, note=""):
        checks.append({"what": what, "value": value, "target": target,
                       "passed": None if value is None else bool(passed), "note": note})

    fit = results.get("fit", {}).get("summary", {})
    for label in ("VAE", "AVAE"):
        entry = fit.get(label)
        if entry:
            add(f"MLP {label} fit img/s / JAX reference {REFERENCE_IMAGES_PER_S[label]:,.0f} (median; goal 1.2)",
                entry["ratio_to_reference"], ">= 1.0", entry["ratio_to_reference"] >= TARGETS["fit_vs_reference"],
                f"best setting {entry['best_setting']}, best repeat {entry['best_repeat_ratio_to_reference']:.2f}, "
                f"load {entry['load_1m']}")
        if entry and "ratio_to_measured_reference" in entry:
            add(f"MLP {label} fit img/s / JAX reference timed in this run "
                f"{entry['measured_reference_images_per_s']:,.0f} (median; goal 1.2)",
                entry["ratio_to_measured_reference"], ">= 1.0",
                entry["ratio_to_measured_reference"] >= TARGETS["fit_vs_reference"],
                "the reference run before and after the fits on this machine (scripts/jax_reference.py)")
    for table in results.get("step_time", {}).get("tables", []):
        rows = {(r.get("model"), r.get("mode")): r for r in table["rows"] if r.get("kind") == "model step"}
        for (model, mode), row in rows.items():
            ratio = row.get("ratio_to_vae")
            if ratio is None:
                continue
            if model == "AVAE":
                add(f"AVAE / VAE step, {table['group']} [{mode}] (paper 1.5)", ratio, "<= 1.3",
                    ratio <= TARGETS["avae_over_vae"])
            if model == "SE(5)":
                add(f"SE(5) / VAE step, {table['group']} [{mode}] (paper 4)", ratio, "<= 3.5",
                    ratio <= TARGETS["se5_over_vae"])
            if model == "AAVAE" and table["architecture"] == "resnet":
                add(f"AAVAE / VAE step, {table['group']} [{mode}]", ratio, "<= 1.3",
                    ratio <= TARGETS["aavae_over_vae_resnet"], "augmentation inside the step")
    for comparison in results.get("pipeline", {}).get("comparisons", []):
        add(f"{comparison['producer']} / {comparison['consumer']}", comparison["ratio"], ">= 5",
            comparison["ratio"] >= TARGETS["pipeline_over_consumer"])
    child = results.get("memory", {}).get("training_subprocess")
    if child and child.get("returncode") == 0:
        gb = child["peak_rss_mb"] / 1024.0
        add("peak RSS of a colorMNIST ConvNet training run (GB)", gb, "<= 3", gb <= TARGETS["conv_training_peak_gb"])
    return checks


def markdown(results: dict[str, Any]) -> str:
    env = results["environment"]
    lines = [
        "# tf_avae speed and memory",
        "",
        f"{env['cpu_model']} x {env['cpu_count']} CPUs, {env['memory_gb']} GB, {env['gpus']} GPU; "
        f"python {env['python']}, tensorflow {env['tensorflow']}, keras {env['keras']}, tf_avae {env['tf_avae']} "
        f"(git {str(env['git_commit'])[:10]}{'+dirty' if env['git_dirty'] else ''}); "
        f"{'QUICK RUN (numbers mean little); ' if env['quick'] else ''}"
        f"started {results['started']}, {results['seconds']:.0f} s.",
        "",
        "The machine is shared: load average (1/5/15 min) and CPU pressure (% of time a task waited for a CPU, "
        "10 s avg) before -> after each section:",
        "",
        "| section | seconds | load before | load after | cpu pressure before -> after | peak RSS after (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for name in SECTIONS:
        section = results.get(name)
        if not section or "_meta" not in section:
            continue
        meta = section["_meta"]
        psi = lambda p: "-" if not p else f"{p['avg10']:.0f}%"  # noqa: E731
        lines.append(f"| {name} | {meta['seconds']:.0f} | {meta['load_before']} | {meta['load_after']} | "
                     f"{psi(meta['cpu_pressure_before'])} -> {psi(meta['cpu_pressure_after'])} | "
                     f"{meta['peak_rss_mb_after']:.0f} |")

    checks = results.get("targets", [])
    if checks:
        lines += ["", "## Targets", "", "| check | measured | target | met | note |", "|---|---|---|---|---|"]
        for check in checks:
            met = {True: "yes", False: "**no**", None: "-"}[check["passed"]]
            lines.append(f"| {check['what']} | {_fmt(check['value'], 2)} | {check['target']} | {met} | "
                         f"{check['note']} |")

    fit = results.get("fit")
    if fit and "rows" in fit:
        lines += ["", "## model.fit throughput (MLP 4x200, colorMNIST, batch 64, real tf.data pipeline)", "",
                  f"{fit['what']}. S = {fit['steps_per_fit']}. Reference (JAX/Haiku): VAE 8,868, AVAE 7,142 img/s.", "",
                  "| model | kind | jit_compile | steps_per_execution | img/s (median) | best repeat | ms/step | "
                  "IQR ms | "
                  "CPU ms/step | x reference | load 1m |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in fit["rows"]:
            if "median_ms" not in row:
                lines.append(f"| {row['name']} | error: {row.get('error')} |")
                continue
            ref = REFERENCE_IMAGES_PER_S.get(row["model"].split(" ")[0])
            lines.append(
                f"| {row['model']} | {row['kind'].split(' (')[0]} | {row['setting']['train.jit_compile']} | "
                f"{row['setting']['train.steps_per_execution']} | {_fmt(row['images_per_s'], 0)} | "
                f"{_fmt(row['best_images_per_s'], 0)} | {row['median_ms']:.2f} | "
                f"{row['q1_ms']:.2f}-{row['q3_ms']:.2f} | "
                f"{row['cpu_ms_per_step']:.2f} | {_fmt(row['images_per_s'] / ref if ref else None, 2)} | "
                f"{_fmt(row['load_1m'], 2)} |")
        for label, entry in fit.get("summary", {}).items():
            parts = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in entry.get("breakdown", {}).items())
            lines.append(f"\n{label}: best {entry['images_per_s']:,.0f} img/s with {entry['best_setting']} = "
                         f"{entry['ratio_to_reference']:.2f} x reference (best repeat "
                         f"{entry['best_repeat_ratio_to_reference']:.2f} x). Breakdown: {parts}.")
        measured = fit.get("measured_reference")
        if measured:
            lines.append("\nThe JAX reference timed in this run (`scripts/jax_reference.py`, before / after the fits):")
            for run in measured["runs"]:
                lines.append(f"- {run['error']}" if "error" in run else "- " + ", ".join(
                    f"{label} {row['images_per_s']:,.0f} img/s ({row['median_ms_per_step']:.2f} ms/step, load "
                    f"{row['load_1m']:.2f}, jax {row['jax']})" for label, row in run.items()))
            for label, entry in fit.get("summary", {}).items():
                if "ratio_to_measured_reference" in entry:
                    lines.append(f"- {label}: fit {entry['images_per_s']:,.0f} img/s = "
                                 f"{entry['ratio_to_measured_reference']:.2f} x the reference's "
                                 f"{entry['measured_reference_images_per_s']:,.0f} (median of all its intervals)")

    step = results.get("step_time")
    if step and "tables" in step:
        lines += ["", "## Training step time and ratio to the VAE", "", step["what"] + ".", ""]
        for table in step["tables"]:
            lines += [f"### {table['group']} ({table['architecture']}, {'x'.join(map(str, table['image_shape']))}, "
                      f"batch {table['batch_size']})", "",
                      "| model | mode | ms/step (median) | IQR ms | img/s | x VAE | CPU ms/step | load 1m |",
                      "|---|---|---|---|---|---|---|---|"]
            for row in table["rows"]:
                if "median_ms" not in row:
                    lines.append(f"| {row.get('model')} | {row.get('mode')} | error: {row.get('error')} | | | | | |")
                    continue
                lines.append(f"| {row['model']} | {row['mode']} | {row['median_ms']:.2f} | "
                             f"{row['q1_ms']:.2f}-{row['q3_ms']:.2f} | {row['images_per_s']:,.0f} | "
                             f"{_fmt(row.get('ratio_to_vae'), 2)} | {row['cpu_ms_per_step']:.2f} | "
                             f"{_fmt(row['load_1m'], 2)} |")
            for skip in table["skipped"]:
                lines.append(f"| {skip['name']} | {skip['mode']} | not run: {skip['why']} | | | | | |")
            lines.append("")

    pipeline = results.get("pipeline")
    if pipeline and "rows" in pipeline:
        lines += ["## Input pipeline and augmentation", "", pipeline["what"] + ".", "",
                  "| producer | img/s (median) | best | CPU us/batch | load 1m |", "|---|---|---|---|---|"]
        for row in pipeline["rows"]:
            if "median_ms" in row:
                lines.append(f"| {row['name']} | {row['images_per_s']:,.0f} | {row['best_images_per_s']:,.0f} | "
                             f"{1e3 * row['cpu_ms_per_step']:.0f} | {_fmt(row['load_1m'], 2)} |")
            else:
                lines.append(f"| {row['name']} | error: {row.get('error')} | | | |")
        if pipeline.get("comparisons"):
            lines += ["", "| producer | consumer | producer img/s | consumer img/s | ratio |", "|---|---|---|---|---|"]
            for c in pipeline["comparisons"]:
                lines.append(f"| {c['producer']} | {c['consumer']} | {c['producer_images_per_s']:,.0f} | "
                             f"{c['consumer_images_per_s']:,.0f} | {c['ratio']:.1f} |")

    pgd = results.get("pgd")
    if pgd and "rows" in pgd:
        lines += ["", "## PGD evaluation throughput", "", pgd["what"] + f"; batch {pgd['batch_size']}.", "",
                  "| composed model | img/s (median) | s per batch | IQR s | load 1m |", "|---|---|---|---|---|"]
        for row in pgd["rows"]:
            if "median_ms" in row:
                lines.append(f"| {row['name']} | {row['images_per_s']:,.0f} | {row['median_ms'] / 1e3:.2f} | "
                             f"{row['q1_ms'] / 1e3:.2f}-{row['q3_ms'] / 1e3:.2f} | {_fmt(row['load_1m'], 2)} |")
            else:
                lines.append(f"| {row['name']} | error: {row.get('error')} | | | |")

    memory = results.get("memory")
    if memory:
        lines += ["", "## Peak resident memory", "", "| process | peak RSS (MB) | note |", "|---|---|---|"]
        child = memory.get("training_subprocess")
        if child:
            note = f"{child['seconds']} s, exit {child['returncode']}: `{child['command']}`"
            lines.append(f"| colorMNIST ConvNet AVAE training (subprocess) | {child['peak_rss_mb']:,.0f} | {note} |")
    lines.append(f"| this benchmark process (all sections) | {results['peak_rss_mb']:,.0f} | ru_maxrss |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main
def _write_json(path: pathlib.Path, results) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=float) + "\n")
    os.replace(tmp, path)


def _section(name, fn, *args):
    meta = {"load_before": load_average(), "cpu_pressure_before": cpu_pressure()}
    start = time.perf_counter()
    print(f"[benchmark] {name} ... (load {meta['load_before']})", flush=True)
    result = fn(*args)
    meta.update({"seconds": time.perf_counter() - start, "load_after": load_average(),
                 "cpu_pressure_after": cpu_pressure(), "peak_rss_mb_after": max_rss_mb()})
    result["_meta"] = meta
    print(f"[benchmark] {name} done in {meta['seconds']:.0f} s (load {meta['load_after']})", flush=True)
    return result


class _Sections:
    """Runs the sections in order, saving what is done so far into results.partial.json after each one."""

    def __init__(self, results, output_dir):
        self.results, self.path = results, output_dir / "results.partial.json"

    def run(self, name, fn, *args):
        if name in FLAGS.sections:
            self.results[name] = _section(name, fn, *args)
            _write_json(self.path, self.results)


def _consumer_rates(results) -> dict[str, float]:
    rates = {"reference JAX VAE (8,868 img/s)": REFERENCE_IMAGES_PER_S["VAE"]}
    fit = results.get("fit", {}).get("summary", {}).get("VAE")
    if fit:
        rates["MLP VAE fit (best setting)"] = fit["images_per_s"]
    for table in results.get("step_time", {}).get("tables", []):
        for row in table["rows"]:
            if row.get("kind") != "model step" or row.get("mode") != "graph" or "images_per_s" not in row:
                continue
            if table["architecture"] == "conv" and row["model"] in ("VAE", "AAVAE"):
                rates[f"ConvNet {row['model']} step [graph]"] = row["images_per_s"]
            if table["architecture"] == "resnet" and row["model"] == "AAVAE":
                rates[f"ResNet AAVAE step b{table['batch_size']} [graph]"] = row["images_per_s"]
    return rates


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    unknown = sorted(set(FLAGS.sections) - set(SECTIONS))
    if unknown:
        raise app.UsageError(f"--sections: unknown {unknown}; choose from {list(SECTIONS)}.")
    if importlib.util.find_spec("tf_avae") is None:  # before the memory section, not after it
        raise app.UsageError("tf_avae is not importable: install it first (`pip install -e .` in the repository).")
    reference = None
    if FLAGS.reference_python or FLAGS.reference_dir:
        reference = (FLAGS.reference_python, FLAGS.reference_dir)
        if not all(reference):
            raise app.UsageError("--reference_python and --reference_dir go together (see scripts/jax_reference.py).")
        if shutil.which(FLAGS.reference_python) is None:
            raise app.UsageError(f"--reference_python={FLAGS.reference_python!r} is not an executable.")
        if not (pathlib.Path(FLAGS.reference_dir) / "avae" / "train_main.py").is_file():
            raise app.UsageError(f"--reference_dir={FLAGS.reference_dir!r} must hold the reference's "
                                 "avae/train_main.py (a checkout of google-deepmind/deepmind-research).")
    quick = FLAGS.quick
    repeats = FLAGS.repeats or (2 if quick else 7)
    fit_repeats = FLAGS.fit_repeats or (2 if quick else 5)
    output_dir = pathlib.Path(FLAGS.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    start = time.perf_counter()
    results: dict[str, Any] = {"started": started, "load_average_start": load_average(),
                               "cpu_pressure_start": cpu_pressure()}
    sections = _Sections(results, output_dir)
    sections.run("memory", run_memory, quick, FLAGS.memory_steps)  # first, while this process is small
    results["environment"] = environment()
    results["settings"] = {"quick": quick, "repeats": repeats, "fit_repeats": fit_repeats, "seed": FLAGS.seed,
                           "sections": list(FLAGS.sections), "targets": TARGETS, "paper_ratios": PAPER_RATIOS,
                           "reference_images_per_s": REFERENCE_IMAGES_PER_S}
    # fit next: the headline figure, measured before this process holds many models
    sections.run("fit", run_fit, quick, fit_repeats, FLAGS.seed, reference)
    sections.run("step_time", run_step_time, quick, repeats, FLAGS.seed)
    sections.run("pipeline", run_pipeline, quick, repeats, FLAGS.seed, _consumer_rates(results))
    sections.run("pgd", run_pgd, quick, max(1, min(repeats, 3)), FLAGS.seed)
    results["peak_rss_mb"] = max_rss_mb()
    results["seconds"] = time.perf_counter() - start
    results["load_average_end"] = load_average()
    results["cpu_pressure_end"] = cpu_pressure()
    results["targets"] = _targets(results)

    _write_json(output_dir / "results.json", results)
    sections.path.unlink(missing_ok=True)
    report = markdown(results)
    (output_dir / "results.md").write_text(report)
    print()
    print(report)
    print(f"wrote {output_dir / 'results.json'} and {output_dir / 'results.md'}")


if __name__ == "__main__":
    app.run(main)
