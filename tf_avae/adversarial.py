"""Projected gradient descent (PGD): one implementation for training and for evaluation.

The same :func:`pgd_attack` builds the perturbed inputs of the smooth encoder (SE, DESIGN section 2,
with :func:`encoding_distance_objective`) and attacks the frozen-encoder + linear-probe classifier in
the evaluation protocol (DESIGN section 4, with :func:`classifier_cross_entropy_objective`,
:func:`adversarial_correctness` and :func:`adversarial_accuracy`).

Decisions
---------
* **Loop form.** The first step is written out in Python and the remaining ``num_steps - 1`` steps
  run in a ``tf.while_loop`` with a static trip count. The graph therefore holds two copies of one
  step whatever ``num_steps`` is, so 40 evaluation steps trace and compile as fast as 5 training steps
  (a Python loop would unroll ``num_steps`` copies of the model's forward and backward pass). The
  peeled first step also means a Keras model that is not built yet gets built outside the loop body.
  Eagerly, ``tf.while_loop`` is a plain Python loop; under ``tf.function``, a Keras ``train_step``,
  ``strategy.run`` or ``jit_compile`` it is one graph loop.
* **Gradients.** Each step takes the gradient of the summed objective w.r.t. the candidate input only
  (``GradientTape(watch_accessed_variables=False)`` watching the input), so no gradients w.r.t. model
  weights are computed. The result is wrapped in ``tf.stop_gradient``: a caller's outer tape sees
  ``x_adv`` as a constant. An objective that does not depend on its input gets a zero gradient.
* **Randomness.** The random start uses stateless ops keyed by ``seed`` (two independent sub-seeds
  via ``tf.random.experimental.stateless_split``), so an attack is a pure function of its arguments:
  reproducible, and usable inside a replica function. Under a strategy every replica gets the seed
  it is given; fold in the replica id yourself if you want different noise per replica.
* **Default step size** of the evaluation helpers: ``2.5 * epsilon / num_steps`` (Madry et al. 2018),
  enough to cross the ball from one side to the other even after a random start.
* **Encoding distance** for the SE: DESIGN says only "maximising the distance between the encodings".
  We use the squared 2-Wasserstein distance between the two diagonal Gaussians,
  ``sum_d (mu_d - mu'_d)^2 + (sigma_d - sigma'_d)^2``: it is a true (squared) metric between the
  distributions, symmetric, finite for any variances (unlike a KL, it does not blow up when a variance
  goes to 0) and reduces to the squared distance between the means when the variances agree. The
  reference encoding is a constant (``stop_gradient``). Its gradient is exactly zero at the reference
  input, so use ``random_start=True`` with it (a start at ``x`` itself never moves).
* **Regions.** ``mask`` (1 where the attack may change the input, 0 where it may not) narrows the ball to the
  chosen coordinates; :func:`region_mask` builds the two masks of an image batch the diagnosis uses: the
  pixels black in every channel (``"background"``) and the others (``"foreground"``). They tell *where* an
  encoder is vulnerable: on colorMNIST the plain AVAE's weakness lies in its images' black background.
* **Evaluation** counts an example as robust when it is classified correctly clean *and* the final PGD
  iterate is still classified correctly (as ART's ``ProjectedGradientDescent`` with one random start).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from tf_avae import objectives, rng
from tf_avae.validation import check_choice, check_finite, check_non_negative, check_positive, check_positive_int

__all__ = [
    "pgd_attack",
    "classifier_cross_entropy_objective",
    "encoding_distance_objective",
    "make_adversarial_correctness_fn",
    "adversarial_correctness",
    "adversarial_accuracy",
    "default_step_size",
    "region_mask",
    "REGIONS",
]

_NORM_CHOICES = ("inf", 2)
_TINY = 1e-12
REGIONS = ("all", "background", "foreground")


# --------------------------------------------------------------------------------------------------
# Argument checks (run once, in Python, before anything is computed or traced)
# --------------------------------------------------------------------------------------------------


def _normalise_norm(norm: Any) -> str | int:
    """Maps the accepted spellings of the two norms to "inf" or 2; raises for anything else."""
    if isinstance(norm, str):
        key = norm.strip().lower()
        if key in ("inf", "linf", "l_inf", "infinity"):
            return "inf"
        if key in ("2", "l2", "l_2"):
            return 2
    elif not isinstance(norm, bool) and isinstance(norm, (int, float, np.integer, np.floating)):
        if math.isinf(norm) and norm > 0:
            return "inf"
        if norm == 2:
            return 2
    # Not one of the two: let the shared check word the error.
    check_choice("norm", norm, _NORM_CHOICES + (np.inf,))
    raise ValueError(f"norm must be one of {list(_NORM_CHOICES)}; got {norm!r}.")  # e.g. unhashable oddities


def _check_clip_range(clip_min: Any, clip_max: Any) -> tuple[float | None, float | None]:
    low = None if clip_min is None else check_finite("clip_min", clip_min)
    high = None if clip_max is None else check_finite("clip_max", clip_max)
    if low is not None and high is not None and not low < high:
        raise ValueError(
            f"clip_min must be < clip_max (the valid input range); got clip_min={clip_min!r}, clip_max={clip_max!r}."
        )
    return low, high


def _check_attack_args(epsilon, step_size, num_steps, norm, clip_min, clip_max):
    epsilon = check_non_negative("epsilon", epsilon)
    step_size = check_positive("step_size", step_size)
    num_steps = check_positive_int("num_steps", num_steps)
    norm = _normalise_norm(norm)
    clip_min, clip_max = _check_clip_range(clip_min, clip_max)
    return epsilon, step_size, num_steps, norm, clip_min, clip_max


def _as_seed(seed: Any) -> tf.Tensor:
    """A stateless-RNG seed: an int n (-> (n, 0)), a pair of ints, or an integer tensor of shape [2]."""
    if isinstance(seed, bool):
        raise TypeError(f"seed must be an int, a pair of ints or an integer tensor of shape [2]; got {seed!r}.")
    if isinstance(seed, (int, np.integer)):
        return tf.constant([int(seed), 0], dtype=tf.int64)
    if isinstance(seed, (tf.Tensor, tf.Variable)) or hasattr(seed, "dtype"):
        tensor = tf.convert_to_tensor(seed)
        if not tensor.dtype.is_integer:
            raise TypeError(f"seed must be an integer tensor of shape [2]; got dtype {tensor.dtype.name}.")
        if tensor.shape.rank is not None and tensor.shape.as_list() != [2]:
            raise ValueError(f"seed must have shape [2]; got shape {tensor.shape}.")
        return tf.cast(tensor, tf.int64)
    try:
        values = tuple(seed)
    except TypeError:
        raise TypeError(
            f"seed must be an int, a pair of ints or an integer tensor of shape [2]; got {seed!r} "
            f"of type {type(seed).__name__}."
        ) from None
    if len(values) != 2:
        raise ValueError(f"seed must be a pair of ints (shape [2]); got {seed!r} with {len(values)} entries.")
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values):
        if all(isinstance(v, (tf.Tensor, tf.Variable)) for v in values):  # e.g. (step_counter, 0-tensor)
            return tf.stack([tf.cast(v, tf.int64) for v in values])
        raise TypeError(f"seed must be a pair of ints; got {seed!r}.")
    return tf.constant([int(v) for v in values], dtype=tf.int64)


def _as_input(name: str, x: Any) -> tf.Tensor:
    if isinstance(x, (tf.Tensor, tf.Variable)):
        tensor = tf.convert_to_tensor(x)
    else:
        array = np.asarray(x)
        if np.issubdtype(array.dtype, np.floating):
            array = array.astype(np.float32, copy=False)
        tensor = tf.convert_to_tensor(array)
    if not tensor.dtype.is_floating:
        raise TypeError(f"{name} must be a floating-point tensor (float32 inputs); got dtype {tensor.dtype.name}.")
    if tensor.shape.rank is not None and tensor.shape.rank < 1:
        raise ValueError(f"{name} must have a batch axis (rank >= 1); got shape {tensor.shape}.")
    return tensor


def default_step_size(epsilon: float, num_steps: int) -> float:
    """2.5 * epsilon / num_steps (Madry et al. 2018)."""
    return 2.5 * float(epsilon) / int(num_steps)


# --------------------------------------------------------------------------------------------------
# PGD
# --------------------------------------------------------------------------------------------------


def per_example_dot(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """<a_i, b_i> over all non-batch axes, shaped [B, 1, ..., 1] to broadcast against a and b."""
    return tf.reduce_sum(a * b, axis=list(range(1, a.shape.rank)), keepdims=True)


def per_example_l2(t: tf.Tensor) -> tf.Tensor:
    """||t_i||_2 over all non-batch axes, shaped [B, 1, ..., 1] to broadcast against t."""
    return tf.sqrt(per_example_dot(t, t))


def region_mask(x: Any, region: str = "all") -> tf.Tensor | None:
    """The ``mask`` of :func:`pgd_attack` that lets an attack touch one region of images ``x`` ``[B, H, W, C]``.

    ``"all"``: ``None`` (every pixel); ``"background"``: the pixel locations that are exactly 0 in every channel
    (the black background of MNIST-like images); ``"foreground"``: all other locations. Returns a float
    ``[B, H, W, 1]`` 0/1 tensor (it broadcasts over the channels), or ``None``.
    """
    region = check_choice("region", region, REGIONS)
    if region == "all":
        return None
    x = _as_input("x", x)
    if x.shape.rank is not None and x.shape.rank < 3:
        raise ValueError(f"region={region!r} needs images [batch, height, width, channels]; got x of shape "
                         f"{x.shape}.")
    black = tf.reduce_all(tf.equal(x, tf.zeros([], x.dtype)), axis=-1, keepdims=True)
    return tf.cast(black if region == "background" else tf.logical_not(black), x.dtype)


def _as_mask(mask: Any, x: tf.Tensor) -> tf.Tensor | None:
    """``mask`` as a tensor of ``x``'s dtype that broadcasts to ``x``; 0/1 values are checked when known here."""
    if mask is None:
        return None
    if not isinstance(mask, (tf.Tensor, tf.Variable)):
        array = np.asarray(mask)
        numeric = array.dtype == bool or np.issubdtype(array.dtype, np.number)
        if not numeric or not np.all((array == 0) | (array == 1)):
            raise ValueError("mask must hold 0/1 (or bool) values, 1 where the attack may change x; got values "
                             f"{np.unique(array)[:5]!r}.")
        mask = array.astype(np.float32)
    mask = tf.cast(tf.convert_to_tensor(mask), x.dtype)
    if mask.shape.rank is not None and x.shape.rank is not None:
        try:
            tf.broadcast_static_shape(mask.shape, x.shape)
            compatible = mask.shape.rank <= x.shape.rank
        except ValueError:
            compatible = False
        if not compatible:
            raise ValueError(f"mask of shape {mask.shape} must broadcast to x's shape {x.shape}.")
    return mask


def pgd_attack(
    objective_fn: Callable[[tf.Tensor], tf.Tensor],
    x: Any,
    *,
    epsilon: float,
    step_size: float,
    num_steps: int,
    norm: Any = "inf",
    random_start: bool = True,
    seed: Any = (0, 0),
    clip_min: float | None = 0.0,
    clip_max: float | None = 1.0,
    mask: Any = None,
) -> tf.Tensor:
    """Finds ``x_adv`` within ``epsilon`` of ``x`` (in the chosen norm) that maximises ``objective_fn``.

    Args:
      objective_fn: ``f(x_candidate) -> [B]`` per-example objective to *maximise* (any shape is summed:
        examples must not interact, e.g. call models with ``training=False``).
      x: float inputs ``[B, ...]`` (images ``[B, H, W, C]``) inside ``[clip_min, clip_max]``.
      epsilon: radius (Python number >= 0). ``0`` returns ``x`` unchanged.
      step_size: step length (> 0): each coordinate moves by ``step_size`` (L-inf, along the gradient's
        sign) or the whole example by ``step_size`` in L2 (along ``grad / ||grad||_2``).
      num_steps: number of gradient steps, a Python int >= 1.
      norm: ``"inf"`` / ``np.inf`` or ``2`` / ``"2"``.
      random_start: start from a uniform draw in the ball (per example, for L2 uniform in volume).
      seed: stateless seed for the random start: an int, a pair, or an int tensor of shape [2]
        (in a ``train_step``, derive it from the step counter).
      clip_min, clip_max: valid input range (``None`` for unbounded on that side).
      mask: ``None`` (every coordinate) or 0/1 values broadcastable to ``x``: the coordinates the attack
        may change (e.g. :func:`region_mask`); the others keep ``x``'s values.

    Returns:
      ``x_adv`` with the dtype and shape of ``x``, under ``tf.stop_gradient``; always within the ball
      and the input range (provided ``x`` is in the range), and equal to ``x`` where ``mask`` is 0.
    """
    epsilon, step_size, num_steps, norm, clip_min, clip_max = _check_attack_args(
        epsilon, step_size, num_steps, norm, clip_min, clip_max
    )
    if not callable(objective_fn):
        raise TypeError(f"objective_fn must be callable (x -> per-example objective); got {objective_fn!r}.")
    seed = _as_seed(seed)
    x = tf.stop_gradient(_as_input("x", x))
    if epsilon == 0.0:
        return x
    if x.shape.rank is None:
        raise ValueError("x must have a known rank; got a tensor of unknown rank.")
    mask = _as_mask(mask, x)

    dtype = x.dtype
    eps = tf.constant(epsilon, dtype)
    step = tf.constant(step_size, dtype)

    def clip_to_range(t):
        if clip_min is not None:
            t = tf.maximum(t, tf.constant(clip_min, dtype))
        if clip_max is not None:
            t = tf.minimum(t, tf.constant(clip_max, dtype))
        return t

    def project(candidate):
        # Projection onto the ball, then onto the box. Because x is in the box, clipping moves every
        # coordinate towards x, so the result stays in the ball (for L-inf this is the exact projection
        # onto the intersection; for L2 it is the usual PGD approximation, as in ART and cleverhans).
        if norm == "inf":
            radius = eps if mask is None else eps * mask
            candidate = tf.clip_by_value(candidate, x - radius, x + radius)
        else:
            delta = candidate - x if mask is None else (candidate - x) * mask
            scale = tf.minimum(1.0, eps / tf.maximum(per_example_l2(delta), _TINY))
            candidate = x + delta * scale
        return clip_to_range(candidate)

    def gradient_step(x_adv):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x_adv)
            objective = objective_fn(x_adv)
        grad = tape.gradient(objective, x_adv, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        grad = tf.stop_gradient(tf.where(tf.math.is_nan(grad), tf.zeros_like(grad), grad))
        if mask is not None:
            grad = grad * mask  # an L2 step spends its length on the coordinates it may change
        if norm == "inf":
            direction = tf.sign(grad)
        else:
            direction = grad / tf.maximum(per_example_l2(grad), _TINY)  # zero gradient -> no move
        return project(x_adv + step * direction)

    if random_start:
        noise_seed, radius_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
        shape = tf.shape(x)
        if norm == "inf":
            noise = eps * rng.stateless_uniform(shape, noise_seed, dtype, minval=-1.0, maxval=1.0)
        else:
            direction = rng.stateless_normal(shape, noise_seed, dtype)
            direction = direction / tf.maximum(per_example_l2(direction), _TINY)
            dims = tf.cast(tf.reduce_prod(shape[1:]), dtype)
            radius_shape = tf.concat([shape[:1], tf.ones_like(shape[1:])], axis=0)
            u = rng.stateless_uniform(radius_shape, radius_seed, dtype)
            noise = direction * eps * tf.pow(u, 1.0 / dims)  # uniform in the volume of the ball
        x_adv = project(x + noise)
    else:
        x_adv = x

    # Step 1 outside the loop (an unbuilt Keras model is built here), steps 2..num_steps in a graph loop.
    x_adv = gradient_step(x_adv)
    if num_steps > 1:
        _, x_adv = tf.while_loop(
            lambda i, _: i < num_steps - 1,
            lambda i, x_cur: (i + 1, gradient_step(x_cur)),
            (tf.constant(0), x_adv),
            parallel_iterations=1,
        )
    return tf.stop_gradient(x_adv)


# --------------------------------------------------------------------------------------------------
# Objectives
# --------------------------------------------------------------------------------------------------


def classifier_cross_entropy_objective(
    logits_fn: Callable[[tf.Tensor], tf.Tensor], labels: Any
) -> Callable[[tf.Tensor], tf.Tensor]:
    """Per-example sparse softmax cross-entropy of ``logits_fn(x)`` ([B, K]) against int ``labels`` [B].

    Maximising it is the untargeted evaluation attack ("change the classification decision").
    """
    if not callable(logits_fn):
        raise TypeError(f"logits_fn must be callable (x -> logits [B, K]); got {logits_fn!r}.")
    labels = tf.convert_to_tensor(labels)
    if not labels.dtype.is_integer:
        raise TypeError(f"labels must be integer class indices; got dtype {labels.dtype.name}.")
    if labels.shape.rank is not None and labels.shape.rank != 1:
        raise ValueError(f"labels must have shape [batch] (class indices); got shape {labels.shape}.")
    labels = tf.cast(labels, tf.int64)

    def objective(x):
        logits = tf.convert_to_tensor(logits_fn(x))
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(logits, tf.float32))

    return objective


def encoding_distance_objective(
    encode_fn: Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]], x_reference: Any
) -> Callable[[tf.Tensor], tf.Tensor]:
    """Squared 2-Wasserstein distance between q(z|x_reference) and q(z|x_candidate), per example.

    ``encode_fn(x) -> (mean, log_variance)`` of a diagonal Gaussian ([B, D] each). The objective is
    ``sum_d (mu_d - mu'_d)^2 + (sigma_d - sigma'_d)^2`` with ``sigma = exp(log_variance / 2)``; the
    reference encoding is computed once, here, and held constant (``stop_gradient``).
    Its gradient vanishes at ``x_reference``: attack with ``random_start=True``.
    """
    if not callable(encode_fn):
        raise TypeError(f"encode_fn must be callable (x -> (mean, log_variance)); got {encode_fn!r}.")
    reference_mean, reference_log_variance = _gaussian_parameters(encode_fn, _as_input("x_reference", x_reference))
    reference_mean = tf.stop_gradient(reference_mean)
    reference_log_variance = tf.stop_gradient(reference_log_variance)

    def objective(x):
        mean, log_variance = _gaussian_parameters(encode_fn, x)
        return objectives.squared_wasserstein2_diagonal_gaussians(
            mean, log_variance, reference_mean, reference_log_variance
        )

    return objective


def _gaussian_parameters(encode_fn, x):
    outputs = encode_fn(x)
    try:
        mean, log_variance = outputs
    except (TypeError, ValueError):
        raise TypeError(
            f"encode_fn must return (mean, log_variance); got {type(outputs).__name__} instead."
        ) from None
    return tf.cast(mean, tf.float32), tf.cast(log_variance, tf.float32)


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------


def make_adversarial_correctness_fn(
    logits_fn: Callable[[tf.Tensor], tf.Tensor],
    *,
    epsilon: float,
    num_steps: int = 40,
    step_size: float | None = None,
    norm: Any = "inf",
    random_start: bool = True,
    clip_min: float | None = 0.0,
    clip_max: float | None = 1.0,
    jit_compile: bool = False,
    region: str = "all",
) -> tf.types.experimental.GenericFunction:
    """The compiled evaluation step: ``fn(x [B,...], labels [B] int64, seed [2] int64) -> bool [B]``.

    An example is ``True`` when ``logits_fn`` classifies it correctly clean *and* after the PGD attack
    (cross-entropy objective). Arguments as in :func:`pgd_attack`; ``step_size`` defaults to
    ``2.5 * epsilon / num_steps``; ``region`` limits the attack to part of each image (:func:`region_mask`).
    Trace it once with ``fn.get_concrete_function(...)`` and a ``None`` batch dimension to serve every batch
    size with one graph.
    """
    if not callable(logits_fn):
        raise TypeError(f"logits_fn must be callable (x -> logits [B, K]); got {logits_fn!r}.")
    epsilon = check_non_negative("epsilon", epsilon)
    num_steps = check_positive_int("num_steps", num_steps)
    if step_size is None:
        step_size = default_step_size(epsilon, num_steps) if epsilon > 0 else 1.0  # unused when epsilon == 0
    _, step_size, _, norm, clip_min, clip_max = _check_attack_args(
        epsilon, step_size, num_steps, norm, clip_min, clip_max
    )
    if not isinstance(random_start, (bool, np.bool_)):
        raise TypeError(f"random_start must be a bool; got {random_start!r}.")
    region = check_choice("region", region, REGIONS)

    def correctness(x, labels, seed):
        labels = tf.cast(labels, tf.int64)
        clean_correct = tf.equal(tf.argmax(logits_fn(x), axis=-1), labels)
        if epsilon == 0.0:
            return clean_correct
        x_adv = pgd_attack(
            classifier_cross_entropy_objective(logits_fn, labels),
            x,
            epsilon=epsilon,
            step_size=step_size,
            num_steps=num_steps,
            norm=norm,
            random_start=bool(random_start),
            seed=seed,
            clip_min=clip_min,
            clip_max=clip_max,
            mask=region_mask(x, region),
        )
        adversarial_correct = tf.equal(tf.argmax(logits_fn(x_adv), axis=-1), labels)
        return tf.logical_and(clean_correct, adversarial_correct)

    return tf.function(correctness, jit_compile=jit_compile, reduce_retracing=True)


def adversarial_correctness(
    logits_fn: Callable[[tf.Tensor], tf.Tensor],
    x: Any,
    labels: Any,
    *,
    epsilon: float,
    num_steps: int = 40,
    step_size: float | None = None,
    norm: Any = "inf",
    random_start: bool = True,
    seed: int = 0,
    batch_size: int = 256,
    clip_min: float | None = 0.0,
    clip_max: float | None = 1.0,
    jit_compile: bool = False,
    region: str = "all",
) -> np.ndarray:
    """Per-example robustness ``bool [N]``: correct clean and still correct after PGD.

    ``x`` (numpy or tensor, ``[N, ...]`` in ``[clip_min, clip_max]``) is attacked in batches of
    ``batch_size`` through one compiled graph (traced once, batch dimension ``None``). Batch ``i``
    uses the stateless seed ``(seed, i)``.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int; got {seed!r} of type {type(seed).__name__}.")
    correctness = make_adversarial_correctness_fn(
        logits_fn,
        epsilon=epsilon,
        num_steps=num_steps,
        step_size=step_size,
        norm=norm,
        random_start=random_start,
        clip_min=clip_min,
        clip_max=clip_max,
        jit_compile=jit_compile,
        region=region,
    )
    x, labels = _check_dataset(x, labels, clip_min, clip_max)
    if x.shape[0] == 0:
        return np.zeros([0], dtype=np.bool_)
    concrete = correctness.get_concrete_function(
        tf.TensorSpec([None, *x.shape[1:]], tf.float32),
        tf.TensorSpec([None], tf.int64),
        tf.TensorSpec([2], tf.int64),
    )
    results = []
    for batch_index, start in enumerate(range(0, x.shape[0], batch_size)):
        stop = start + batch_size
        batch_seed = tf.constant([int(seed), batch_index], dtype=tf.int64)
        results.append(concrete(tf.constant(x[start:stop]), tf.constant(labels[start:stop]), batch_seed).numpy())
    return np.concatenate(results).astype(np.bool_)


def adversarial_accuracy(
    logits_fn: Callable[[tf.Tensor], tf.Tensor],
    x: Any,
    labels: Any,
    *,
    epsilon: float,
    num_steps: int = 40,
    step_size: float | None = None,
    norm: Any = "inf",
    random_start: bool = True,
    seed: int = 0,
    batch_size: int = 256,
    clip_min: float | None = 0.0,
    clip_max: float | None = 1.0,
    jit_compile: bool = False,
    region: str = "all",
) -> float:
    """Fraction in [0, 1] of examples classified correctly clean and after the PGD attack.

    At ``epsilon=0`` this is the clean accuracy. See :func:`adversarial_correctness`.
    """
    correct = adversarial_correctness(
        logits_fn,
        x,
        labels,
        epsilon=epsilon,
        num_steps=num_steps,
        step_size=step_size,
        norm=norm,
        random_start=random_start,
        seed=seed,
        batch_size=batch_size,
        clip_min=clip_min,
        clip_max=clip_max,
        jit_compile=jit_compile,
        region=region,
    )
    if correct.size == 0:
        raise ValueError("x must contain at least one example to compute an accuracy; got 0.")
    return float(np.mean(correct))


def _check_dataset(x, labels, clip_min, clip_max) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"x must be a floating-point array (float32 inputs in [{clip_min}, {clip_max}]); got dtype {x.dtype}."
        )
    if x.ndim < 2:
        raise ValueError(f"x must have shape [N, ...] with at least one feature axis; got shape {x.shape}.")
    x = x.astype(np.float32, copy=False)
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integer class indices; got dtype {labels.dtype}.")
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},) to match x; got shape {labels.shape}.")
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be class indices >= 0; got a minimum of {labels.min()}.")
    if x.size:
        if not np.all(np.isfinite(x)):
            raise ValueError("x contains NaN or infinite values; inputs must be finite.")
        low, high = float(x.min()), float(x.max())
        if (clip_min is not None and low < clip_min) or (clip_max is not None and high > clip_max):
            raise ValueError(
                f"x must have values in [{clip_min}, {clip_max}] (clip_min, clip_max); "
                f"got values in [{low:g}, {high:g}]."
            )
    return x, labels.astype(np.int64)
