"""Two local worker processes train with MultiWorkerMirroredStrategy from TF_CONFIG."""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys

import pytest

from tf_avae import train_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
def test_two_workers_end_with_identical_weights_and_only_the_chief_writes(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "2",
               "CUDA_VISIBLE_DEVICES": ""}
        command = [sys.executable, "scripts/train.py", "--config", "configs/vae_color_mnist.py:smoke",
                   "--workdir", str(tmp_path / f"worker{index}"),  # one path per machine; here two dirs
                   "--config.train.num_steps=4", "--config.train.steps_per_epoch=2",
                   "--config.train.checkpoint_every_steps=1"]
        log = open(tmp_path / f"worker{index}.log", "w")
        processes.append((subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    try:
        for process, log in processes:
            process.wait(timeout=110)
            log.close()
    finally:
        for process, _ in processes:
            if process.poll() is None:
                process.kill()
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    for (process, _), log in zip(processes, logs):
        assert process.returncode == 0, log[-4000:]
    assert all("2 replica(s) on 2 worker(s)" in log for log in logs)

    fingerprints = [re.search(r"weights sha256: ([0-9a-f]{64})", log).group(1) for log in logs]
    assert fingerprints[0] == fingerprints[1]  # bitwise identical weights on both workers

    chief, other = tmp_path / "worker0", tmp_path / "worker1"
    model = train_lib.load_model(chief)
    assert int(model.optimizer.iterations.numpy()) == 4
    assert train_lib.weights_fingerprint(model) == fingerprints[0]
    assert sorted(p.name for p in (chief / "checkpoints").iterdir()) == [
        "ckpt-000000002", "ckpt-000000003", "ckpt-000000004"]
    assert (chief / train_lib.HISTORY_FILE).exists() and any((chief / "tensorboard").rglob("*tfevents*"))
    assert not other.exists()  # the non-chief wrote into a temporary directory, now deleted
    assert "is not the chief" in logs[1]
