"""Adversarial accuracy of image -> encoder representation -> linear probe (DESIGN section 4, step 4).

The attack is :func:`tf_avae.adversarial.make_adversarial_correctness_fn` (the package's one PGD:
L-inf, random start, cross-entropy objective, step size ``2.5 eps / steps`` by default); an example
counts as robust when it is classified correctly clean and after the attack. Reported in percent.

What makes a full evaluation affordable (measured on the 2-core CPU, see the suite's docstring):

* **No attack at radius 0**: the radius-0 entry is the clean accuracy, one forward pass.
* **Only correctly classified examples are attacked**: a misclassified example is not robust at any
  radius whatever the attack does.
* **Cascade over radii** (``cascade=True``, default): radii are processed in increasing order and an
  example is attacked at radius ``r`` only if no adversarial example was found at the previous, smaller
  radius. This is exact bookkeeping, not an approximation: an adversarial example inside the smaller
  ball lies inside the larger one too. It also makes the reported curve non-increasing by construction.
  ``cascade=False`` attacks every clean-correct example at every radius independently.
* One compiled graph per (task, radius), traced once with a ``None`` batch dimension; the probe's
  weights are variables, so refitting a probe in place reuses the graph (the training callback does).
* ``jit_compile`` is off by default: XLA was *slower* than the default oneDNN kernels for the ConvNet
  PGD on the shared 2-core CPU (64-120 vs 150-257 images/s at 40 steps, batches 256-1024, two runs).
* ``batch_size`` 512 by default: 130 vs 119 images/s for 256 through this evaluator, 189-257 vs
  151-155 in a micro-benchmark; 1024 was no faster. The spread between runs (other jobs share the
  CPU) is as large as the differences.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import tensorflow as tf

from tf_avae.adversarial import REGIONS, make_adversarial_correctness_fn
from tf_avae.evaluation.adapter import as_encoder_adapter
from tf_avae.evaluation.probe import LinearProbe, make_logits_fn
from tf_avae.evaluation.progress import Progress
from tf_avae.validation import check_choice, check_image_array, check_non_negative, check_positive, check_positive_int

__all__ = ["RobustnessEvaluator", "robust_accuracy", "radius_key", "check_radii"]

DEFAULT_RADII = (0.0, 0.1, 0.2)


def radius_key(task: str, radius: float, region: str = "all") -> str:
    """``adv/<task>/eps=<radius>`` with the radius printed in its shortest form (0, 0.1, 0.05); an attack
    limited to one region of the images (:func:`tf_avae.adversarial.region_mask`) is ``adv_<region>/...``."""
    return f"{'adv' if region == 'all' else f'adv_{region}'}/{task}/eps={float(radius):g}"


def check_radii(radii: Any) -> tuple[float, ...]:
    """A non-empty sequence of distinct radii >= 0, returned sorted ascending."""
    if isinstance(radii, (int, float, np.number)):
        radii = (radii,)
    try:
        values = [check_non_negative(f"radii[{i}]", r) for i, r in enumerate(radii)]
    except TypeError:
        raise TypeError(f"radii must be a sequence of numbers >= 0; got {radii!r}.") from None
    if not values:
        raise ValueError("radii must hold at least one radius; got an empty sequence.")
    if len(set(values)) != len(values):
        raise ValueError(f"radii must be distinct; got {radii!r}.")
    return tuple(sorted(values))


def _check_labels(labels: Any, num_examples: int) -> dict[str, np.ndarray]:
    from tf_avae.data.arrays import check_labels

    checked = check_labels(labels, num_examples)
    if not checked:
        raise ValueError("labels must hold at least one task (a dict task -> int array); got none.")
    return checked


class RobustnessEvaluator:
    """Adversarial accuracy per task and radius; holds one compiled attack per (task, radius).

    Args:
      model: a tf_avae model, loaded SavedModel or :class:`~tf_avae.evaluation.EncoderAdapter`.
      probes: ``{task: LinearProbe}`` fitted on the same ``feature``.
      radii: L-inf radii in pixel units (images in [0, 1]); 0 means clean accuracy.
      pgd_steps: PGD iterations per attack.
      step_size: PGD step; ``None`` = ``2.5 * radius / pgd_steps``.
      feature: ``"mean"`` or ``"backbone"``.
      batch_size: examples per attacked batch.
      cascade: attack at radius r only the survivors of the previous radius (module doc).
      jit_compile: XLA-compile the attack (slower for ConvNets on CPU; measure before enabling).
      region: the pixels the attack may change: ``"all"``, or ``"background"`` / ``"foreground"`` (the pixels
        black in every channel / the others, :func:`tf_avae.adversarial.region_mask`); results are keyed
        ``adv_<region>/...`` then.
    """

    def __init__(
        self,
        model: Any,
        probes: Mapping[str, LinearProbe],
        *,
        radii: Any = DEFAULT_RADII,
        pgd_steps: int = 40,
        step_size: float | None = None,
        feature: str = "mean",
        batch_size: int = 512,
        cascade: bool = True,
        jit_compile: bool = False,
        region: str = "all",
    ):
        self.adapter = as_encoder_adapter(model)
        self.feature = self.adapter.check_feature(feature)
        if not isinstance(probes, Mapping) or not probes:
            raise TypeError(f"probes must be a non-empty dict task -> LinearProbe; got {probes!r}.")
        self.radii = check_radii(radii)
        self.pgd_steps = check_positive_int("pgd_steps", pgd_steps)
        self.step_size = None if step_size is None else check_positive("step_size", step_size)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.cascade = bool(cascade)
        self.jit_compile = bool(jit_compile)
        self.region = check_choice("region", region, REGIONS)
        self.probes = dict(probes)
        self._functions: dict[tuple[str, float], Any] = {}

    def _correctness(self, task: str, radius: float, image_shape) -> Any:
        key = (task, radius)
        if key not in self._functions:
            fn = make_adversarial_correctness_fn(
                make_logits_fn(self.adapter, self.probes[task], self.feature),
                epsilon=radius,
                num_steps=self.pgd_steps,
                step_size=self.step_size,
                jit_compile=self.jit_compile,
                region=self.region,
            )
            self._functions[key] = fn.get_concrete_function(
                tf.TensorSpec([None, *image_shape], tf.float32),
                tf.TensorSpec([None], tf.int64),
                tf.TensorSpec([2], tf.int64),
            )
        return self._functions[key]

    def _run(self, fn, images, labels, seed, counter, advance) -> np.ndarray:
        results = []
        for start in range(0, images.shape[0], self.batch_size):
            stop = start + self.batch_size
            batch_seed = tf.constant([seed, counter[0]], tf.int64)
            counter[0] += 1
            results.append(fn(tf.constant(images[start:stop]), tf.constant(labels[start:stop]), batch_seed).numpy())
            advance(min(stop, images.shape[0]) - start)
        return np.concatenate(results).astype(bool) if results else np.zeros([0], bool)

    def per_example(
        self, images: Any, labels: Any, *, seed: int = 0, progress: Progress | None = None
    ) -> dict[str, dict[float, np.ndarray]]:
        """``{task: {radius: bool [N]}}``: robust (correct clean and under attack) per example."""
        images = check_image_array("images", images)
        labels = _check_labels(labels, images.shape[0])
        missing = sorted(set(labels) - set(self.probes))
        if missing:
            raise ValueError(f"labels has tasks {missing} without a probe; probes cover {sorted(self.probes)}.")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int; got {seed!r}.")
        progress = progress or Progress(enabled=False)
        counter = [0]
        results: dict[str, dict[float, np.ndarray]] = {}
        for task, task_labels in labels.items():
            task_labels = task_labels.astype(np.int64)
            shape = images.shape[1:]
            with progress.stage(f"clean accuracy [{task}]", total=images.shape[0]) as advance:
                clean = self._run(self._correctness(task, 0.0, shape), images, task_labels, seed, counter, advance)
            results[task] = {0.0: clean} if 0.0 in self.radii else {}
            survivors = clean
            for radius in (r for r in self.radii if r > 0):
                index = np.flatnonzero(survivors if self.cascade else clean)
                robust = np.zeros_like(clean)
                with progress.stage(f"PGD [{task}] eps={radius:g}, {self.pgd_steps} steps", total=index.size) as adv:
                    if index.size:
                        robust[index] = self._run(
                            self._correctness(task, radius, shape), images[index], task_labels[index], seed,
                            counter, adv,
                        )
                results[task][radius] = robust
                survivors = robust
        return results

    def __call__(self, images: Any, labels: Any, *, seed: int = 0, progress: Progress | None = None) -> dict:
        """``{"adv/<task>/eps=<r>": percent}`` for every task of ``labels`` and every radius."""
        per_example = self.per_example(images, labels, seed=seed, progress=progress)
        return {
            radius_key(task, radius, self.region): float(100.0 * np.mean(robust))
            for task, by_radius in per_example.items()
            for radius, robust in by_radius.items()
        }


def robust_accuracy(
    model: Any,
    probes: Mapping[str, LinearProbe],
    images: Any,
    labels: Any,
    *,
    radii: Any = DEFAULT_RADII,
    pgd_steps: int = 40,
    step_size: float | None = None,
    feature: str = "mean",
    batch_size: int = 512,
    cascade: bool = True,
    jit_compile: bool = False,
    seed: int = 0,
    progress: Progress | bool | None = None,
    region: str = "all",
) -> dict[str, float]:
    """Adversarial accuracy in percent, ``{"adv/<task>/eps=<r>": float}``; see :class:`RobustnessEvaluator`.

    ``labels`` is ``{task: int [N]}`` (or one int array, task ``"label"``); ``images`` float
    ``[N, H, W, C]`` in [0, 1].
    """
    if isinstance(progress, bool):
        progress = Progress(progress)
    evaluator = RobustnessEvaluator(
        model, probes, radii=radii, pgd_steps=pgd_steps, step_size=step_size, feature=feature,
        batch_size=batch_size, cascade=cascade, jit_compile=jit_compile, region=region,
    )
    return evaluator(images, labels, seed=seed, progress=progress)
