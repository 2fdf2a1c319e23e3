"""How far the representation moves per unit of input change: along random directions versus the worst one.

For the encoder mean mu(x) with Jacobian J = d mu / d x at a test image:
* `sensitivity/random`: E_v ||J v|| / ||v|| over isotropic Gaussian directions v: what training against
  random pixel noise (noise augmentation; AVAE's sampled delusions) makes small;
* `sensitivity/worst`: the largest singular value of J (power iteration with forward- and reverse-mode
  products): the L2 worst case, the direction PGD exploits;
* `sensitivity/ratio`: worst / random. A small random sensitivity with a large worst case means an encoder
  that ignores noise yet is not robust.
Each is the median over the examples.

:func:`latent_displacement` is the finite-radius version: how far an L-inf attack of radius eps (and uniform
noise of the same radius) moves the code, relative to the spread of the codes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from tf_avae import adversarial, rng
from tf_avae.evaluation.adapter import as_encoder_adapter
from tf_avae.validation import check_image_array, check_positive, check_positive_int


def _norms(t):
    return tf.norm(tf.reshape(t, [tf.shape(t)[0], -1]), axis=1)


def _unit(t):
    return t / tf.reshape(tf.maximum(_norms(t), 1e-12), [-1] + [1] * (len(t.shape) - 1))


def _seeded_batches(fn, images, batch_size, seed):
    """`fn(x, batch_seed)` over `images` in batches, batch k seeded [seed, k]; its outputs concatenated (numpy)."""
    outputs = [fn(tf.constant(images[start:start + batch_size]), tf.constant([seed, index], tf.int64))
               for index, start in enumerate(range(0, images.shape[0], batch_size))]
    return tuple(np.concatenate([batch[i].numpy() for batch in outputs]) for i in range(len(outputs[0])))


def encoder_sensitivity(model: Any, images: Any, *, iterations: int = 20, random_directions: int = 8,
                        seed: int = 0, batch_size: int = 128) -> dict[str, float]:
    """Median random-direction and worst-direction (top singular value) sensitivity of the encoder mean."""
    adapter = as_encoder_adapter(model)
    images = check_image_array("images", images)
    iterations = check_positive_int("iterations", iterations)
    random_directions = check_positive_int("random_directions", random_directions)

    def jvp(x, v):
        with tf.autodiff.ForwardAccumulator(x, v) as accumulator:
            mean = adapter.mean(x)
        return accumulator.jvp(mean, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    def vjp(x, u):
        with tf.GradientTape() as tape:
            tape.watch(x)
            mean = adapter.mean(x)
        return tape.gradient(mean, x, output_gradients=u, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    @tf.function(reduce_retracing=True)
    def batch_sensitivity(x, batch_seed):
        seeds = tf.random.experimental.stateless_split(batch_seed, num=random_directions + 1)
        random = tf.zeros([tf.shape(x)[0]])
        for k in range(random_directions):
            v = _unit(rng.stateless_normal(tf.shape(x), seeds[k]))
            random += _norms(jvp(x, v))
        v = _unit(rng.stateless_normal(tf.shape(x), seeds[-1]))
        for _ in range(iterations):  # power iteration on J^T J
            v = _unit(vjp(x, jvp(x, v)))
        return random / random_directions, _norms(jvp(x, v))

    random, worst = _seeded_batches(batch_sensitivity, images, batch_size, seed)
    return {
        "sensitivity/random": float(np.median(random)),
        "sensitivity/worst": float(np.median(worst)),
        "sensitivity/ratio": float(np.median(worst / np.maximum(random, 1e-12))),
    }


def latent_displacement(model: Any, images: Any, *, epsilon: float = 0.1, pgd_steps: int = 20, seed: int = 0,
                        batch_size: int = 256) -> dict[str, float]:
    """How far an L-inf perturbation of radius `epsilon` moves the code mu(x), in units of the codes' spread.

    The finite-radius counterpart of :func:`encoder_sensitivity`: PGD (the package's one attack, random start,
    step ``2.5 epsilon / pgd_steps``) maximises ``||mu(x') - mu(x)||_2`` -- the smooth encoder's training
    attack, with no probe involved -- and, for comparison, x' = clip(x + u) with u uniform in the same ball.
    ``spread`` is the root-mean-square distance of the codes of `images` to their mean. Returns the medians
    over examples of the two displacements divided by the spread (``displacement/pgd``, ``displacement/noise``),
    their ratio, and the spread.
    """
    adapter = as_encoder_adapter(model)
    images = check_image_array("images", images)
    epsilon = check_positive("epsilon", epsilon)
    pgd_steps = check_positive_int("pgd_steps", pgd_steps)
    step_size = adversarial.default_step_size(epsilon, pgd_steps)

    @tf.function(reduce_retracing=True)
    def batch_displacement(x, batch_seed):
        attack_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(batch_seed, num=2))
        reference = tf.stop_gradient(adapter.mean(x))

        def objective(candidate):
            return tf.reduce_sum(tf.square(adapter.mean(candidate) - reference), axis=-1)

        attacked = adversarial.pgd_attack(objective, x, epsilon=epsilon, step_size=step_size, num_steps=pgd_steps,
                                          seed=attack_seed)
        noisy = tf.clip_by_value(x + rng.stateless_uniform(tf.shape(x), noise_seed, minval=-epsilon, maxval=epsilon),
                                 0.0, 1.0)
        return reference, _norms(adapter.mean(attacked) - reference), _norms(adapter.mean(noisy) - reference)

    codes, attacked, noisy = _seeded_batches(batch_displacement, images, batch_size, seed)
    codes = codes.reshape(images.shape[0], -1)
    spread = float(np.sqrt(np.mean(np.sum((codes - codes.mean(axis=0)) ** 2, axis=1))))
    attacked, noisy = attacked / spread, noisy / spread
    return {
        "displacement/pgd": float(np.median(attacked)),
        "displacement/noise": float(np.median(noisy)),
        "displacement/ratio": float(np.median(attacked) / max(float(np.median(noisy)), 1e-12)),
        "displacement/spread": spread,
    }
