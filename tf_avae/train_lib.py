"""Config -> strategy, data, model, fit, saved model. Used by `scripts/train.py`.

A workdir holds:
    config.json      the resolved config of the run
    model.keras      the trained model (written atomically, only from a finite loss)
    history.json     per-epoch metrics
    tensorboard/     TensorBoard event files
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import tempfile
import time
from typing import Any, Callable

import keras
import ml_collections
import tensorflow as tf
from absl import logging
from ml_collections import config_dict

from tf_avae import augment, data, models
from tf_avae.networks import build_networks
from tf_avae.validation import check_choice, check_positive, check_positive_int

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
TENSORBOARD_DIR = "tensorboard"

STRATEGIES = ("auto", "default", "mirrored")


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; nothing in the workdir was overwritten."""


# --------------------------------------------------------------------------- configs
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
            "verbose": 1,
            "eval_batches": 20,
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


def check_workdir_config(workdir, config) -> None:
    """A workdir belongs to one config: rerunning the same one is fine, another one is refused."""
    path = pathlib.Path(workdir) / CONFIG_FILE
    if not path.exists():
        return
    differences = _differences(json.loads(path.read_text()), config_to_dict(config))
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
        return augment.GaussianNoiseAugment(spec.pop("stddev"), clip=spec.pop("clip", False), seed=seed)
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
    "avae": ("AVAE", lambda cls, e, d, seed, **kw: cls(e, d, seed=seed, **kw)),
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


def make_strategy(name: str) -> tf.distribute.Strategy:
    """'auto': MirroredStrategy when more than one GPU is visible, else the default strategy."""
    check_choice("train.strategy", name, STRATEGIES)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _check_train_config(config):
    check_positive_int("train.batch_size", config.train.batch_size)
    check_positive_int("train.num_steps", config.train.num_steps)
    check_positive_int("train.steps_per_epoch", config.train.steps_per_epoch)
    check_positive("train.learning_rate", config.train.learning_rate)
    check_choice("train.verbose", config.train.verbose, (0, 1, 2))
    for key in ("limit", "eval_limit"):
        if config.data[key] is not None:
            check_positive_int(f"data.{key}", config.data[key])


def build_datasets(config, model: keras.Model | None = None):
    """(train dataset repeated forever, eval dataset or None). AVAE-SS reads no data: (None, None)."""
    if config.model.name == "avae_ss":
        return None, None
    train = data.build_dataset(
        config.data.name, config.data.train_split, config.train.batch_size, shuffle=True, seed=config.seed,
        limit=config.data.limit, repeat=True, drop_remainder=True,
    )
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


def load_model(workdir) -> keras.Model:
    path = pathlib.Path(workdir) / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"No trained model at {path}: train one with scripts/train.py --workdir {workdir}.")
    return keras.saving.load_model(path)


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


def train(config: ml_collections.ConfigDict, workdir, extra_callbacks=()) -> keras.Model:
    """Trains the model a config describes; writes config, logs, history and model into workdir."""
    _check_train_config(config)
    check_workdir_config(workdir, config)
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config.train.strategy)
    with strategy.scope():
        model = build_model(config)
        model.compile(optimizer=keras.optimizers.Adam(config.train.learning_rate),
                      jit_compile=bool(config.train.jit_compile))
    train_ds, eval_ds = build_datasets(config, model)
    write_json(workdir / CONFIG_FILE, config_to_dict(config))

    epochs = max(1, math.ceil(config.train.num_steps / config.train.steps_per_epoch))
    guard = StopOnNonFiniteLoss()
    callbacks = [
        guard,
        keras.callbacks.TensorBoard(log_dir=str(workdir / TENSORBOARD_DIR), update_freq="epoch"),
        *extra_callbacks,
    ]
    logging.info("Training %s on %s for %d steps (%d epochs of %d) with %d replica(s); workdir %s",
                 config.model.name, config.data.name, epochs * config.train.steps_per_epoch, epochs,
                 config.train.steps_per_epoch, strategy.num_replicas_in_sync, workdir)
    start = time.perf_counter()
    history = model.fit(
        train_ds, epochs=epochs, steps_per_epoch=config.train.steps_per_epoch,
        validation_data=eval_ds, callbacks=callbacks, verbose=config.train.verbose, shuffle=False,
    )
    seconds = time.perf_counter() - start
    if guard.failed_at_step is not None:
        raise TrainingDivergedError(
            f"The training loss became NaN/Inf at step {guard.failed_at_step}; training stopped and nothing was "
            f"saved over {workdir / MODEL_FILE} (the last good model, if any, is intact). Try a lower "
            f"train.learning_rate (now {config.train.learning_rate})."
        )
    write_atomically(workdir / MODEL_FILE, model.save)
    write_json(workdir / HISTORY_FILE, {"history": history.history, "seconds": seconds,
                                        "steps": int(model.optimizer.iterations.numpy())})
    return model
