"""Stateless, replica-consistent noise for train steps.

Every random draw inside a model step is a pure function of (model seed, step counter, stream),
so a run repeats from its seed and resumes exactly from a checkpoint that holds the step counter.

Under a `tf.distribute` strategy with R replicas, each replica draws the noise of the *whole*
global batch and keeps its own slice; example i then gets the same noise it would get on a single
device, which makes a distributed step equal to a single-device one. With one replica (the usual
single-GPU/CPU case) nothing extra is drawn.

The draws call Philox by name instead of TensorFlow's default "auto_select", and give exactly the
numbers "auto_select" gives (on CPU and GPU), in a plain graph and under XLA: under XLA (`jit_compile=True`)
"auto_select" keeps only the low 32 bits of each seed word and runs a generator ~30x slower than the named
Philox one on CPU (~66 ms instead of ~2 ms for the [64, 28, 28, 3] normal of AVAE's `delusion="sample"`,
~1.8 instead of ~0.2 ms for a [64, 64] posterior sample; TF 2.21, see scripts/benchmark.py), so inside an
XLA compilation the seed words are cut to their low 32 bits here and Philox is named. The plain-graph draws
use the full 64-bit seed, as before. Under XLA the numbers differ from the plain graph's (as before).
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow.python.ops import control_flow_util

# Streams keep independent draws within one step apart.
POSTERIOR_STREAM = 1
DELUSION_STREAM = 2
PRIOR_STREAM = 3
ATTACK_STREAM = 4
EVALUATION_STREAM = 5
OFFSET_STREAM = 6
FIXED_OFFSET_STREAM = 7

# Named, not "auto_select": the same numbers, much faster under XLA (module docstring).
ALGORITHM = "philox"
_LOW_32_BITS = 0xFFFFFFFF


def step_seed(base_seed, step, stream: int) -> tf.Tensor:
    """A shape-[2] int64 seed for stateless ops."""
    base = tf.cast(base_seed, tf.int64) * 1_000_003 + stream
    return tf.stack([base, tf.cast(step, tf.int64)])


def _in_xla_compilation() -> bool:
    """True while tracing inside `tf.function(jit_compile=True)` (or an enclosing XLA context)."""
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def philox_seed(seed):
    """The seed with which `alg=ALGORITHM` draws exactly what the default "auto_select" draws here.

    For any stateless draw outside this module, e.g.
    `tf.random.stateless_uniform(shape, rng.philox_seed(seed), alg=rng.ALGORITHM)`: the same numbers
    as `tf.random.stateless_uniform(shape, seed)`, much faster under XLA (module docstring).
    """
    seed = tf.convert_to_tensor(seed)
    if _in_xla_compilation():
        seed = tf.bitwise.bitwise_and(tf.cast(seed, tf.int64), tf.constant(_LOW_32_BITS, tf.int64))
    return seed


def stateless_normal(shape, seed, dtype=tf.float32, **kwargs):
    """`tf.random.stateless_normal` with the named Philox algorithm: the same numbers as TF's default, fast
    under XLA. Every stateless draw of the package goes through this or `stateless_uniform`."""
    return tf.random.stateless_normal(shape, seed=philox_seed(seed), dtype=dtype, alg=ALGORITHM, **kwargs)


def stateless_uniform(shape, seed, dtype=tf.float32, **kwargs):
    """`tf.random.stateless_uniform` with the named Philox algorithm (see `stateless_normal`)."""
    return tf.random.stateless_uniform(shape, seed=philox_seed(seed), dtype=dtype, alg=ALGORITHM, **kwargs)


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
    return _replica_slice(stateless_normal, shape, seed, dtype)


def uniform(shape, seed, dtype=tf.float32) -> tf.Tensor:
    """U[0, 1) noise of `shape` (batch first), replica-consistent."""
    return _replica_slice(stateless_uniform, shape, seed, dtype)
