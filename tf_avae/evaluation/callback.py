"""Probe and PGD accuracy measured during training: the paper's "adversarial accuracy over iterations".

Every ``every_n_steps`` optimizer steps :class:`RobustnessCallback` encodes a fixed labelled subset,
refits one linear probe per task on it (in place, so the compiled attacks are reused), and measures
clean and PGD accuracy on a fixed test subset. Results go to

* ``callback.records``: a list of ``(step, {"probe/<task>": %, "adv/<task>/eps=<r>": %})``,
* TensorBoard scalars ``robustness/<key>`` under ``log_dir`` (``=`` written as ``_``),
* the training ``logs`` at each epoch end (latest values, keys prefixed ``robustness/``), so
  ``History`` (which runs after user callbacks) stores them in ``model.history.history``.

:class:`CollapseMonitor` watches for posterior collapse: an encoder whose code no longer depends on its input.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tf_avae.evaluation.adapter import as_encoder_adapter
from tf_avae.evaluation.features import encode_features
from tf_avae.evaluation.probe import DEFAULT_C, fit_linear_probe, probe_accuracy
from tf_avae.evaluation.robustness import RobustnessEvaluator, check_radii
from tf_avae.evaluation.sensitivity import code_spread
from tf_avae.validation import check_image_array, check_positive, check_positive_int

__all__ = ["CollapseMonitor", "RobustnessCallback"]

# Per-dimension RMS spread of mu(x) over held-out images below which an encoder counts as collapsed. Measured on
# colorMNIST ConvNets (latent 64, 5k steps): ~1e-4 - 3e-4 for the runs that stalled at the mean image (VAE and
# plain AVAE at x2 width, seeds 0 and 1, SE x3, lr 1e-3), 0.22 - 0.26 for every run that trained; N(0, I) has 1.
COLLAPSE_THRESHOLD = 0.01


def _tag(key: str) -> str:
    return "robustness/" + key.replace("=", "_")


class RobustnessCallback(keras.callbacks.Callback):
    """Measures linear-probe and adversarial accuracy every ``every_n_steps`` training steps.

    Args:
      probe_images, probe_labels: fixed labelled subset the probes are fitted on (``{task: int [N]}``
        or one int array, task ``"label"``).
      test_images, test_labels: fixed subset the accuracies are measured on.
      every_n_steps: evaluation interval in optimizer steps (``model.optimizer.iterations`` when it
        exists, so ``steps_per_execution`` and resumed runs count right; else batches seen).
      radii: PGD radii (0 is the clean accuracy and is always reported as ``probe/<task>``).
      pgd_steps: PGD iterations (small, e.g. 10, to keep training fast).
      step_size: PGD step; ``None`` = ``2.5 * radius / pgd_steps``.
      feature: ``"mean"`` or ``"backbone"``.
      log_dir: TensorBoard directory, or ``None`` for no summaries.
      batch_size: examples per encoder / attack batch.
      seed: attack seed (the same at every evaluation, so curves show the model changing, not the noise).
      evaluate_at_start: also evaluate before the first step (step 0).
      probe_C: inverse L2 strength of the probe.
    """

    def __init__(
        self,
        probe_images: Any,
        probe_labels: Any,
        test_images: Any,
        test_labels: Any,
        *,
        every_n_steps: int = 1000,
        radii: Any = (0.1,),
        pgd_steps: int = 10,
        step_size: float | None = None,
        feature: str = "mean",
        log_dir: str | None = None,
        batch_size: int = 256,
        seed: int = 0,
        evaluate_at_start: bool = False,
        probe_C: float = DEFAULT_C,
    ):
        super().__init__()
        from tf_avae.data.arrays import check_labels

        self.probe_images = check_image_array("probe_images", probe_images)
        self.probe_labels = check_labels(probe_labels, self.probe_images.shape[0])
        self.test_images = check_image_array("test_images", test_images)
        self.test_labels = check_labels(test_labels, self.test_images.shape[0])
        if not self.probe_labels:
            raise ValueError("probe_labels must hold at least one task; got none.")
        if set(self.probe_labels) != set(self.test_labels):
            raise ValueError(
                f"probe_labels and test_labels must have the same tasks; got {sorted(self.probe_labels)} and "
                f"{sorted(self.test_labels)}."
            )
        self.every_n_steps = check_positive_int("every_n_steps", every_n_steps)
        self.radii = check_radii(radii)
        self.pgd_steps = check_positive_int("pgd_steps", pgd_steps)
        self.step_size = None if step_size is None else check_positive("step_size", step_size)
        self.feature = feature
        self.log_dir = None if log_dir is None else str(log_dir)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.seed = int(seed)
        self.evaluate_at_start = bool(evaluate_at_start)
        self.probe_C = check_positive("probe_C", probe_C)
        self.num_classes = {
            task: int(max(self.probe_labels[task].max(), self.test_labels[task].max())) + 1
            for task in self.probe_labels
        }
        self.records: list[tuple[int, dict[str, float]]] = []
        self._latest: dict[str, float] = {}
        self._probes: dict[str, Any] = {}
        self._evaluator: RobustnessEvaluator | None = None
        self._writer = None
        self._batches = 0
        self._next_step: int | None = None

    # ---------------------------------------------------------------- Keras hooks
    def on_train_begin(self, logs=None):
        self._adapter = as_encoder_adapter(self.model)
        self._adapter.check_feature(self.feature)
        if self.log_dir is not None and self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        step = self._current_step()
        self._next_step = (step // self.every_n_steps + 1) * self.every_n_steps
        if self.evaluate_at_start and not any(s == step for s, _ in self.records):
            self.evaluate(step)

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        step = self._current_step()
        if step >= self._next_step:
            self.evaluate(step)
            self._next_step = (step // self.every_n_steps + 1) * self.every_n_steps

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._latest:
            logs.update({f"robustness/{key}": value for key, value in self._latest.items()})

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    # ---------------------------------------------------------------- evaluation
    def _current_step(self) -> int:
        optimizer = getattr(self.model, "optimizer", None)
        iterations = getattr(optimizer, "iterations", None)
        if iterations is not None:
            return int(np.asarray(iterations))
        return self._batches

    def evaluate(self, step: int) -> dict[str, float]:
        """Refits the probes, measures clean and PGD accuracy, records and logs them at ``step``."""
        adapter = self._adapter if hasattr(self, "_adapter") else as_encoder_adapter(self.model)
        train_features = encode_features(adapter, self.probe_images, self.feature, self.batch_size)
        test_features = encode_features(adapter, self.test_images, self.feature, self.batch_size)
        metrics: dict[str, float] = {}
        for task, labels in self.probe_labels.items():
            self._probes[task] = fit_linear_probe(
                train_features, labels, num_classes=self.num_classes[task], C=self.probe_C, seed=self.seed,
                probe=self._probes.get(task),
            )
            metrics[f"probe/{task}"] = probe_accuracy(self._probes[task], test_features, self.test_labels[task])
        if self._evaluator is None:  # built once: the probes are refitted in place, the graphs stay valid
            self._evaluator = RobustnessEvaluator(
                adapter, self._probes, radii=self.radii, pgd_steps=self.pgd_steps, step_size=self.step_size,
                feature=self.feature, batch_size=self.batch_size,
            )
        metrics.update(self._evaluator(self.test_images, self.test_labels, seed=self.seed))
        self.records.append((int(step), metrics))
        self._latest = dict(metrics)
        if self._writer is not None:
            with self._writer.as_default():
                for key, value in metrics.items():
                    tf.summary.scalar(_tag(key), value, step=int(step))
            self._writer.flush()
        return metrics


class CollapseMonitor(keras.callbacks.Callback):
    """Logs how much the encoder's code depends on its input, and warns when it stops doing so.

    At every epoch end it encodes fixed held-out ``images`` and puts ``code_spread`` -- the per-dimension
    root-mean-square spread of the posterior means mu(x) around their average
    (:func:`~tf_avae.evaluation.code_spread` with ``per_dimension=True``) -- into the epoch logs, so ``History``,
    TensorBoard and a train_lib workdir's history.json keep it. Below ``threshold`` every image gets (nearly) the
    same code: the posterior has collapsed to one point, the decoder draws one image, and a linear probe on mu
    reads nothing. On colorMNIST ConvNets at twice the default width and Adam lr 1e-3 the VAE, the noise-augmented
    VAE and the AVAE (all with a sigmoid decoder mean) fell into it in their first epoch and never left; at the
    default width the VAE and the noise-augmented VAE sat in it for their first 4-5 epochs of 500 steps and then
    trained, so a ``patience`` below 6 would have stopped runs that recovered.
    Each such epoch logs a warning; after ``patience`` consecutive ones (``None``: never) training stops and
    ``stopped_at_epoch`` is set.

    Args:
      images: float ``[N, H, W, C]`` in [0, 1], e.g. 256 test images.
      threshold: the per-dimension spread below which an epoch counts as collapsed.
      patience: collapsed epochs in a row after which training stops, or ``None``.
      batch_size: examples per encoder batch.
    """

    def __init__(self, images: Any, *, threshold: float = COLLAPSE_THRESHOLD, patience: int | None = None,
                 batch_size: int = 256):
        super().__init__()
        self.images = check_image_array("images", images)
        if self.images.shape[0] < 2:
            raise ValueError(f"images must hold at least 2 examples (a spread needs two); got {self.images.shape[0]}.")
        self.threshold = check_positive("threshold", threshold)
        self.patience = None if patience is None else check_positive_int("patience", patience)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.collapsed_epochs = 0  # consecutive, up to the last epoch
        self.stopped_at_epoch: int | None = None
        self._adapter = None

    def on_train_begin(self, logs=None):
        self._adapter = as_encoder_adapter(self.model)  # its compiled encoder is reused every epoch

    def on_epoch_end(self, epoch, logs=None):
        spread = code_spread(self._adapter or self.model, self.images, batch_size=self.batch_size, per_dimension=True)
        if logs is not None:
            logs["code_spread"] = spread
        if spread >= self.threshold:
            self.collapsed_epochs = 0
            return
        self.collapsed_epochs += 1
        logging.warning(
            "Epoch %d: the encoder's code barely depends on its input (code_spread %.2g per dimension over %d "
            "held-out images, below %g; trained encoders here had 0.2-0.45): posterior collapse, the decoder draws one "
            "image for every input. Some runs here left it after 4-5 epochs, others never did; a lower learning rate "
            "or a linear decoder mean trained those (README: 'Posterior collapse is watched').",
            epoch + 1, spread, self.images.shape[0], self.threshold)
        if self.patience is not None and self.collapsed_epochs >= self.patience:
            self.stopped_at_epoch = epoch
            self.model.stop_training = True
