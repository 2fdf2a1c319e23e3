"""Exports a trained workdir's encoder (and decoder) as a SavedModel that TF Serving loads.

Layout (TF Serving's: a model base path holding integer version directories, the highest served)::

    saved_models/<name>/<version>/
        saved_model.pb
        variables/
        assets/card.json        the robustness card: eval.json figures, resolved config, versions
    saved_models/<name>/.tmp-<version>-<pid>-<random>/   an export being written (never served)

Signatures:

* ``serving_default``: ``images`` float32 ``[batch, H, W, C]`` in [0, 1] -> ``mean``, ``log_variance``
  (float32 ``[batch, latent_dim]``): the representation is ``mean``.
* ``decode``: ``latents`` float32 ``[batch, latent_dim]`` -> ``images`` (the decoder mean).
* ``reconstruct``: ``images`` -> ``images`` (decoder mean at the posterior mean).

A version is written into a temporary directory beside its final place and renamed into place only
when complete, so a failed or interrupted export never leaves a (half-written) version behind.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import pathlib
import re
import secrets
import shutil
import tempfile
import time
from typing import Any

import keras
import tensorflow as tf

import tf_avae
from tf_avae import train_lib

DEFAULT_EXPORT_DIR = "saved_models"
CARD_FILE = "card.json"
SIGNATURES = ("serving_default", "decode", "reconstruct")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TMP = re.compile(r"^\.tmp-\d+-(\d+)-[0-9a-f]+$")


class ExportError(ValueError):
    """Bad export input (workdir, name, version, eval.json); nothing was written."""


# --------------------------------------------------------------------------- the exported module
def _checked_images(images):
    tf.debugging.assert_all_finite(images, "images must be finite float32 values in [0, 1]")
    tf.debugging.assert_greater_equal(images, 0.0, message="images must be float32 values in [0, 1]")
    tf.debugging.assert_less_equal(images, 1.0, message="images must be float32 values in [0, 1]")
    return images


class EncoderModule(tf.Module):
    """What is saved: the model's weights (not its optimizer) and three traced functions
    (float32 in, float32 out, whatever the model's mixed-precision policy)."""

    def __init__(self, model: keras.Model, card_path: str | None = None):
        super().__init__(name="tf_avae_encoder")
        # Only the weights are tracked (as keras.export.ExportArchive does): the optimizer stays out.
        self.model_variables = list(model.weights)
        height, width, channels = model.image_shape
        image_spec = tf.TensorSpec([None, height, width, channels], tf.float32, name="images")
        latent_spec = tf.TensorSpec([None, model.latent_dim], tf.float32, name="latents")

        def serve(images):
            mean, log_variance = model.encode(_checked_images(images), training=False)
            return {"mean": tf.cast(mean, tf.float32), "log_variance": tf.cast(log_variance, tf.float32)}

        def decode(latents):
            return {"images": tf.cast(model.decode(latents, training=False), tf.float32)}

        def reconstruct(images):
            mean, _ = model.encode(_checked_images(images), training=False)
            return {"images": tf.cast(model.decode(mean, training=False), tf.float32)}

        self.serve = tf.function(serve, input_signature=[image_spec])
        self.decode = tf.function(decode, input_signature=[latent_spec])
        self.reconstruct = tf.function(reconstruct, input_signature=[image_spec])
        if card_path is not None:
            self.card = tf.saved_model.Asset(card_path)

    def signatures(self) -> dict[str, Any]:
        return {
            "serving_default": self.serve.get_concrete_function(),
            "decode": self.decode.get_concrete_function(),
            "reconstruct": self.reconstruct.get_concrete_function(),
        }


# --------------------------------------------------------------------------- checks
def check_version(version) -> int | None:
    """None (next free version) or an integer >= 0 (TF Serving version directories are integers)."""
    if version is None:
        return None
    if isinstance(version, numbers.Integral) and not isinstance(version, bool):
        version = int(version)
    if isinstance(version, bool) or not isinstance(version, int):
        if isinstance(version, str) and version.strip().isdigit():
            return int(version.strip())
        raise ExportError(f"version must be a non-negative integer (TF Serving's version directories); got {version!r}.")
    if version < 0:
        raise ExportError(f"version must be a non-negative integer; got {version}.")
    return int(version)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ExportError(
            f"name must be a directory name of letters, digits, '.', '_' or '-' (not starting with '.'); got {name!r}."
        )
    return name


def default_name(config) -> str:
    """`<model>_<dataset>`, e.g. `avae_color_mnist`."""
    return f"{config.model.name}_{config.data.name}"


def existing_versions(model_dir) -> list[int]:
    """The integer version directories under `model_dir` (what TF Serving would consider), ascending."""
    model_dir = pathlib.Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(child.name) for child in model_dir.iterdir() if child.is_dir() and child.name.isdigit())


def read_eval_results(workdir) -> dict[str, float] | None:
    """The workdir's eval.json (a flat JSON object of numbers), None when there is none."""
    path = pathlib.Path(workdir) / train_lib.EVAL_FILE
    if not path.exists():
        return None
    try:
        results = json.loads(path.read_text())
    except ValueError as error:
        raise ExportError(f"{path} is not valid JSON ({error}); nothing was exported.") from None
    if not isinstance(results, dict):
        raise ExportError(f"{path} must hold a flat JSON object of numbers; got {type(results).__name__}.")
    bad = [key for key, value in results.items()
           if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)]
    if bad:
        raise ExportError(f"{path} must map names to finite numbers; these are not: {sorted(bad)[:10]}.")
    return {str(key): float(value) for key, value in results.items()}


def _history(workdir) -> dict[str, Any]:
    path = pathlib.Path(workdir) / train_lib.HISTORY_FILE
    if not path.exists():
        return {}
    try:
        history = json.loads(path.read_text())
    except ValueError:
        return {}
    return {key: history.get(key) for key in ("steps", "seconds", "weights_sha256") if key in history}


def build_card(workdir, config, model, name: str, version: int) -> dict[str, Any]:
    """The robustness card stored as assets/card.json."""
    evaluation = read_eval_results(workdir)
    return {
        "name": name,
        "version": version,
        "model": type(model).__name__,
        "tf_avae_version": tf_avae.__version__,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "workdir": str(pathlib.Path(workdir).resolve()),
        "image_shape": list(model.image_shape),
        "latent_dim": int(model.latent_dim),
        "input": "images: float32 [batch, height, width, channels], values in [0, 1]",
        "signatures": {
            "serving_default": {"inputs": ["images"], "outputs": ["mean", "log_variance"]},
            "decode": {"inputs": ["latents"], "outputs": ["images"]},
            "reconstruct": {"inputs": ["images"], "outputs": ["images"]},
        },
        "training": _history(workdir),
        "evaluation": evaluation,  # the workdir's eval.json, None if it was not evaluated
        "config": train_lib.config_to_dict(config),
    }


def _clean_stale_temporaries(model_dir: pathlib.Path) -> None:
    """Removes `.tmp-*` directories of exports whose process is gone (killed writers)."""
    if not model_dir.is_dir():
        return
    for child in model_dir.iterdir():
        match = _TMP.match(child.name)
        if match and int(match.group(1)) != os.getpid():
            try:
                os.kill(int(match.group(1)), 0)
            except ProcessLookupError:
                shutil.rmtree(child, ignore_errors=True)
            except PermissionError:
                pass


# --------------------------------------------------------------------------- export
def export_model(model: keras.Model, path, card: dict[str, Any] | None = None) -> pathlib.Path:
    """Writes `model` as a SavedModel at `path` (which must not exist) -- not atomic by itself."""
    path = pathlib.Path(path)
    if not model.built:  # a subclassed model must be built before export
        model(tf.zeros((1, *model.image_shape)), training=False)
    with tempfile.TemporaryDirectory(prefix="tf_avae_card_") as card_dir:
        card_path = None
        if card is not None:
            card_path = os.path.join(card_dir, CARD_FILE)
            with open(card_path, "w") as handle:
                json.dump(card, handle, indent=2, sort_keys=True)
        module = EncoderModule(model, card_path)
        tf.saved_model.save(module, str(path), signatures=module.signatures())
    return path


def export_workdir(workdir, name: str | None = None, version=None, export_dir=DEFAULT_EXPORT_DIR) -> pathlib.Path:
    """Exports the trained model of `workdir` to `<export_dir>/<name>/<version>/`; returns that path.

    Args:
      workdir: a training workdir (holds config.json and model.keras; eval.json is optional).
      name: the served model's name; default `<model>_<dataset>` from the workdir's config.
      version: an integer >= 0 that does not exist yet; default: highest existing + 1 (1 for the first).
      export_dir: the base directory (TF Serving's model base path is `<export_dir>/<name>`).

    Raises:
      ExportError: bad name/version/eval.json, or the version exists. FileNotFoundError: no trained
      model in `workdir`. Nothing is written in any of these cases, nor when writing fails.
    """
    workdir = pathlib.Path(workdir)
    version = check_version(version)
    if not workdir.is_dir():
        raise FileNotFoundError(f"workdir {str(workdir)!r} does not exist.")
    config = train_lib.load_config(workdir)
    if not (workdir / train_lib.MODEL_FILE).exists():
        raise FileNotFoundError(
            f"workdir {str(workdir)!r} has no trained model ({train_lib.MODEL_FILE}); train it first with "
            f"scripts/train.py --workdir {workdir} (an interrupted run resumes from its checkpoints)."
        )
    name = check_name(name if name is not None else default_name(config))
    model_dir = pathlib.Path(export_dir) / name
    versions = existing_versions(model_dir)
    if version is None:
        version = (max(versions) + 1) if versions else 1
    elif version in versions or (model_dir / str(version)).exists():
        raise ExportError(
            f"{model_dir / str(version)} already exists (versions there: {versions}); pick another --version or "
            "leave it out to use the next free one. Nothing was written."
        )
    read_eval_results(workdir)  # fail on a bad eval.json before loading anything
    model = train_lib.load_model(workdir)
    card = build_card(workdir, config, model, name, version)

    created_model_dir = not model_dir.exists()
    model_dir.mkdir(parents=True, exist_ok=True)
    _clean_stale_temporaries(model_dir)
    final = model_dir / str(version)
    tmp = model_dir / f".tmp-{version}-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        export_model(model, tmp, card)
        if not (tmp / "saved_model.pb").is_file():
            raise RuntimeError(f"the SavedModel writer left no saved_model.pb in {tmp}.")
        if final.exists():
            raise ExportError(f"{final} appeared while exporting (another export?); this one is discarded.")
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if created_model_dir and model_dir.exists() and not any(model_dir.iterdir()):
            model_dir.rmdir()
    return final


def read_card(export_path) -> dict[str, Any]:
    """The robustness card of an exported version (`<version>/assets/card.json`)."""
    return json.loads((pathlib.Path(export_path) / "assets" / CARD_FILE).read_text())
