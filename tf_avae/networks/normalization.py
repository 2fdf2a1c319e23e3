"""Batch normalisation whose statistics are synchronised across replicas, computed in two passes.

Keras' `BatchNormalization(synchronized=True)` all-reduces sum(x) and sum(x^2) and takes
var = E[x^2] - E[x]^2, which cancels badly in float32 (and clamps at 0): a distributed step then
drifts from a single-device step on the same global batch. Here the mean is all-reduced first and
the variance is all-reduced as the mean of squared deviations from it, exactly what
`tf.nn.moments` does on one device.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tf_avae")
class SyncBatchNormalization(keras.layers.BatchNormalization):
    def __init__(self, **kwargs):
        kwargs.pop("synchronized", None)
        super().__init__(**kwargs)

    def _moments(self, inputs, mask):
        replica_context = tf.distribute.get_replica_context()
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if mask is not None or replica_context is None or replicas == 1:
            return super()._moments(inputs, mask)
        axes = self._reduction_axes
        count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(inputs), axes)), inputs.dtype)
        total = replica_context.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(inputs, axis=axes, keepdims=True))
        count = replica_context.all_reduce(tf.distribute.ReduceOp.SUM, count)
        mean = total / count
        squared = tf.reduce_sum(tf.square(inputs - mean), axis=axes, keepdims=True)
        variance = replica_context.all_reduce(tf.distribute.ReduceOp.SUM, squared) / count
        return tf.squeeze(mean, axes), tf.squeeze(variance, axes)
