"""tf_avae.rng: the named Philox algorithm draws what TensorFlow's default ("auto_select") draws."""

import numpy as np
import pytest
import tensorflow as tf

from tf_avae import rng


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("seed", [(0, 0), (7, 123), (1_000_003 * 5 + 2, 40_000), (-3, 2**40 + 17)])
def test_named_philox_draws_are_the_default_algorithms_numbers_in_graph_and_under_xla(seed, jit_compile):
    seed = tf.constant(seed, tf.int64)

    @tf.function(jit_compile=jit_compile)
    def draws(s):
        named = (rng.stateless_normal([5, 7], s), rng.stateless_uniform([5, 7], s))
        default = (tf.random.stateless_normal([5, 7], s), tf.random.stateless_uniform([5, 7], s))
        return named, default

    named, default = draws(seed)
    for a, b in zip(named, default):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
