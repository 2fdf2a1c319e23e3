"""Stateless, replica-consistent noise for train steps.

Every random draw inside a model step is a pure function of (model seed, step counter, stream),
so a run repeats from its seed and resumes exactly from a checkpoint that holds the step counter.

Under a `tf.distribute` strategy with R replicas, each replica draws the noise of the *whole*
global batch and keeps its own slice; example i then gets the same noise it would get on a single
device, which makes a distributed step equal to a single-device one. With one replica (the usual
single-GPU/CPU case) nothing extra is drawn.
"""

from __future__ import annotations

import tensorflow as tf

# Streams keep independent draws within one step apart.
POSTERIOR_STREAM = 1
DELUSION_STREAM = 2
PRIOR_STREAM = 3
ATTACK_STREAM = 4
EVALUATION_STREAM = 5


def step_seed(base_seed, step, stream: int) -> tf.Tensor:
    """A shape-[2] int64 seed for stateless ops."""
    base = tf.cast(base_seed, tf.int64) * 1_000_003 + stream
    return tf.stack([base, tf.cast(step, tf.int64)])


def _replica_slice(draw, shape, seed, dtype):
    shape = tf.convert_to_tensor(shape, tf.int32)
    context = tf.distribute.get_replica_context()
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if context is None or replicas == 1:
        return draw(shape, seed=seed, dtype=dtype)
    local = shape[0]
    full = draw(tf.concat([[local * replicas], shape[1:]], axis=0), seed=seed, dtype=dtype)
    start = tf.cast(context.replica_id_in_sync_group, tf.int32) * local
    return full[start : start + local]


def normal(shape, seed, dtype=tf.float32) -> tf.Tensor:
    """Standard normal noise of `shape` (batch first), replica-consistent."""
    return _replica_slice(tf.random.stateless_normal, shape, seed, dtype)


def uniform(shape, seed, dtype=tf.float32) -> tf.Tensor:
    """U[0, 1) noise of `shape` (batch first), replica-consistent."""
    return _replica_slice(tf.random.stateless_uniform, shape, seed, dtype)
