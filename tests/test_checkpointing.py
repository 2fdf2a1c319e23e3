"""Checkpoints: atomic writes, corruption detection, NaN safety, kill-and-resume equality, mixed precision."""

import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from tf_avae import checkpointing, train_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMOKE = "configs/avae_color_mnist.py:smoke"


def load_config(name="vae_color_mnist", arg="smoke"):
    return helpers.load_config(name, arg)


def tiny_config(num_steps=6, steps_per_epoch=3, every=2, keep=3, **train):
    """The smoke VAE with a small ConvNet: a few steps take a second or two."""
    config = load_config()
    config.network.kwargs = {"filters": (8, 16), "dense_units": 32}
    config.train.num_steps = num_steps
    config.train.steps_per_epoch = steps_per_epoch
    config.train.checkpoint_every_steps = every
    config.train.keep_checkpoints = keep
    config.train.verbose = 0
    for key, value in train.items():
        config.train[key] = value
    return config


def checkpoint_steps(workdir):
    return sorted(step for step, _ in checkpointing.CheckpointManager(workdir / "checkpoints").candidates())


def weights_of(model):
    return [np.asarray(v) for v in model.weights]


# --------------------------------------------------------------------------- unit level
def _built_model():
    model = helpers.compiled(helpers.make_model("VAE"))
    checkpointing.build_optimizer(model)
    return model


def test_checkpoint_round_trip_restores_weights_optimizer_step_and_manifest(tmp_path):
    model = _built_model()
    model.optimizer.iterations.assign(7)
    manager = checkpointing.CheckpointManager(tmp_path, keep=2)
    path = manager.save(model, 7, {"seed": 1})
    assert path.name == "ckpt-000000007"
    manifest = json.loads((path / checkpointing.MANIFEST_FILE).read_text())
    assert set(manifest["files"]) == {checkpointing.STATE_FILE, checkpointing.META_FILE}

    other = _built_model()
    restored = checkpointing.CheckpointManager(tmp_path).restore_latest(other)
    assert restored.step == 7 and int(other.optimizer.iterations.numpy()) == 7
    for a, b in zip(weights_of(model), weights_of(other)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.optimizer.variables, other.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    for step in (8, 9):
        manager.save(model, step, {})
    assert [s for s, _ in manager.candidates()] == [9, 8]  # keep=2 most recent


def test_a_failing_checkpoint_write_leaves_no_checkpoint_and_no_temporary(tmp_path, monkeypatch):
    model = _built_model()

    def write_half_then_fail(path, *args, **kwargs):
        pathlib.Path(path).write_bytes(b"\x89HDF half a file")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(model, "save_weights", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        checkpointing.CheckpointManager(tmp_path).save(model, 3, {})
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_killed_writers_are_removed_and_never_read(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".tmp-ckpt-000000005-{int(dead.stdout)}-abcd1234"
    stale.mkdir()
    (stale / checkpointing.STATE_FILE).write_bytes(b"partial")
    manager = checkpointing.CheckpointManager(tmp_path)
    assert manager.latest() is None  # a temporary is never a candidate
    assert manager.clean_stale_temporaries() == [stale] and not stale.exists()


# --------------------------------------------------------------------------- through train_lib
def test_truncated_checkpoint_is_reported_by_name_and_the_previous_one_is_used(tmp_path, caplog):
    config = tiny_config(num_steps=6, steps_per_epoch=3, every=2, keep=5)
    first = train_lib.train(config, tmp_path)
    expected = weights_of(first)
    assert checkpoint_steps(tmp_path) == [2, 4, 6]

    truncated = tmp_path / "checkpoints" / "ckpt-000000006" / checkpointing.STATE_FILE
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    partial = tmp_path / "checkpoints" / "ckpt-000000005"  # a checkpoint without its manifest
    (partial).mkdir()
    (partial / checkpointing.STATE_FILE).write_bytes(b"not a checkpoint")

    with caplog.at_level("WARNING"):
        resumed = train_lib.train(config, tmp_path, resume=True)
    history = json.loads((tmp_path / train_lib.HISTORY_FILE).read_text())
    assert history["resumed_from_step"] == 4
    skipped = "\n".join(history["skipped_checkpoints"])
    assert str(truncated) in skipped and "truncated" in skipped
    assert str(partial / checkpointing.MANIFEST_FILE) in skipped
    assert str(truncated) in caplog.text  # reported in the log too, by name
    for a, b in zip(expected, weights_of(resumed)):  # and the run still ends where it should
        np.testing.assert_allclose(a, b, atol=1e-5)


class _PoisonWeights(keras.callbacks.Callback):
    """Fault injection: a weight turns NaN at the end of step 4 (as a diverging run would)."""

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == 4:
            weight = self.model.decoder.trainable_variables[0]
            weight.assign(np.full(weight.shape, np.nan, np.float32))


def test_no_checkpoint_is_written_from_a_non_finite_state_and_resume_uses_the_last_good_one(tmp_path):
    config = tiny_config(num_steps=10, steps_per_epoch=5, every=1, keep=10)
    with pytest.raises(train_lib.TrainingDivergedError, match="NaN"):
        train_lib.train(config, tmp_path, extra_callbacks=[_PoisonWeights()])
    assert checkpoint_steps(tmp_path) == [1, 2, 3]  # step 4's weights were poisoned, step 5's loss NaN
    manager = checkpointing.CheckpointManager(tmp_path / "checkpoints")
    for _, path in manager.candidates():
        assert math.isfinite(manager.verify(path).meta["loss"])
    assert not (tmp_path / train_lib.MODEL_FILE).exists()

    model = train_lib.train(config, tmp_path, resume=True)
    assert json.loads((tmp_path / train_lib.HISTORY_FILE).read_text())["resumed_from_step"] == 3
    assert checkpointing.all_finite(model.weights) and int(model.optimizer.iterations.numpy()) == 10


# --------------------------------------------------------------------------- kill -9 and resume (CLI)
_THROTTLED_TRAIN = textwrap.dedent("""
    # scripts/train.py, slowed down to 0.3 s per step so that the test can kill it mid-epoch.
    import runpy, sys, time
    import keras
    from tf_avae import train_lib

    class Throttle(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.3)

    original = train_lib.train
    train_lib.train = lambda config, workdir, extra_callbacks=(), resume=False: original(
        config, workdir, extra_callbacks=(*extra_callbacks, Throttle()), resume=resume)
    sys.argv = ["scripts/train.py", *sys.argv[1:]]
    runpy.run_path("scripts/train.py", run_name="__main__")
""")


def _train_command(workdir, script="scripts/train.py"):
    return [sys.executable, str(script), "--config", SMOKE, "--workdir", str(workdir),
            "--config.train.checkpoint_every_steps=3"]


def _environment():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def test_a_run_killed_mid_epoch_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    throttled = tmp_path / "throttled_train.py"
    throttled.write_text(_THROTTLED_TRAIN)
    with open(tmp_path / "killed.log", "w") as victim_log:
        victim = subprocess.Popen(_train_command(killed_dir, throttled), cwd=ROOT, env=_environment(),
                                  stdout=victim_log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            while not checkpoint_steps(killed_dir):
                assert victim.poll() is None, (
                    f"the run ended before its first checkpoint: {(tmp_path / 'killed.log').read_text()[-2000:]}")
                assert time.monotonic() < deadline, "no checkpoint appeared in time"
                time.sleep(0.05)
            victim.send_signal(signal.SIGKILL)  # no clean-up handlers run: as a lost machine or an OOM kill
            victim.wait(timeout=60)
        finally:
            if victim.poll() is None:
                victim.kill()
    assert victim.returncode == -signal.SIGKILL
    assert not (killed_dir / train_lib.MODEL_FILE).exists(), "the run finished before it was killed"
    interrupted_at = checkpoint_steps(killed_dir)[-1]

    # The same command again resumes; meanwhile the uninterrupted reference run trains in this process
    # (the same config: configs/avae_color_mnist.py:smoke with checkpoints every 3 steps, seed 0).
    with open(tmp_path / "resumed.log", "w") as resumed_log:
        resumed = subprocess.Popen(_train_command(killed_dir), cwd=ROOT, env=_environment(), stdout=resumed_log,
                                   stderr=subprocess.STDOUT)
        try:
            config = load_config("avae_color_mnist")
            config.train.checkpoint_every_steps = 3
            expected = train_lib.train(config, reference_dir)
            assert resumed.wait(timeout=300) == 0, (tmp_path / "resumed.log").read_text()[-3000:]
        finally:
            if resumed.poll() is None:
                resumed.kill()
    assert json.loads((killed_dir / train_lib.CONFIG_FILE).read_text()) == train_lib.config_to_dict(config)

    history = json.loads((killed_dir / train_lib.HISTORY_FILE).read_text())
    assert 0 < history["resumed_from_step"] < 20 and history["resumed_from_step"] % 10 != 0  # mid-epoch
    assert history["resumed_from_step"] >= interrupted_at
    assert history["steps"] == 20 and len(history["history"]["loss"]) == 2
    actual = train_lib.load_model(killed_dir)
    for a, b in zip(expected.weights, actual.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, err_msg=a.path)
    for a, b in zip(expected.optimizer.variables, actual.optimizer.variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, err_msg=a.path)


# --------------------------------------------------------------------------- mixed precision
def test_mixed_float16_wraps_the_optimizer_and_trains_with_a_float32_loss(tmp_path):
    config = tiny_config(num_steps=2, steps_per_epoch=2, every=2, mixed_precision="mixed_float16")
    model = train_lib.train(config, tmp_path)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.dtype_policy.name == "mixed_float16"
    assert model.encoder.dtype_policy.name == "mixed_float16"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored afterwards
    assert all(v.dtype == "float32" for v in model.trainable_variables)  # float32 master weights
    loss = model.train_on_batch(helpers.images(8), return_dict=True)["loss"]
    assert np.isfinite(loss)
    reloaded = train_lib.load_model(tmp_path)
    assert isinstance(reloaded.optimizer, keras.optimizers.LossScaleOptimizer)


def test_bad_mixed_precision_value_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="train.mixed_precision"):
        train_lib.train(tiny_config(mixed_precision="float16"), tmp_path)
    assert not (tmp_path / train_lib.CONFIG_FILE).exists()


@pytest.mark.parametrize("name", ["AVAE", "AE"])
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_objectives_run_in_float32_under_mixed_precision(policy, name):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = helpers.make_model(name)
    finally:
        keras.config.set_dtype_policy(previous)
    images = tf.cast(helpers.images(4), model.compute_dtype)
    terms = model.compute_loss_terms(images, tf.constant(0, tf.int64), training=True)
    assert {name: value.dtype for name, value in terms.items()} == {name: tf.float32 for name in terms}


def test_tf_config_is_parsed_for_the_number_of_workers(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"], "chief": ["c:3"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert train_lib._tf_config_tasks() == 3
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        train_lib._tf_config_tasks()
    monkeypatch.delenv("TF_CONFIG")
    assert train_lib._tf_config_tasks() == 0
    assert train_lib.worker_role(tf.distribute.get_strategy()).is_chief


# --------------------------------------------------------------------------- a longer budget
def test_a_finished_run_trained_for_more_steps_equals_one_longer_run_and_other_changes_are_refused(tmp_path):
    extended_dir, reference_dir = tmp_path / "extended", tmp_path / "reference"
    train_lib.train(tiny_config(num_steps=6, steps_per_epoch=3, every=3), extended_dir)
    extended = train_lib.train(tiny_config(num_steps=9, steps_per_epoch=3, every=3), extended_dir, resume=True)
    reference = train_lib.train(tiny_config(num_steps=9, steps_per_epoch=3, every=3), reference_dir)

    history = json.loads((extended_dir / train_lib.HISTORY_FILE).read_text())
    assert history["steps"] == 9 and history["resumed_from_step"] == 6
    assert json.loads((extended_dir / train_lib.CONFIG_FILE).read_text())["train"]["num_steps"] == 9
    for a, b in zip(reference.weights, extended.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, err_msg=a.path)

    before = (extended_dir / train_lib.MODEL_FILE).read_bytes()
    for change in ({"num_steps": 3}, {"learning_rate": 0.5}):
        config = tiny_config(**{"num_steps": 9, "steps_per_epoch": 3, "every": 3, **change})
        with pytest.raises(ValueError, match="different config"):
            train_lib.train(config, extended_dir, resume=True)
    assert (extended_dir / train_lib.MODEL_FILE).read_bytes() == before
