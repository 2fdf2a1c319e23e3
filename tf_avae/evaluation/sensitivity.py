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
noise of the same radius) moves the code, relative to the spread of the codes. :func:`displacement_points` gives
the places to measure it besides the test images: the AVAE's delusions x~ at them, or the images plus the
observation noise (the noise-augmented VAE's encoder input) -- where each objective trains its encoder.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from tf_avae import adversarial, rng
from tf_avae.evaluation.adapter import as_encoder_adapter
from tf_avae.evaluation.features import encode_features
from tf_avae.validation import check_choice, check_image_array, check_positive, check_positive_int


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


POINTS = ("data", "delusion", "noisy")


def code_spread(model: Any, images: Any, *, batch_size: int = 256, per_dimension: bool = False) -> float:
    """Root-mean-square distance of the codes mu(x) of `images` to their mean: the unit of the displacements.

    With ``per_dimension=True`` the same divided by sqrt(number of code dimensions), i.e. the root of the mean
    per-dimension variance of the codes over the images (comparable across latent sizes; the prior N(0, I) has 1).
    """
    codes = encode_features(as_encoder_adapter(model), images, "mean", batch_size)
    return _rms_spread(codes, per_dimension)


def _rms_spread(codes: np.ndarray, per_dimension: bool = False) -> float:
    codes = codes.reshape(codes.shape[0], -1)
    squared = np.sum((codes - codes.mean(axis=0)) ** 2, axis=1)
    return float(np.sqrt(np.mean(squared / codes.shape[1] if per_dimension else squared)))


def displacement_points(model: Any, images: Any, points: str = "data", *, seed: int = 0,
                        batch_size: int = 256) -> np.ndarray:
    """Where to measure :func:`latent_displacement`, drawn from test `images` and a trained model.

    * ``"data"``: the images themselves;
    * ``"delusion"``: x~ ~ p(x|z) with z ~ q(z|x) -- the decoder's sample at a sampled code, what the AVAE's
      coupling term (``delusion="sample"``) trains the encoder on;
    * ``"noisy"``: x + N(0, v I) with the likelihood's observation variance v -- what the encoder of the
      noise-augmented VAE control trains on.
    The last two lie outside [0, 1]; measure them with ``bounds=None``. Batch k is seeded [seed, k].
    """
    from tf_avae.models.base import RepresentationModel  # same floor; imported here to keep this module light

    points = check_choice("points", points, POINTS)
    images = check_image_array("images", images)
    if points == "data":
        return images
    if not isinstance(model, RepresentationModel):
        raise TypeError(f"points={points!r} needs a tf_avae model (its decoder draws them); got "
                        f"{type(model).__name__}.")
    likelihood = model.decoder.likelihood
    if points == "noisy" and not hasattr(likelihood, "log_variance"):
        raise ValueError(f"points='noisy' needs a Gaussian likelihood (its observation variance); the model's "
                         f"decoder has {type(likelihood).__name__}.")

    @tf.function(reduce_retracing=True)
    def draw(x, batch_seed):
        posterior_seed, observation_seed = tf.unstack(tf.random.experimental.stateless_split(batch_seed, num=2))
        if points == "noisy":
            scale = tf.exp(0.5 * tf.cast(likelihood.log_variance, x.dtype))
            return (x + scale * rng.stateless_normal(tf.shape(x), observation_seed),)
        mean, log_variance = model.encode(x, training=False)
        latents = model.sample_posterior(mean, log_variance, posterior_seed)
        return (model.decoder.sample(model.decoder.raw_outputs(latents, training=False), observation_seed),)

    return _seeded_batches(draw, images, batch_size, seed)[0].astype(np.float32)


def latent_displacement(model: Any, images: Any, *, epsilon: float = 0.1, pgd_steps: int = 20, seed: int = 0,
                        batch_size: int = 256, bounds: tuple[float, float] | None = (0.0, 1.0),
                        spread: float | None = None, region: str = "all") -> dict[str, float]:
    """How far an L-inf perturbation of radius `epsilon` moves the code mu(x), in units of the codes' spread.

    The finite-radius counterpart of :func:`encoder_sensitivity`: PGD (the package's one attack, random start,
    step ``2.5 epsilon / pgd_steps``) maximises ``||mu(x') - mu(x)||_2`` -- the smooth encoder's training
    attack, with no probe involved -- and, for comparison, x' = x + u with u uniform in the same ball. Both
    stay inside `bounds` (the valid pixel range, [0, 1]: the attack is projected and the noisy image clipped);
    ``bounds=None`` leaves them unclipped, for points off the image range (:func:`displacement_points`).
    ``spread`` is the unit: by default the root-mean-square distance of the codes of `images` to their mean
    (pass the data's to compare point sets). ``region`` limits the attack and the noise to the pixels black in
    every channel (``"background"``) or to the others (``"foreground"``, :func:`tf_avae.adversarial.region_mask`;
    meant for images in [0, 1]). Returns the medians over examples of the two displacements
    divided by the spread (``displacement/pgd``, ``displacement/noise``), their ratio, and the spread.
    """
    adapter = as_encoder_adapter(model)
    if bounds is not None:
        bounds = tuple(float(b) for b in bounds)
        if len(bounds) != 2 or not bounds[0] < bounds[1]:
            raise ValueError(f"bounds must be (low, high) with low < high, or None; got {bounds!r}.")
    images = check_image_array("images", images, value_range=bounds)
    epsilon = check_positive("epsilon", epsilon)
    pgd_steps = check_positive_int("pgd_steps", pgd_steps)
    if spread is not None:
        spread = check_positive("spread", spread)
    region = check_choice("region", region, adversarial.REGIONS)
    step_size = adversarial.default_step_size(epsilon, pgd_steps)
    clip_min, clip_max = (None, None) if bounds is None else bounds

    @tf.function(reduce_retracing=True)
    def batch_displacement(x, batch_seed):
        attack_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(batch_seed, num=2))
        reference = tf.stop_gradient(adapter.mean(x))
        mask = adversarial.region_mask(x, region)

        def objective(candidate):
            return tf.reduce_sum(tf.square(adapter.mean(candidate) - reference), axis=-1)

        attacked = adversarial.pgd_attack(objective, x, epsilon=epsilon, step_size=step_size, num_steps=pgd_steps,
                                          seed=attack_seed, clip_min=clip_min, clip_max=clip_max, mask=mask)
        noise = rng.stateless_uniform(tf.shape(x), noise_seed, minval=-epsilon, maxval=epsilon)
        noisy = x + (noise if mask is None else noise * mask)
        if bounds is not None:
            noisy = tf.clip_by_value(noisy, clip_min, clip_max)
        return reference, _norms(adapter.mean(attacked) - reference), _norms(adapter.mean(noisy) - reference)

    codes, attacked, noisy = _seeded_batches(batch_displacement, images, batch_size, seed)
    if spread is None:  # from the codes the attack started at: no second pass over the images
        spread = _rms_spread(codes)
    attacked, noisy = attacked / spread, noisy / spread
    return {
        "displacement/pgd": float(np.median(attacked)),
        "displacement/noise": float(np.median(noisy)),
        "displacement/ratio": float(np.median(attacked) / max(float(np.median(noisy)), 1e-12)),
        "displacement/spread": spread,
    }
