"""Config -> strategy, data, model, fit, checkpoints, saved model. Used by `scripts/train.py`.

A workdir holds:
    config.json      the resolved config of the run
    model.keras      the trained model (written atomically, only from a finite loss)
    history.json     per-epoch metrics, training seconds, steps
    tensorboard/     TensorBoard event files
    checkpoints/     ckpt-<step>/ (weights + optimizer state + step, verified by a SHA-256 manifest),
                     the `train.keep_checkpoints` most recent; see tf_avae/checkpointing.py
    eval.json        (written by the evaluation suite) carried into exports as assets/card.json

`train(config, workdir, resume=True)` (what scripts/train.py does) continues from the newest
complete checkpoint. A resumed run reproduces the uninterrupted one: the model's random draws are
stateless functions of (seed, step), and the data stream is the same seeded stream with the
consumed batches skipped.

Under `tf.distribute.MultiWorkerMirroredStrategy` (TF_CONFIG naming several workers, or
`train.strategy=multi_worker`) every worker runs the same command; only the chief writes into the
workdir, the others write into a temporary directory that is deleted at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import pathlib
import shutil
import sys
import tempfile
import time
from typing import Any, Callable

import keras
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging
from ml_collections import config_dict

from tf_avae import augment, checkpointing, data, models
from tf_avae.evaluation.callback import COLLAPSE_THRESHOLD
from tf_avae.networks import build_networks
from tf_avae.validation import check_choice, check_positive, check_positive_int

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
TENSORBOARD_DIR = "tensorboard"
CHECKPOINT_DIR = checkpointing.CHECKPOINT_DIR
EVAL_FILE = "eval.json"
CURVE_FILE = "robustness_curve.json"

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
MIXED_PRECISION_POLICIES = (None, "mixed_float16", "mixed_bfloat16")


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; nothing in the workdir was overwritten."""


class TrainingCollapsedError(RuntimeError):
    """The encoder's code stopped depending on its input for `train.collapse_patience` epochs; training stopped
    (checkpoints up to there are kept, model.keras is not written)."""


# the CollapseMonitor's held-out images (from the eval split)
COLLAPSE_EXAMPLES = 256


# --------------------------------------------------------------------------- configs
# The paper's settings of its models (AVAE paper, Table 1): rho 0.975 with sampled delusions; SE with eps' = 0.1,
# 5 L-inf PGD steps and rho_SE = 0.95. Every config that trains one of them reads it here, so runs meant to be the
# same are the same (a finished run directory of one experiment can be copied into another).
PAPER_MODELS = {
    "avae": {"name": "avae", "rho": 0.975, "beta": 1.0, "delusion": "sample"},
    "se": {"name": "se", "epsilon": 0.1, "pgd_steps": 5, "rho": 0.95, "beta": 1.0, "norm": "inf"},
    "se_avae": {"name": "se_avae", "rho": 0.975, "se_rho": 0.95, "epsilon": 0.1, "pgd_steps": 5, "beta": 1.0,
                "delusion": "sample"},
}


def paper_model(name: str, **changes) -> dict:
    """A copy of the model spec `PAPER_MODELS[name]`, with `changes` (e.g. `rho=0.9`) applied."""
    return {**PAPER_MODELS[check_choice("name", name, tuple(PAPER_MODELS))], **changes}


def base_config() -> ml_collections.ConfigDict:
    """Defaults every experiment config starts from (see configs/*.py)."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.data = ml_collections.ConfigDict(
        {
            "name": "color_mnist",
            "train_split": "train",
            "eval_split": "test",
            "limit": config_dict.placeholder(int),
            "eval_limit": config_dict.placeholder(int),
        }
    )
    config.network = ml_collections.ConfigDict(
        {
            "architecture": "conv",
            "latent_dim": 64,
            "likelihood": "gaussian",
            "observation_variance": 0.5,
            "learn_variance": False,
            # architecture-specific widths, e.g. {"filters": (32, 64)} or {"width": 64}
            "kwargs": ml_collections.ConfigDict(),
        }
    )
    config.model = ml_collections.ConfigDict({"name": "vae", "beta": 1.0})
    config.train = ml_collections.ConfigDict(
        {
            "batch_size": 64,
            "num_steps": 10_000,
            "steps_per_epoch": 500,
            "learning_rate": 1e-4,
            "strategy": "auto",
            "jit_compile": False,
            # Steps run per call into the compiled function (less Python overhead per step; callbacks
            # and progress then update every N steps).
            "steps_per_execution": 1,
            "verbose": 1,
            "eval_batches": 20,
            # a checkpoint every this many steps (None: once per epoch) and at the end; the most
            # recent `keep_checkpoints` are kept
            "checkpoint_every_steps": config_dict.placeholder(int),
            "keep_checkpoints": 3,
            # None (float32), "mixed_float16" (loss scaling) or "mixed_bfloat16"
            "mixed_precision": config_dict.placeholder(str),
            # Posterior-collapse watch (tf_avae.evaluation.CollapseMonitor): each epoch logs `code_spread`, the
            # per-dimension spread of mu(x) over COLLAPSE_EXAMPLES test images, and warns below this threshold
            # (None: off); after `collapse_patience` collapsed epochs in a row training stops with
            # TrainingCollapsedError (None: it only warns).
            "collapse_threshold": COLLAPSE_THRESHOLD,
            "collapse_patience": config_dict.placeholder(int),
        }
    )
    # Robustness measured during training (tf_avae.evaluation.RobustnessCallback); off unless every_steps is set.
    config.eval = ml_collections.ConfigDict(
        {
            "every_steps": config_dict.placeholder(int),
            "radii": (0.1,),
            "pgd_steps": 10,
            "probe_examples": 2000,
            "test_examples": 500,
        }
    )
    return config


def smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Shrinks any experiment to a run of well under a minute (tests and CI use it)."""
    config.data.limit = 512
    config.data.eval_limit = 256
    config.train.batch_size = 32
    config.train.num_steps = 20
    config.train.steps_per_epoch = 10
    config.train.eval_batches = 2
    config.train.verbose = 2
    return config


CONFIG_ARGUMENTS = (None, "", "smoke", "paper")


def check_config_argument(arg):
    """The argument after a config file's colon (training and experiment configs alike)."""
    if arg not in CONFIG_ARGUMENTS:
        raise ValueError(f"config argument (configs/<name>.py:<argument>) must be empty, 'smoke' or 'paper'; "
                         f"got {arg!r}.")
    return arg


def apply_budget(config, arg, *, paper_steps: int = 100_000, paper_learning_rate: float = 1e-4):
    """The shared meaning of a config file's argument: none = the CPU default budget the file set,
    `paper` = the paper's budget (~100k steps at batch 64, lr 1e-4), `smoke` = a sub-minute run."""
    check_config_argument(arg)
    if arg == "paper":
        config.train.learning_rate = paper_learning_rate
        config.train.num_steps = paper_steps
        config.train.steps_per_epoch = 1000
    if arg == "smoke":
        smoke(config)
    return config


def color_mnist_config(model: dict, arg=None, *, num_steps: int = 3000, learning_rate: float = 1e-3):
    """A ConvNet experiment on colorMNIST (latent 64, batch 64) for the model spec `model`."""
    config = base_config()
    config.data.name = "color_mnist"
    config.network.architecture = "conv"
    config.network.latent_dim = 64
    config.model = model
    config.train.batch_size = 64
    config.train.learning_rate = learning_rate
    config.train.num_steps = num_steps
    config.train.steps_per_epoch = 500
    return apply_budget(config, arg)


def config_to_dict(config) -> dict[str, Any]:
    return json.loads(config.to_json_best_effort()) if hasattr(config, "to_json_best_effort") else dict(config)


def _differences(old, new, prefix=""):
    keys = sorted(set(old) | set(new))
    found = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and list(a) == list(b)):
            found.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return found


# history.json of an AVAE-SS run: the weights_sha256 of the VAE it post-trained
SOURCE_VAE_KEY = "vae_weights_sha256"
# `train` settings that watch a run without changing what it computes: a workdir may be resumed with others (or
# without them, as runs from before they existed were)
WATCH_ONLY_KEYS = ("collapse_threshold", "collapse_patience")


def _history_value(workdir, key):
    """`key` of the history.json of a finished run in `workdir`, or None (no run, unreadable, no such key)."""
    try:
        return json.loads((pathlib.Path(workdir) / HISTORY_FILE).read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def _same_source_vae(workdir, vae_workdir) -> bool:
    """An AVAE-SS workdir's run was post-trained from the VAE now in `vae_workdir` (same weights fingerprint)."""
    recorded = _history_value(workdir, SOURCE_VAE_KEY)
    return recorded is not None and recorded == _history_value(vae_workdir, "weights_sha256")


def _with_accepted_changes(workdir, old: dict, new: dict) -> dict:
    """`old` with the changes a workdir accepts taken over from `new`: a larger `train.num_steps` (training
    continues from the last checkpoint with the same constant learning rate, so 5k steps and then 10k more are one
    15k-step run), the WATCH_ONLY_KEYS, and for AVAE-SS another `model.vae_workdir` that holds the very VAE it was
    post-trained from (a moved experiment directory)."""
    old_train, new_train = old.get("train", {}), new.get("train", {})
    train = {key: value for key, value in old_train.items() if key not in WATCH_ONLY_KEYS}
    train.update({key: new_train[key] for key in WATCH_ONLY_KEYS if key in new_train})
    old_steps, new_steps = old_train.get("num_steps"), new_train.get("num_steps")
    if isinstance(old_steps, int) and isinstance(new_steps, int) and new_steps >= old_steps:
        train["num_steps"] = new_steps
    model = dict(old.get("model", {}))
    moved = new.get("model", {}).get("vae_workdir")
    if None not in (model.get("vae_workdir"), moved) and model["vae_workdir"] != moved and _same_source_vae(
            workdir, moved):
        model["vae_workdir"] = moved
    return {**old, "train": train, "model": model}


def check_workdir_config(workdir, config) -> None:
    """A workdir belongs to one config: rerunning the same one is fine, another one is refused, except for the
    changes `_with_accepted_changes` takes over."""
    path = pathlib.Path(workdir) / CONFIG_FILE
    if not path.exists():
        return
    old, new = json.loads(path.read_text()), config_to_dict(config)
    differences = _differences(_with_accepted_changes(workdir, old, new), new)
    if differences:
        raise ValueError(
            f"workdir {str(workdir)!r} already holds a run with a different config ({'; '.join(differences)}). "
            "Use a new --workdir; nothing was changed in this one."
        )


def load_config(workdir) -> ml_collections.ConfigDict:
    path = pathlib.Path(workdir) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"workdir {str(workdir)!r} has no {CONFIG_FILE}: is it the workdir of a training run?")
    return ml_collections.ConfigDict(json.loads(path.read_text()))


# --------------------------------------------------------------------------- building
def _augmentation(spec, seed: int):
    spec = dict(spec or {"name": "simclr", "preset": "cifar10"})
    name = check_choice("model.augmentation.name", spec.pop("name", "simclr"), ("simclr", "gaussian_noise", "none"))
    if name == "simclr":
        return augment.simclr_augment(spec.pop("preset", "cifar10"), seed=seed)
    if name == "gaussian_noise":
        return augment.GaussianNoiseAugment(spec.pop("stddev"), clip=spec.pop("clip", False),
                                            region=spec.pop("region", "all"), seed=seed)
    return keras.layers.Identity()


def _from_vae_workdir(model_cls, encoder, decoder, seed, vae_workdir, **kwargs):
    if not vae_workdir:
        raise ValueError("model.vae_workdir must name the workdir of a trained VAE for avae_ss.")
    vae = load_model(vae_workdir)
    return model_cls.from_vae(vae, seed=seed, **kwargs)


# name -> (class name in tf_avae.models, builder(cls, encoder, decoder, seed, **model kwargs))
MODEL_BUILDERS: dict[str, tuple[str, Callable[..., keras.Model]]] = {
    "vae": ("VAE", lambda cls, e, d, seed, **kw: cls(e, d, seed=seed, **kw)),
    "ae": ("AE", lambda cls, e, d, seed, **kw: cls(e, d, seed=seed, **kw)),
    "avae": ("AVAE", lambda cls, e, d, seed, augmentation=None, **kw: cls(
        e, d, augmentation=None if augmentation is None else _augmentation(augmentation, seed), seed=seed, **kw)),
    "aavae": ("AAVAE", lambda cls, e, d, seed, augmentation=None, **kw: cls(
        e, d, augmentation=_augmentation(augmentation, seed), seed=seed, **kw)),
    "se": ("SmoothEncoder", lambda cls, e, d, seed, **kw: cls(e, d, seed=seed, **kw)),
    "se_avae": ("SEAVAE", lambda cls, e, d, seed, **kw: cls(e, d, seed=seed, **kw)),
    "avae_ss": ("AVAESS", _from_vae_workdir),
}


def build_model(config: ml_collections.ConfigDict) -> keras.Model:
    """Networks and model from a config (call inside a strategy scope to distribute it)."""
    info = data.dataset_info(check_choice("data.name", config.data.name, data.DATASET_NAMES))
    model_spec = config_to_dict(config.model)
    name = check_choice("model.name", model_spec.pop("name"), tuple(MODEL_BUILDERS))
    class_name, builder = MODEL_BUILDERS[name]
    if not hasattr(models, class_name):
        raise ValueError(f"model.name {name!r} needs tf_avae.models.{class_name}, which this version does not have.")
    network = config.network
    encoder, decoder = build_networks(
        network.architecture,
        info.image_shape,
        network.latent_dim,
        likelihood=network.likelihood,
        observation_variance=network.observation_variance,
        learn_variance=network.learn_variance,
        **config_to_dict(network.kwargs),
    )
    try:
        return builder(getattr(models, class_name), encoder, decoder, config.seed, **model_spec)
    except TypeError as error:
        raise TypeError(f"config.model has a key that model {name!r} does not take: {error}") from None


def _tf_config_tasks() -> int:
    """How many chief + worker tasks TF_CONFIG names (0 when it is unset)."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (ValueError, AttributeError) as error:
        raise ValueError(f"TF_CONFIG is not a JSON object with a 'cluster' ({error}); got {raw[:200]!r}.") from None
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The distribution strategy a config names.

    'auto': MultiWorkerMirroredStrategy when TF_CONFIG names more than one worker, else
    MirroredStrategy when more than one GPU is visible, else the default strategy.
    'multi_worker': MultiWorkerMirroredStrategy (cluster from TF_CONFIG; one local worker without it).
    """
    check_choice("train.strategy", name, STRATEGIES)
    tasks = _tf_config_tasks()
    if name == "multi_worker" or (name == "auto" and tasks > 1):
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as error:
            raise RuntimeError(
                f"MultiWorkerMirroredStrategy must be created before TensorFlow runs any op in this process "
                f"({error}); call train_lib.train before anything else, or use scripts/train.py."
            ) from error
    if tasks > 1:
        logging.warning("TF_CONFIG names %d workers but train.strategy=%r: training on this worker alone.", tasks, name)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """Where this process sits in a (multi-worker) cluster."""

    task_type: str | None = None
    task_id: int = 0
    num_workers: int = 1
    is_chief: bool = True


def worker_role(strategy: tf.distribute.Strategy) -> WorkerRole:
    """The chief is the 'chief' task, or worker 0 when TF_CONFIG has no chief (as in the TF docs)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return WorkerRole()
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    task_type = resolver.task_type if resolver is not None else None
    task_id = int(resolver.task_id or 0) if resolver is not None else 0
    workers = max(1, len(spec.get("chief", [])) + len(spec.get("worker", [])))
    is_chief = task_type in (None, "chief") or (task_type == "worker" and task_id == 0 and "chief" not in spec)
    return WorkerRole(task_type, task_id, workers, is_chief)


def broadcast_from_chief(strategy: tf.distribute.Strategy, variables) -> None:
    """Gives every worker the values replica 0 (the chief) holds: one all-reduce where only the
    chief contributes. Used after the chief alone restored a checkpoint."""
    variables = list(variables)
    if not variables:
        return

    @tf.function
    def step():
        def replica_fn():
            context = tf.distribute.get_replica_context()
            first = tf.equal(context.replica_id_in_sync_group, 0)
            values = []
            for variable in variables:
                value = tf.cast(tf.convert_to_tensor(variable), tf.float64)
                values.append(tf.where(first, value, tf.zeros_like(value)))
            return context.all_reduce(tf.distribute.ReduceOp.SUM, values)

        return strategy.run(replica_fn)

    results = step()
    for variable, value in zip(variables, results):
        local = strategy.experimental_local_results(value)[0]
        variable.assign(tf.cast(local, variable.dtype))


def _check_train_config(config):
    check_positive_int("train.batch_size", config.train.batch_size)
    check_positive_int("train.num_steps", config.train.num_steps)
    check_positive_int("train.steps_per_epoch", config.train.steps_per_epoch)
    check_positive("train.learning_rate", config.train.learning_rate)
    check_choice("train.verbose", config.train.verbose, (0, 1, 2))
    check_choice("train.strategy", config.train.strategy, STRATEGIES)
    train = config.train
    if train.get("checkpoint_every_steps") is not None:
        check_positive_int("train.checkpoint_every_steps", train.checkpoint_every_steps)
    check_positive_int("train.keep_checkpoints", train.get("keep_checkpoints", 3))
    check_choice("train.mixed_precision", train.get("mixed_precision"), MIXED_PRECISION_POLICIES)
    if train.get("collapse_threshold") is not None:
        check_positive("train.collapse_threshold", train.collapse_threshold)
    if train.get("collapse_patience") is not None:
        check_positive_int("train.collapse_patience", train.collapse_patience)
    for key in ("limit", "eval_limit"):
        if config.data[key] is not None:
            check_positive_int(f"data.{key}", config.data[key])


def build_datasets(config, model: keras.Model | None = None, start_step: int = 0):
    """(train dataset repeated forever, eval dataset or None). AVAE-SS reads no data: (None, None).

    The training stream is one seeded sequence of batches (reshuffled every epoch, deterministic
    for config.seed); `start_step` skips the first batches, so a run resumed at step k sees exactly
    the batches k, k+1, ... that the uninterrupted run saw.
    """
    if config.model.name == "avae_ss":
        return None, None
    train = data.build_dataset(
        config.data.name, config.data.train_split, config.train.batch_size, shuffle=True, seed=config.seed,
        limit=config.data.limit, repeat=True, drop_remainder=True,
    )
    if start_step:
        train = train.skip(int(start_step))
    evaluation = None
    if config.data.eval_split:
        evaluation = data.build_dataset(
            config.data.name, config.data.eval_split, config.train.batch_size, shuffle=False,
            limit=config.data.eval_limit,
        ).take(config.train.eval_batches)
    return train, evaluation


# --------------------------------------------------------------------------- saving
def write_atomically(path, write: Callable[[str], None]) -> None:
    """Calls write(tmp_path) next to `path`, then renames into place: never a half-written file."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix or ".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, payload) -> None:
    def write(tmp):
        with open(tmp, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True, default=float)

    write_atomically(path, write)


def trained_steps(workdir) -> int | None:
    """The training steps the workdir's history.json records (None when it has none)."""
    path = pathlib.Path(workdir) / HISTORY_FILE
    return json.loads(path.read_text()).get("steps") if path.exists() else None


def load_model(workdir) -> keras.Model:
    """The workdir's trained model, rebuilt under the run's mixed-precision policy (if any)."""
    path = pathlib.Path(workdir) / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"No trained model at {path}: train one with scripts/train.py --workdir {workdir}.")
    policy = None
    if (pathlib.Path(workdir) / CONFIG_FILE).exists():
        policy = load_config(workdir).get("train", {}).get("mixed_precision")
    with global_dtype_policy(policy):
        return keras.saving.load_model(path)


def checkpoint_models(workdir):
    """Yields (step, model) for each kept checkpoint of a training workdir that verifies, oldest first: one model,
    built from the workdir's config, with each checkpoint's weights loaded in turn (corrupt checkpoints are
    reported by name and skipped). How the model changed during training, e.g. for scripts/diagnose_robustness.py.
    """
    workdir = pathlib.Path(workdir)
    manager = checkpointing.CheckpointManager(workdir / CHECKPOINT_DIR)
    checkpoints = sorted(manager.verified(), key=lambda checkpoint: checkpoint.step)
    if not checkpoints:
        raise FileNotFoundError(f"No complete checkpoint in {workdir / CHECKPOINT_DIR}.")
    model = _build_compiled_model(load_config(workdir), tf.distribute.get_strategy())
    for checkpoint in checkpoints:
        manager.restore(model, checkpoint)
        yield checkpoint.step, model


# --------------------------------------------------------------------------- training
class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where."""

    def __init__(self):
        super().__init__()
        self.failed_at_step: int | None = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.failed_at_step = int(self.model.optimizer.iterations.numpy())
            self.model.stop_training = True


def weights_fingerprint(model: keras.Model) -> str:
    """SHA-256 of every model weight in order (dtype, shape, bytes; not the names, which Keras may
    number differently in another process): equal iff the weights are bitwise equal."""
    digest = hashlib.sha256()
    for variable in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(variable))
        digest.update(f"{value.dtype}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


class CheckpointCallback(keras.callbacks.Callback):
    """Writes a checkpoint every `every` global steps, at every epoch end that is a multiple of
    `every`, and at the last step; never from a non-finite loss or non-finite weights.

    Epoch-end checkpoints are written after validation, so their metadata holds the metrics of
    every completed epoch (a resumed run's history.json is then complete).
    """

    def __init__(self, manager, every: int, steps_per_epoch: int, total_steps: int, guard, history, meta):
        super().__init__()
        self.manager = manager
        self.every = every
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = total_steps
        self.guard = guard
        self.history = history  # key -> list, one entry per completed epoch (restored ones included)
        self.meta = meta  # static part of every checkpoint's meta.json
        self.seconds_before = float(meta.pop("seconds_before", 0.0))
        self.started = time.perf_counter()
        self.saved_steps: list[int] = []
        self.refused_steps: list[int] = []

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        if step % self.every == 0 and step % self.steps_per_epoch != 0:
            self._save(step, logs, epochs_done=step // self.steps_per_epoch)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        step = self._step()
        if step % self.every == 0 or step >= self.total_steps:
            self._save(step, logs, epochs_done=epoch + 1)

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def _save(self, step, logs, epochs_done):
        loss = (logs or {}).get("loss")
        finite_loss = loss is not None and math.isfinite(float(loss))
        if self.guard.failed_at_step is not None or not finite_loss:
            logging.warning("Not checkpointing step %d: the training loss is not finite (%s).", step, loss)
            self.refused_steps.append(step)
            return
        if not checkpointing.all_finite(self.model.weights):
            logging.warning("Not checkpointing step %d: some weights are NaN/Inf.", step)
            self.refused_steps.append(step)
            return
        history = {key: values[:epochs_done] for key, values in self.history.items()}
        meta = {**self.meta, "epoch": epochs_done, "loss": float(loss), "history": history, "seconds": self.seconds()}
        path = self.manager.save(self.model, step, meta)
        self.saved_steps.append(step)
        logging.info("Checkpoint %s written.", path)


def _adapt_to_multi_worker(model: keras.Model) -> None:
    """Works around two Keras 3.15 failures of `fit` under MultiWorkerMirroredStrategy
    (keras-team/keras#20585); per model instance, nothing global is patched.

    1. fit/evaluate first reduce one distributed input batch across replicas to build the model
       symbolically (`Trainer._maybe_symbolic_build`), which fails under this strategy ("Attempt
       to convert a value (PerReplica...)"). Our models and optimizer are fully built before fit
       (DESIGN.md section 5), so that step has nothing to do and is skipped.
    2. The step outputs are reduced with `strategy.reduce("MEAN", value, axis=0)`, which fails for
       the scalar metrics every train/test step returns ("Invalid reduction dimension 0 for input
       with 0 dimensions"). The steps' scalars are returned as shape-[1] vectors instead, which that
       reduce averages across workers into the same scalars.
    """
    unbuilt = [layer.name for layer in model._flatten_layers() if not layer.built]
    if unbuilt or not model.optimizer.built:
        raise RuntimeError(f"model parts {unbuilt} (or the optimizer) are not built before fit; build them first.")
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    train_step, test_step = model.train_step, model.test_step

    def as_vectors(outputs):
        return tf.nest.map_structure(lambda value: tf.reshape(value, [-1]), outputs)

    model.train_step = lambda data: as_vectors(train_step(data))
    model.test_step = lambda data: as_vectors(test_step(data))


@contextlib.contextmanager
def global_dtype_policy(policy: str | None):
    """Sets Keras' global dtype policy for the block (None: leave it), then restores it.

    The networks create their inner layers with the global policy, so a mixed-precision model must
    be built *and reloaded* under its policy to compute as it did in training.
    """
    previous = keras.config.dtype_policy()
    if policy:
        keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _build_compiled_model(config, strategy) -> keras.Model:
    """Builds and compiles the model (under the config's mixed-precision policy), optimizer built."""
    policy = config.train.get("mixed_precision")
    with global_dtype_policy(policy):
        with strategy.scope():
            model = build_model(config)
            optimizer = keras.optimizers.Adam(config.train.learning_rate)
            if policy == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            model.compile(optimizer=optimizer, jit_compile=bool(config.train.jit_compile),
                          steps_per_execution=check_positive_int("train.steps_per_execution",
                                                                 config.train.get("steps_per_execution", 1)))
            checkpointing.build_optimizer(model)
            if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
                _adapt_to_multi_worker(model)
    return model


def train(config: ml_collections.ConfigDict, workdir, extra_callbacks=(), resume: bool = False) -> keras.Model:
    """Trains the model a config describes; writes config, logs, checkpoints, history and model into workdir.

    Args:
      config: a resolved config (see `base_config`).
      workdir: the run's directory; a workdir belongs to one config.
      extra_callbacks: more Keras callbacks for `fit`.
      resume: continue from the newest complete checkpoint in workdir/checkpoints (corrupt ones are
        reported by name and skipped). False (the library default) trains from step 0; the CLI resumes.

    Raises:
      TrainingDivergedError: the loss became NaN/Inf (no model and no checkpoint is written from it).
      TrainingCollapsedError: the encoder collapsed for `train.collapse_patience` epochs (model.keras is not
        written; the checkpoints are kept).
    """
    _check_train_config(config)
    strategy = make_strategy(config.train.strategy)  # first: a multi-worker strategy must precede any op
    role = worker_role(strategy)
    workdir = pathlib.Path(workdir)
    if role.is_chief:
        check_workdir_config(workdir, config)
        workdir.mkdir(parents=True, exist_ok=True)
        write_dir = workdir
    else:  # non-chief workers write (the collective-safe way) into a directory that is deleted
        write_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"tf_avae_{role.task_type}{role.task_id}_"))
    try:
        return _train(config, workdir, write_dir, strategy, role, tuple(extra_callbacks), bool(resume))
    finally:
        if not role.is_chief:
            shutil.rmtree(write_dir, ignore_errors=True)


class _CurveWriter(keras.callbacks.Callback):
    """Keeps the RobustnessCallback's records in the workdir (appending to those of earlier, resumed runs)."""

    def __init__(self, robustness, path):
        super().__init__()
        self.robustness, self.path = robustness, pathlib.Path(path)
        self.earlier = json.loads(self.path.read_text())["records"] if self.path.exists() else []

    def on_epoch_end(self, epoch, logs=None):
        done = {int(step) for step, _ in self.robustness.records}
        earlier = [r for r in self.earlier if int(r[0]) not in done]
        write_json(self.path, {"records": earlier + [[int(s), m] for s, m in self.robustness.records]})


def _robustness_callbacks(config, model, write_dir):
    """The during-training robustness curve (config.eval.every_steps), or nothing."""
    settings = config.get("eval")
    if settings is None or not settings.every_steps:
        return []
    from tf_avae.evaluation import RobustnessCallback

    probe_images, probe_labels = data.load_arrays(config.data.name, config.data.train_split,
                                                  limit=settings.probe_examples, seed=config.seed)
    test_images, test_labels = data.load_arrays(config.data.name, config.data.eval_split or "test",
                                                limit=settings.test_examples, seed=config.seed)
    robustness = RobustnessCallback(
        probe_images, probe_labels, test_images, test_labels, every_n_steps=settings.every_steps,
        radii=tuple(settings.radii), pgd_steps=settings.pgd_steps, log_dir=str(write_dir / TENSORBOARD_DIR / "robustness"),
        feature="backbone" if config.network.architecture == "resnet" else "mean", seed=config.seed,
        evaluate_at_start=int(model.optimizer.iterations.numpy()) == 0,
    )
    return [robustness, _CurveWriter(robustness, write_dir / CURVE_FILE)]


def _collapse_monitor(config):
    """The posterior-collapse watch (config.train.collapse_threshold), or None."""
    threshold = config.train.get("collapse_threshold")
    if threshold is None:
        return None
    from tf_avae.evaluation import CollapseMonitor

    images, _ = data.load_arrays(config.data.name, config.data.eval_split or config.data.train_split,
                                 limit=COLLAPSE_EXAMPLES, seed=config.seed)
    return CollapseMonitor(images, threshold=threshold, patience=config.train.get("collapse_patience"))


def _train(config, workdir, write_dir, strategy, role, extra_callbacks, resume) -> keras.Model:
    keras.utils.set_random_seed(config.seed)
    model = _build_compiled_model(config, strategy)
    manager = checkpointing.CheckpointManager(write_dir / CHECKPOINT_DIR, keep=config.train.get("keep_checkpoints", 3))
    manager.clean_stale_temporaries()
    restored = manager.restore_latest(model) if (resume and role.is_chief) else None
    if role.num_workers > 1:
        broadcast_from_chief(strategy, [*model.weights, *model.optimizer.variables,
                                        *checkpointing.rng_state_variables(model)])
    start_step = int(model.optimizer.iterations.numpy())
    if restored is not None:
        if int(restored.meta.get("seed", config.seed)) != int(config.seed):
            raise ValueError(f"checkpoint {restored.path} was written with seed {restored.meta.get('seed')}, "
                             f"the config has seed {config.seed}.")
        logging.info("Resuming from %s (step %d).", restored.path, start_step)
    write_json(write_dir / CONFIG_FILE, config_to_dict(config))

    steps_per_epoch = config.train.steps_per_epoch
    epochs = max(1, math.ceil(config.train.num_steps / steps_per_epoch))
    total_steps = epochs * steps_per_epoch
    history = dict(restored.meta.get("history", {})) if restored is not None else {}
    guard = StopOnNonFiniteLoss()
    collapse = _collapse_monitor(config)
    checkpointer = CheckpointCallback(
        manager, config.train.get("checkpoint_every_steps") or steps_per_epoch, steps_per_epoch, total_steps,
        guard, history,
        {"seed": int(config.seed), "model": config.model.name, "dataset": config.data.name,
         "tf_avae_version": _package_version(), "seconds_before": restored.meta.get("seconds", 0.0) if restored else 0.0},
    )
    callbacks = [
        guard,
        *([collapse] if collapse is not None else []),  # before TensorBoard: its `code_spread` is in the epoch logs
        keras.callbacks.TensorBoard(log_dir=str(write_dir / TENSORBOARD_DIR), update_freq="epoch"),
        *_robustness_callbacks(config, model, write_dir),
        *extra_callbacks,
        checkpointer,  # last: it sees the weights after every other callback, and refuses NaN ones
    ]
    # A resumed run first finishes its interrupted epoch, then runs the remaining whole epochs.
    segments = []
    epoch, offset = divmod(min(start_step, total_steps), steps_per_epoch)
    if offset:
        segments.append((epoch, epoch + 1, steps_per_epoch - offset))
        epoch += 1
    if epoch < epochs:
        segments.append((epoch, epochs, steps_per_epoch))
    logging.info("Training %s on %s for %d steps (%d epochs of %d) from step %d with %d replica(s) on %d worker(s); "
                 "workdir %s", config.model.name, config.data.name, total_steps, epochs, steps_per_epoch, start_step,
                 strategy.num_replicas_in_sync, role.num_workers, workdir)
    # A progress bar redrawn thousands of times floods a log file: off a terminal, one line per epoch.
    verbose = 2 if config.train.verbose == 1 and not sys.stdout.isatty() else config.train.verbose
    for first_epoch, end_epoch, steps in segments:
        step = int(model.optimizer.iterations.numpy())
        train_ds, eval_ds = build_datasets(config, model, start_step=step)
        model.fit(
            train_ds, initial_epoch=first_epoch, epochs=end_epoch, steps_per_epoch=steps,
            validation_data=eval_ds, callbacks=callbacks, verbose=verbose, shuffle=False,
        )
        if guard.failed_at_step is not None or (collapse is not None and collapse.stopped_at_epoch is not None):
            break
    if collapse is not None and collapse.stopped_at_epoch is not None:
        raise TrainingCollapsedError(
            f"The encoder's code stopped depending on its input (code_spread below {collapse.threshold:g} for "
            f"{collapse.collapsed_epochs} epochs in a row, train.collapse_patience={collapse.patience}); training "
            f"stopped at step {int(model.optimizer.iterations.numpy())} and {workdir / MODEL_FILE} was not written "
            f"(checkpoints are kept). Try a lower train.learning_rate (now {config.train.learning_rate}).")
    if guard.failed_at_step is not None:
        raise TrainingDivergedError(
            f"The training loss became NaN/Inf at step {guard.failed_at_step}; training stopped and nothing was "
            f"saved over {workdir / MODEL_FILE} (the last good model, if any, is intact; checkpoints are only "
            f"written from finite losses). Try a lower train.learning_rate (now {config.train.learning_rate})."
        )
    write_atomically(write_dir / MODEL_FILE, model.save)
    write_json(write_dir / HISTORY_FILE, {
        "history": history, "seconds": checkpointer.seconds(), "steps": int(model.optimizer.iterations.numpy()),
        "resumed_from_step": start_step if restored is not None else None,
        "skipped_checkpoints": manager.skipped, "weights_sha256": weights_fingerprint(model),
        **({SOURCE_VAE_KEY: _history_value(config.model.vae_workdir, "weights_sha256")}
           if config.model.name == "avae_ss" else {}),
    })
    return model


def _package_version() -> str:
    import tf_avae

    return getattr(tf_avae, "__version__", "unknown")
