"""Atomic, verified training checkpoints that a rerun of the same command resumes from.

Layout of ``<workdir>/checkpoints/``::

    ckpt-000000060/              one complete checkpoint (the number is the global step)
        state.weights.h5         model weights + optimizer state (incl. the step counter `iterations`)
        meta.json                step, epoch, seed, metrics of the completed epochs, loss, versions
        MANIFEST.json            size and SHA-256 of every other file; written last
    .tmp-ckpt-000000080-<pid>-<random>/   a checkpoint being written (never read; removed when stale)

A checkpoint is written into a temporary directory next to its final name, its files are flushed
to disk, the manifest is written last, and the directory is renamed into place in one step: a killed
writer leaves only a ``.tmp-*`` directory, never a ``ckpt-*`` one. Reading verifies the manifest
(sizes and SHA-256); a checkpoint that fails is reported by the name of the bad file and skipped in
favour of the previous complete one -- never loaded.

The random state of a run is the model seed plus the step counter (every draw in a step is a
stateless function of both, see :mod:`tf_avae.rng`), plus the state of any Keras
``SeedGenerator`` a layer owns (the SimCLR augmentation of AAVAE draws from one; Keras'
``save_weights`` leaves those out, so ``meta.json`` stores them under ``rng_state``). The data
position is the step counter too (see :func:`tf_avae.train_lib.build_datasets`). So
``state.weights.h5`` + ``meta.json`` hold all a resumed run needs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import re
import secrets
import shutil
import time
from typing import Any, Callable, Iterator

import keras
import numpy as np
from absl import logging

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "state.weights.h5"
META_FILE = "meta.json"
MANIFEST_FILE = "MANIFEST.json"
FORMAT_VERSION = 1

_NAME = re.compile(r"^ckpt-(\d+)$")
_TMP_PREFIX = ".tmp-ckpt-"
_TMP_NAME = re.compile(r"^\.tmp-ckpt-\d+-(\d+)-[0-9a-f]+$")


class CorruptCheckpointError(RuntimeError):
    """A checkpoint failed verification; the message names the checkpoint and the bad file."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: its directory, global step and metadata."""

    path: pathlib.Path
    step: int
    meta: dict[str, Any]

    @property
    def state_path(self) -> pathlib.Path:
        return self.path / STATE_FILE


def checkpoint_name(step: int) -> str:
    return f"ckpt-{int(step):09d}"


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def rng_state_variables(model: keras.Model) -> list:
    """Model variables that are neither weights nor metrics: the SeedGenerator states."""
    known = {id(v) for v in model.weights} | {id(v) for v in getattr(model, "metrics_variables", [])}
    return [v for v in model.variables if id(v) not in known]


def get_rng_state(model: keras.Model) -> list[list]:
    return [[v.path, np.asarray(keras.ops.convert_to_numpy(v)).tolist()] for v in rng_state_variables(model)]


def set_rng_state(model: keras.Model, state: list[list]) -> None:
    variables = rng_state_variables(model)
    paths = [v.path for v in variables]
    if [path for path, _ in state] != paths:
        raise ValueError(f"the checkpoint's RNG state is for variables {[p for p, _ in state]}, the model has {paths}.")
    for variable, (_, value) in zip(variables, state):
        variable.assign(np.asarray(value, dtype=variable.dtype))


def all_finite(variables) -> bool:
    """True when every value of every variable is finite (NaN/Inf weights are never checkpointed)."""
    for variable in variables:
        value = np.asarray(keras.ops.convert_to_numpy(variable))
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            return False
    return True


class CheckpointManager:
    """Writes, verifies, lists, prunes and restores checkpoints in one directory.

    Args:
      directory: where the ``ckpt-*`` directories live (created on the first save).
      keep: how many of the most recent complete checkpoints to keep (older ones are deleted).
      report: called with a message for every checkpoint that is skipped as corrupt.
    """

    def __init__(self, directory, keep: int = 3, report: Callable[[str], None] | None = None):
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be an integer >= 1; got {keep!r}.")
        self.directory = pathlib.Path(directory)
        self.keep = keep
        self.report = report or logging.warning
        self.skipped: list[str] = []

    # ------------------------------------------------------------------ listing / verification
    def candidates(self) -> list[tuple[int, pathlib.Path]]:
        """(step, path) of every ``ckpt-*`` directory, newest first (not yet verified)."""
        if not self.directory.is_dir():
            return []
        found = []
        for child in self.directory.iterdir():
            match = _NAME.match(child.name)
            if match and child.is_dir():
                found.append((int(match.group(1)), child))
        return sorted(found, reverse=True)

    def verify(self, path) -> Checkpoint:
        """The checkpoint at ``path`` if its manifest, sizes and SHA-256 all match; raises
        :class:`CorruptCheckpointError` naming the bad file otherwise."""
        path = pathlib.Path(path)
        manifest_path = path / MANIFEST_FILE
        if not manifest_path.is_file():
            raise CorruptCheckpointError(f"checkpoint {path} is incomplete: {manifest_path} is missing.")
        try:
            manifest = json.loads(manifest_path.read_text())
            files = manifest["files"]
            step = int(manifest["step"])
        except (ValueError, KeyError, TypeError) as error:
            raise CorruptCheckpointError(f"checkpoint {path} has an unreadable manifest {manifest_path}: {error}")
        for required in (STATE_FILE, META_FILE):
            if required not in files:
                raise CorruptCheckpointError(f"checkpoint {path}: {manifest_path} does not list {required}.")
        for name, expected in sorted(files.items()):
            file = path / name
            if not file.is_file():
                raise CorruptCheckpointError(f"checkpoint {path}: file {file} is missing.")
            size = file.stat().st_size
            if size != expected["size"]:
                raise CorruptCheckpointError(
                    f"checkpoint {path}: file {file} is corrupt or truncated ({size} bytes, the manifest says "
                    f"{expected['size']})."
                )
            digest = sha256_of(file)
            if digest != expected["sha256"]:
                raise CorruptCheckpointError(
                    f"checkpoint {path}: file {file} is corrupt (SHA-256 {digest[:16]}..., the manifest says "
                    f"{expected['sha256'][:16]}...)."
                )
        match = _NAME.match(path.name)
        if match and int(match.group(1)) != step:
            raise CorruptCheckpointError(f"checkpoint {path}: its manifest is for step {step}, not {match.group(1)}.")
        try:
            meta = json.loads((path / META_FILE).read_text())
        except ValueError as error:
            raise CorruptCheckpointError(f"checkpoint {path}: file {path / META_FILE} is not JSON: {error}")
        return Checkpoint(path, step, meta)

    def _skip(self, error: Exception) -> None:
        message = f"{error} Skipping it; the previous complete checkpoint is used instead."
        self.skipped.append(message)
        self.report(message)

    def verified(self) -> Iterator[Checkpoint]:
        """Every checkpoint that verifies, newest first; corrupt ones are reported (by name) and skipped."""
        for _, path in self.candidates():
            try:
                checkpoint = self.verify(path)
            except CorruptCheckpointError as error:
                self._skip(error)
                continue
            yield checkpoint

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint that verifies; corrupt ones are reported (by name) and skipped."""
        return next(self.verified(), None)

    # ------------------------------------------------------------------ writing
    def clean_stale_temporaries(self) -> list[pathlib.Path]:
        """Removes ``.tmp-ckpt-*`` directories left by writers that were killed (their pid is gone)."""
        removed = []
        if not self.directory.is_dir():
            return removed
        for child in self.directory.iterdir():
            match = _TMP_NAME.match(child.name)
            if match and not _pid_alive(int(match.group(1))):
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child)
        return removed

    def save(self, model: keras.Model, step: int, meta: dict[str, Any]) -> pathlib.Path:
        """Writes the model's weights and optimizer state as checkpoint ``step``; atomic."""
        step = int(step)
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / checkpoint_name(step)
        tmp = self.directory / f"{_TMP_PREFIX}{step:09d}-{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir()
        try:
            model.save_weights(str(tmp / STATE_FILE))
            meta = {**meta, "step": step, "format": FORMAT_VERSION, "written_at": time.time(),
                    "rng_state": get_rng_state(model)}
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=float))
            files = {}
            for name in (STATE_FILE, META_FILE):
                _fsync(tmp / name)
                files[name] = {"size": (tmp / name).stat().st_size, "sha256": sha256_of(tmp / name)}
            manifest = {"step": step, "format": FORMAT_VERSION, "files": files}
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
            _fsync(tmp / MANIFEST_FILE)
            _fsync(tmp)
            if final.exists():  # the same step written again (a rerun): swap the old one out first
                old = self.directory / f"{_TMP_PREFIX}{step:09d}-{os.getpid()}-{secrets.token_hex(4)}"
                os.rename(final, old)
                os.rename(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, final)
            _fsync(self.directory)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.prune()
        return final

    def prune(self) -> None:
        """Keeps the `keep` newest checkpoints."""
        for _, path in self.candidates()[self.keep :]:
            shutil.rmtree(path, ignore_errors=True)

    # ------------------------------------------------------------------ reading
    def restore(self, model: keras.Model, checkpoint: Checkpoint) -> None:
        """Loads weights, optimizer state (the optimizer must be built, see :func:`build_optimizer`)
        and the SeedGenerator states."""
        model.load_weights(str(checkpoint.state_path))
        set_rng_state(model, checkpoint.meta.get("rng_state", []))

    def restore_latest(self, model: keras.Model) -> Checkpoint | None:
        """Restores the newest checkpoint that verifies and loads; returns it (None: nothing to resume)."""
        for checkpoint in self.verified():
            try:
                self.restore(model, checkpoint)
            except Exception as error:  # noqa: BLE001 -- any load failure means "do not use this one"
                self._skip(CorruptCheckpointError(
                    f"checkpoint {checkpoint.path}: {checkpoint.state_path} could not be loaded "
                    f"({type(error).__name__}: {error})."
                ))
                continue
            return checkpoint
        return None


def build_optimizer(model: keras.Model) -> None:
    """Creates the optimizer's variables (slots, step counter) so a checkpoint can be loaded into them."""
    variables = model.trainable_parameters() if hasattr(model, "trainable_parameters") else model.trainable_variables
    if not model.optimizer.built:
        model.optimizer.build(variables)
