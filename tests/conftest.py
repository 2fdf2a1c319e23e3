"""Test-session set-up shared by every test module.

TensorFlow's CPU is split into two logical devices before anything else touches it, so that
`tf.distribute.MirroredStrategy` tests can run on a machine without GPUs.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
except RuntimeError:  # already initialised by an earlier import: keep whatever exists
    pass
# The suite runs in two pytest-xdist workers (README): on a GPU each process takes memory as it needs it rather than
# all of it at start, which would leave the other worker none.
for _gpu in tf.config.list_physical_devices("GPU"):
    try:
        tf.config.experimental.set_memory_growth(_gpu, True)
    except RuntimeError:
        pass


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One MirroredStrategy over the two logical CPUs for the whole session.

    Several strategy objects in one process collide on TensorFlow's collective instance keys
    ("Shape mismatch in the collective instance"), so tests share this one.
    """
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) >= 2, "the CPU should have been split into two logical devices"
    return tf.distribute.MirroredStrategy(devices[:2])
