"""Sample and reconstruction quality: test reconstruction MSE and the *classifier FID*.

Classifier FID
--------------
No Inception weights can be downloaded here, so the Frechet distance is computed between Gaussian
fits of the penultimate-layer features of a small ConvNet **trained in this package on the same
dataset** (:func:`train_feature_classifier`, one softmax head per label task on a shared trunk).
Its values are comparable between models evaluated with the same classifier, not with published
Inception FIDs; every key and docstring says "classifier FID". Generated images are decoder means
at ``z ~ N(0, I)``.

The classifier is trained deterministically for a seed (seeded initialisers, numpy-seeded shuffling,
a plain training loop) and cached as ``feature_classifier-<fingerprint>.keras`` in ``cache_dir``;
the fingerprint covers the training configuration and a sample of the data, so a changed setting
never silently reuses an old classifier.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from typing import Any, Callable, Mapping

import keras
import numpy as np
import scipy.linalg
import tensorflow as tf

from tf_avae.evaluation.adapter import as_encoder_adapter
from tf_avae.evaluation.features import map_batches
from tf_avae.validation import check_image_array, check_positive, check_positive_int

__all__ = [
    "reconstruction_error",
    "sample_prior_images",
    "frechet_distance",
    "feature_statistics",
    "classifier_fid",
    "train_feature_classifier",
    "feature_extractor",
    "classifier_accuracy",
]

FEATURE_LAYER = "features"


# ------------------------------------------------------------------------------------------------
# Reconstruction
# ------------------------------------------------------------------------------------------------


def reconstruction_error(model: Any, images: Any, batch_size: int = 256) -> dict[str, float]:
    """Test reconstruction error of ``x`` against the decoder mean at the posterior mean.

    Returns ``{"mse": mean over images and pixels of (x - g(mu(x)))^2,
    "mse/per_image_sum": the same squared error summed over each image's pixels, averaged over
    images}`` (the second is the paper's per-image convention).
    """
    adapter = as_encoder_adapter(model)
    if not adapter.can_reconstruct:
        raise ValueError(f"model {adapter.name} has no decoder: reconstruction error needs decode or reconstruct.")
    images = check_image_array("images", images)
    reconstruct = adapter.compiled("reconstruct")

    @tf.function(reduce_retracing=True, autograph=False)
    def squared_error(batch):
        error = tf.square(batch - reconstruct(batch))
        return tf.reduce_sum(tf.reshape(error, [tf.shape(error)[0], -1]), axis=1)

    per_image = map_batches(squared_error, images, batch_size).astype(np.float64)
    pixels = int(np.prod(images.shape[1:]))
    return {"mse": float(per_image.mean() / pixels), "mse/per_image_sum": float(per_image.mean())}


def sample_prior_images(model: Any, num_samples: int, *, latent_dim: int | None = None, seed: int = 0,
                        batch_size: int = 256) -> np.ndarray:
    """Decoder means at ``num_samples`` latents ``z ~ N(0, I)`` (numpy-seeded), float32 ``[N, H, W, C]``,
    clipped to the pixel range [0, 1] (a decoder with a linear mean can leave it; a sigmoid mean cannot)."""
    adapter = as_encoder_adapter(model)
    if not adapter.can_decode:
        raise ValueError(f"model {adapter.name} has no decoder: sampling needs decode(z).")
    num_samples = check_positive_int("num_samples", num_samples)
    if latent_dim is None:
        latent_dim = getattr(model, "latent_dim", None)
    if latent_dim is None:
        raise ValueError("latent_dim must be given for a model without a latent_dim attribute.")
    latents = np.random.default_rng(seed).standard_normal((num_samples, int(latent_dim))).astype(np.float32)
    return np.clip(map_batches(adapter.compiled("decode"), latents, batch_size), 0.0, 1.0)


# ------------------------------------------------------------------------------------------------
# Frechet distance
# ------------------------------------------------------------------------------------------------


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = 1e-6) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))`` in float64, with
    ``scipy.linalg.sqrtm``. A product whose square root is not finite (singular covariances from few
    samples) is retried with ``eps * I`` added to both; the imaginary round-off of ``sqrtm`` is dropped
    (a warning if it is not negligible). Never returns a value below 0.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise ValueError(f"mu1 and mu2 must be vectors of one length; got shapes {mu1.shape} and {mu2.shape}.")
    dim = mu1.shape[0]
    for name, sigma in (("sigma1", sigma1), ("sigma2", sigma2)):
        if sigma.shape != (dim, dim):
            raise ValueError(f"{name} must have shape ({dim}, {dim}) to match the means; got {sigma.shape}.")
        if not np.all(np.isfinite(sigma)):
            raise ValueError(f"{name} contains NaN or infinite values.")
    difference = mu1 - mu2
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.all(np.isfinite(covmean)):
        offset = np.eye(dim) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        largest = np.max(np.abs(covmean.imag))
        if largest > 1e-3 * max(1.0, np.max(np.abs(covmean.real))):
            warnings.warn(
                f"frechet_distance: sqrtm has an imaginary component up to {largest:.3g}; using the real part."
            )
        covmean = covmean.real
    value = difference @ difference + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular-matrix chatter; the result is checked by the caller
        return scipy.linalg.sqrtm(matrix)


def feature_statistics(feature_model: Any, images: Any, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[F]`` and covariance ``[F, F]`` (float64) of the feature model's outputs on ``images``."""
    return _statistics(_feature_fn(feature_model), images, batch_size, "images")


def _statistics(feature_fn, images, batch_size, name) -> tuple[np.ndarray, np.ndarray]:
    features = map_batches(feature_fn, check_image_array(name, images), batch_size)
    features = features.reshape(features.shape[0], -1).astype(np.float64)
    if features.shape[0] < 2:
        raise ValueError(f"{name} must hold at least 2 examples for a covariance; got {features.shape[0]}.")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def classifier_fid(real_images: Any, generated_images: Any, feature_model: Any, batch_size: int = 256) -> float:
    """Classifier FID (module doc): Frechet distance between feature Gaussians of two image sets.

    ``feature_model``: the classifier from :func:`train_feature_classifier` (its ``features`` layer is
    read), or any callable / Keras model ``images -> [B, F]``.
    """
    feature_fn = _feature_fn(feature_model)  # one graph for both sets
    mu1, sigma1 = _statistics(feature_fn, real_images, batch_size, "real_images")
    mu2, sigma2 = _statistics(feature_fn, generated_images, batch_size, "generated_images")
    return frechet_distance(mu1, sigma1, mu2, sigma2)


def feature_extractor(classifier: keras.Model) -> keras.Model:
    """The sub-model ``images -> features`` of a classifier from :func:`train_feature_classifier`."""
    return keras.Model(classifier.inputs, classifier.get_layer(FEATURE_LAYER).output, name="feature_extractor")


def _feature_fn(feature_model: Any) -> Callable[[tf.Tensor], tf.Tensor]:
    if isinstance(feature_model, keras.Model) and any(layer.name == FEATURE_LAYER for layer in feature_model.layers):
        if isinstance(feature_model.output, (dict, list, tuple)):
            feature_model = feature_extractor(feature_model)
    if not callable(feature_model):
        raise TypeError(f"feature_model must be callable (images -> features); got {feature_model!r}.")
    if isinstance(feature_model, keras.Model):
        return tf.function(lambda x: feature_model(x, training=False), reduce_retracing=True, autograph=False)
    return tf.function(feature_model, reduce_retracing=True, autograph=False)


# ------------------------------------------------------------------------------------------------
# The in-package feature classifier
# ------------------------------------------------------------------------------------------------


def _check_task_labels(labels: Any, num_examples: int) -> dict[str, np.ndarray]:
    from tf_avae.data.arrays import check_labels

    checked = check_labels(labels, num_examples)
    if not checked:
        raise ValueError("labels must hold at least one task (dict task -> int array) to train a classifier.")
    return checked


def _build_classifier(image_shape, num_classes: Mapping[str, int], feature_units: int, seed: int) -> keras.Model:
    """Conv(32)-Conv(64)[-Conv(64)...] stride 2 until the map is at most 7x7, Dense(features), heads."""
    initializer_seed = iter(range(seed * 1000, seed * 1000 + 1000))

    def init():
        return keras.initializers.GlorotUniform(seed=next(initializer_seed))

    inputs = keras.Input(image_shape, name="images")
    h = inputs
    size, stage = min(image_shape[:2]), 0
    while stage == 0 or (size > 7 and stage < 4):
        h = keras.layers.Conv2D(32 if stage == 0 else 64, 3, strides=2, padding="same", activation="relu",
                                kernel_initializer=init(), name=f"conv_{stage}")(h)
        size, stage = (size + 1) // 2, stage + 1
    h = keras.layers.Flatten(name="flatten")(h)
    features = keras.layers.Dense(feature_units, activation="relu", kernel_initializer=init(), name=FEATURE_LAYER)(h)
    outputs = {task: keras.layers.Dense(k, kernel_initializer=init(), name=f"logits_{task}")(features)
               for task, k in num_classes.items()}
    return keras.Model(inputs, outputs, name="feature_classifier")


def _fingerprint(images: np.ndarray, labels: Mapping[str, np.ndarray], config: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    digest.update(str(images.shape).encode())
    step = max(1, images.shape[0] // 256)
    digest.update(np.ascontiguousarray(images[::step]).tobytes())
    for task in sorted(labels):
        digest.update(task.encode())
        digest.update(np.ascontiguousarray(labels[task]).tobytes())
    return digest.hexdigest()[:16]


def train_feature_classifier(
    images: Any,
    labels: Any,
    *,
    epochs: int = 3,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    feature_units: int = 128,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    verbose: bool = False,
) -> keras.Model:
    """Trains (or loads from ``cache_dir``) the small ConvNet whose features define the classifier FID.

    Args:
      images: float ``[N, H, W, C]`` in [0, 1] (the dataset's training split).
      labels: ``{task: int [N]}`` (or one int array): one softmax head per task, loss summed.
      epochs, batch_size, learning_rate: Adam training schedule.
      feature_units: width of the ``features`` layer (the FID feature dimension).
      seed: fixes initialisation and shuffling; the same seed and data give the same weights.
      cache_dir: directory for ``feature_classifier-<fingerprint>.keras``; reused when present.
      verbose: print one line per epoch.

    Returns:
      A functional Keras model ``images -> {task: logits}`` with a layer named ``features``.
    """
    images = check_image_array("images", images)
    labels = _check_task_labels(labels, images.shape[0])
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive("learning_rate", learning_rate)
    feature_units = check_positive_int("feature_units", feature_units)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be an integer >= 0; got {seed!r}.")
    num_classes = {task: int(y.max()) + 1 for task, y in labels.items()}
    config = dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, feature_units=feature_units,
                  seed=int(seed), num_classes=num_classes, version=1)
    path = None
    if cache_dir is not None:
        path = os.path.join(os.fspath(cache_dir), f"feature_classifier-{_fingerprint(images, labels, config)}.keras")
        if os.path.exists(path):
            return keras.saving.load_model(path)

    model = _build_classifier(images.shape[1:], num_classes, feature_units, int(seed))
    optimizer = keras.optimizers.Adam(learning_rate)
    tasks = list(labels)

    @tf.function(reduce_retracing=True, autograph=False)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.add_n([
                tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y[i], logits=logits[task]))
                for i, task in enumerate(tasks)
            ])
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    rng = np.random.default_rng(seed)
    label_matrix = np.stack([labels[task] for task in tasks]).astype(np.int32)  # [T, N]
    for epoch in range(epochs):
        order = rng.permutation(images.shape[0])
        losses = []
        for start in range(0, order.size, batch_size):
            index = np.sort(order[start : start + batch_size])
            losses.append(float(train_step(tf.constant(images[index]), tf.constant(label_matrix[:, index]))))
        if verbose:
            print(f"feature classifier epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f}", flush=True)
    if path is not None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = path + f".tmp-{os.getpid()}.keras"
        model.save(temporary)
        os.replace(temporary, path)  # atomic: a concurrent evaluation never reads a half-written file
    return model


def classifier_accuracy(classifier: keras.Model, images: Any, labels: Any, batch_size: int = 256) -> dict[str, float]:
    """Test accuracy in percent of the feature classifier per task (a sanity check of the FID features)."""
    images = check_image_array("images", images)
    labels = _check_task_labels(labels, images.shape[0])
    predict = tf.function(lambda x: classifier(x, training=False), reduce_retracing=True, autograph=False)
    correct = {task: [] for task in labels}
    for start in range(0, images.shape[0], batch_size):
        logits = predict(tf.constant(images[start : start + batch_size]))
        for task in labels:
            prediction = np.argmax(logits[task].numpy(), axis=-1)
            correct[task].append(prediction == labels[task][start : start + batch_size])
    return {task: float(100.0 * np.mean(np.concatenate(c))) for task, c in correct.items()}
