"""Linear probe: a softmax classifier on frozen, standardised features (DESIGN section 4, step 3).

Decisions
---------
* **Fit with scikit-learn, run in Keras.** The probe is fitted by ``sklearn``'s multinomial
  ``LogisticRegression`` (L-BFGS, full batch, L2 penalty ``1 / C`` on standardised features): a convex
  problem solved to convergence, deterministic, with no learning rate or epoch count to tune, i.e. the
  "linear classifier trained normally" of the protocol. Its ``coef_`` / ``intercept_`` are then copied
  into a Keras ``Dense(num_classes)`` layer inside :class:`LinearProbe`, so the probe is a
  differentiable TensorFlow function that PGD can attack through.
* **Standardisation** (per-feature mean and standard deviation of the training features) lives in the
  probe as two non-trainable weights, so ``probe(features)`` takes raw features. A feature that is
  constant on the training set gets scale 1 (it then contributes nothing). ``standardise=False`` only
  centres them (scale 1 everywhere): a diagnostic of how much robustness figures depend on the probe.
* **Refitting in place.** :func:`fit_linear_probe` can write into an existing probe of the same shape
  (``probe=``): graphs that captured the probe's variables (the compiled PGD of
  :class:`~tf_avae.evaluation.RobustnessCallback`) see the new weights without being retraced.
* **One BLAS thread for the fit.** On the shared 2-core CPU, OpenBLAS with its default 2 threads made
  the 50k x 64 fit take 1.5-24 s (busy-waiting threads competing with other processes); limited to one
  thread (``threadpoolctl``) it takes 0.6-0.7 s every time.
* Classes absent from the training labels get a zero weight and a bias 30 below the smallest fitted
  bias (never predicted, finite logits).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from tf_avae.evaluation.adapter import as_encoder_adapter
from tf_avae.validation import check_positive, check_positive_int

__all__ = ["DEFAULT_C", "LinearProbe", "fit_linear_probe", "probe_accuracy", "make_logits_fn",
           "check_features_labels"]

DEFAULT_C = 1.0  # the evaluation protocol's probe: inverse L2 strength on standardised features

_ABSENT_CLASS_MARGIN = 30.0


@keras.saving.register_keras_serializable(package="tf_avae")
class LinearProbe(keras.Model):
    """``logits = Dense(num_classes)((features - feature_mean) / feature_scale)``."""

    def __init__(self, num_features: int, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.num_features = check_positive_int("num_features", num_features)
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.feature_mean = self.add_weight(
            shape=(self.num_features,), initializer="zeros", trainable=False, name="feature_mean"
        )
        self.feature_scale = self.add_weight(
            shape=(self.num_features,), initializer="ones", trainable=False, name="feature_scale"
        )
        self.classifier = keras.layers.Dense(self.num_classes, name="classifier")
        self.classifier.build((None, self.num_features))

    def call(self, features):
        features = tf.cast(features, tf.float32)
        return self.classifier((features - self.feature_mean) / self.feature_scale)

    def assign_parameters(self, feature_mean, feature_scale, kernel, bias) -> None:
        """Sets the standardisation ([F], [F]) and the linear map ([F, K], [K])."""
        self.feature_mean.assign(np.asarray(feature_mean, np.float32))
        self.feature_scale.assign(np.asarray(feature_scale, np.float32))
        self.classifier.kernel.assign(np.asarray(kernel, np.float32))
        self.classifier.bias.assign(np.asarray(bias, np.float32))

    def get_config(self):
        return {**super().get_config(), "num_features": self.num_features, "num_classes": self.num_classes}


def check_features_labels(features: Any, labels: Any, features_name="features", labels_name="labels"):
    """Float ``[N, F]`` features and int ``[N]`` labels >= 0, both finite; returns numpy arrays."""
    features = np.asarray(features)
    if not np.issubdtype(features.dtype, np.floating):
        raise TypeError(f"{features_name} must be a float array [N, F]; got dtype {features.dtype}.")
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"{features_name} must have shape [N, F] with N >= 1; got shape {features.shape}.")
    if not np.all(np.isfinite(features)):
        raise ValueError(f"{features_name} contains NaN or infinite values; features must be finite.")
    labels = np.asarray(labels)
    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{labels_name} must be integer class indices; got dtype {labels.dtype}.")
    if labels.shape != (features.shape[0],):
        raise ValueError(
            f"{labels_name} must have shape ({features.shape[0]},) to match {features_name}; got {labels.shape}."
        )
    if labels.min() < 0:
        raise ValueError(f"{labels_name} must be class indices >= 0; got a minimum of {labels.min()}.")
    return features.astype(np.float32, copy=False), labels.astype(np.int64)


def fit_linear_probe(
    features_train: Any,
    labels_train: Any,
    *,
    num_classes: int | None = None,
    C: float = DEFAULT_C,
    standardise: bool = True,
    max_iter: int = 1000,
    seed: int = 0,
    probe: LinearProbe | None = None,
) -> LinearProbe:
    """Fits a :class:`LinearProbe` on ``features_train`` ``[N, F]`` and integer ``labels_train`` ``[N]``.

    Args:
      num_classes: defaults to ``max(labels_train) + 1``; must exceed every label.
      C: inverse L2 strength of the logistic regression on standardised features (> 0).
      standardise: divide each feature by its training standard deviation before the fit (the default, which
        puts the L2 penalty on every feature's scale alike). False only centres them, so the penalty acts on the
        raw scale and the fit leans on the features that vary most (a diagnostic: how much the robustness
        figures owe to the probe's weighting of low-variance directions).
      max_iter: L-BFGS iterations (a non-converged fit is used as is, with no warning).
      seed: passed as ``random_state`` (L-BFGS is deterministic; kept for a uniform signature).
      probe: an existing probe of matching shape to overwrite in place (see module doc).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    features, labels = check_features_labels(features_train, labels_train, "features_train", "labels_train")
    C = check_positive("C", C)
    if not isinstance(standardise, (bool, np.bool_)):
        raise TypeError(f"standardise must be a bool; got {standardise!r}.")
    max_iter = check_positive_int("max_iter", max_iter)
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    num_classes = check_positive_int("num_classes", num_classes)
    if labels.max() >= num_classes:
        raise ValueError(f"labels_train must be < num_classes={num_classes}; got a maximum of {labels.max()}.")
    num_features = features.shape[1]
    if probe is None:
        probe = LinearProbe(num_features, num_classes)
    elif (probe.num_features, probe.num_classes) != (num_features, num_classes):
        raise ValueError(
            f"probe has shape (num_features={probe.num_features}, num_classes={probe.num_classes}); "
            f"the data need ({num_features}, {num_classes})."
        )

    feature_mean = features.mean(axis=0, dtype=np.float64)
    if standardise:
        feature_scale = features.std(axis=0, dtype=np.float64)
        feature_scale = np.where(feature_scale > 1e-8 * np.maximum(1.0, np.abs(feature_mean)), feature_scale, 1.0)
    else:
        feature_scale = np.ones_like(feature_mean)
    standardised = (features - feature_mean) / feature_scale

    kernel = np.zeros((num_features, num_classes))
    bias = np.zeros(num_classes)
    present = np.unique(labels)
    if present.size == 1:
        fitted_bias = np.zeros(1)
    else:
        regression = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            regression.fit(standardised, labels)
        coef, intercept = regression.coef_, regression.intercept_
        if present.size == 2:  # sklearn stores one row w for p(class 1) = sigmoid(w.x + b)
            coef = np.concatenate([np.zeros_like(coef), coef])
            intercept = np.concatenate([[0.0], intercept])
        kernel[:, present] = coef.T
        fitted_bias = intercept
    bias[:] = fitted_bias.min() - _ABSENT_CLASS_MARGIN
    bias[present] = fitted_bias
    probe.assign_parameters(feature_mean, feature_scale, kernel, bias)
    return probe


def probe_accuracy(probe: LinearProbe, features: Any, labels: Any, batch_size: int = 4096) -> float:
    """Accuracy in percent (0-100) of ``probe`` on ``features`` ``[N, F]`` against ``labels`` ``[N]``."""
    features, labels = check_features_labels(features, labels)
    predictions = []
    for start in range(0, features.shape[0], batch_size):
        predictions.append(np.argmax(probe(features[start : start + batch_size]).numpy(), axis=-1))
    return float(100.0 * np.mean(np.concatenate(predictions) == labels))


def make_logits_fn(model: Any, probe: LinearProbe, feature: str = "mean") -> Callable[[tf.Tensor], tf.Tensor]:
    """The composed, differentiable classifier ``images -> probe(feature(images))`` that PGD attacks."""
    adapter = as_encoder_adapter(model)
    adapter.check_feature(feature)
    if not isinstance(probe, LinearProbe):
        raise TypeError(f"probe must be a LinearProbe (from fit_linear_probe); got {type(probe).__name__}.")

    def logits_fn(images):
        return probe(adapter.representation(images, feature))

    return logits_fn
