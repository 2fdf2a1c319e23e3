"""The whole evaluation protocol of one model on one dataset (DESIGN section 4), as one flat dict.

Stages: load data -> encode -> fit one linear probe per task on the train split -> clean and PGD
accuracy on the test split -> reconstruction MSE -> latent consistency and an encode-decode chain
-> classifier FID -> similarity of augmented views -> PNG plots.

A model without a decoder (e.g. an exported encoder) gets the encoder-only stages; the skipped keys
are absent and ``notes`` says why.

Cost, measured on the shared 2-core CPU (load average 2-4 from other jobs) with the default ConvNet
(filters 32-64, latent 64), colorMNIST, 40 PGD steps, radii (0, 0.1, 0.2), probes on all 50k train
images: PGD through :class:`~tf_avae.evaluation.RobustnessEvaluator` runs at 119-130 attacked
images/s. 10k test images x 2 tasks x 2 non-zero radii is at most 40k attacked images (5.1-5.6 min)
when every example is classified correctly and survives every radius; attacking only the correct
examples and cascading over radii (see :mod:`robustness`) lowers that. The other stages take about
1 min for 10k test images, plus ~25 s the first time the classifier-FID ConvNet is trained (cached
in ``classifier_dir`` afterwards). Worst case ~7 min, well under the 15 min budget.
"""

from __future__ import annotations

import os
import time
from typing import Any, Mapping

import numpy as np

from tf_avae.adversarial import REGIONS
from tf_avae.evaluation.adapter import as_encoder_adapter, check_feature
from tf_avae.evaluation.consistency import encode_decode_chain, latent_consistency
from tf_avae.evaluation.sensitivity import encoder_sensitivity
from tf_avae.evaluation.features import encode_features
from tf_avae.evaluation.probe import DEFAULT_C, fit_linear_probe, probe_accuracy
from tf_avae.evaluation.progress import Progress
from tf_avae.evaluation.quality import (
    classifier_accuracy,
    classifier_fid,
    reconstruction_error,
    sample_prior_images,
    train_feature_classifier,
)
from tf_avae.evaluation.robustness import DEFAULT_RADII, RobustnessEvaluator, check_radii
from tf_avae.evaluation.similarity import augmentation_similarity
from tf_avae.validation import check_choice, check_image_array, check_positive_int

__all__ = ["evaluate_model", "PLOT_FILES"]

PLOT_FILES = {
    "robustness": "robustness.png",
    "chain": "encode_decode_chain.png",
    "similarity": "similarity_histogram.png",
}


def _check_arrays(arrays: Any) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
    from tf_avae.data.arrays import check_labels

    if not isinstance(arrays, Mapping) or not {"train", "test"} <= set(arrays):
        raise TypeError(
            "arrays must be a dict {'train': (images, labels), 'test': (images, labels)}; "
            f"got {type(arrays).__name__} with keys {sorted(arrays) if isinstance(arrays, Mapping) else None}."
        )
    checked = {}
    for split in ("train", "test"):
        try:
            images, labels = arrays[split]
        except (TypeError, ValueError):
            raise TypeError(f"arrays[{split!r}] must be a pair (images, labels); got {arrays[split]!r}.") from None
        images = check_image_array(f"arrays[{split!r}] images", images)
        checked[split] = (images, check_labels(labels, images.shape[0]))
    return checked


def _load(dataset_name, split, limit, seed, data_dir):
    from tf_avae import data

    return data.load_arrays(dataset_name, split, limit=limit, seed=seed, data_dir=data_dir)


def _default_augmentation(dataset_name: str, seed: int, notes: list[str]):
    try:
        from tf_avae import augment
    except ImportError as error:  # the augmentation module may be mid-edit in a working tree
        notes.append(f"similarity skipped: tf_avae.augment could not be imported ({error}).")
        return None
    if dataset_name in augment.SIMCLR_PRESETS:
        return augment.simclr_augment(dataset_name, seed=seed)
    notes.append(f"similarity: no SimCLR preset for {dataset_name!r}; used SimCLRAugment defaults.")
    return augment.SimCLRAugment(seed=seed)


def evaluate_model(
    model: Any,
    dataset_name: str,
    *,
    limit: int | None = None,
    radii: Any = DEFAULT_RADII,
    pgd_steps: int = 40,
    probe_train_limit: int | None = None,
    feature: str = "mean",
    output_dir: str | os.PathLike | None = None,
    seed: int = 0,
    progress: bool = True,
    classifier_dir: str | os.PathLike | None = None,
    arrays: Mapping[str, Any] | None = None,
    data_dir: Any = None,
    data_seed: int = 0,
    batch_size: int = 256,
    attack_batch_size: int = 512,
    step_size: float | None = None,
    cascade: bool = True,
    jit_compile: bool = False,
    probe_C: float = DEFAULT_C,
    augmentation: Any = None,
    consistency_steps: int = 5,
    chain_images: int = 8,
    similarity_limit: int | None = 2000,
    classifier_epochs: int = 3,
    sensitivity_limit: int | None = 500,
    attack_regions: Any = (),
) -> dict[str, Any]:
    """Evaluates ``model`` on ``dataset_name``; returns one flat JSON-serialisable dict.

    Args:
      model: a tf_avae model, a loaded SavedModel, or an :class:`~tf_avae.evaluation.EncoderAdapter`.
      dataset_name: a :mod:`tf_avae.data` dataset (its ``train`` split fits the probes and the FID
        classifier, its ``test`` split is evaluated); any name when ``arrays`` is given.
      limit: evaluate the first ``limit`` test examples.
      radii: L-inf PGD radii (pixels in [0, 1]); 0 = clean accuracy.
      pgd_steps: PGD iterations (random start, step ``2.5 * eps / steps`` unless ``step_size``).
      probe_train_limit: fit probes (and the FID classifier) on the first ``probe_train_limit`` train examples.
      feature: ``"mean"`` (posterior mean) or ``"backbone"`` (``encoder.features``).
      output_dir: where the PNGs (:data:`PLOT_FILES`) are written; ``None`` = no plots.
      seed: seeds the attacks, prior samples, augmentation, pairing and the FID classifier.
      progress: print stage lines and progress bars.
      classifier_dir: cache directory of the classifier-FID ConvNet (``None``: trained, not cached).
      arrays: ``{"train": (images, labels), "test": (images, labels)}`` instead of loading ``dataset_name``
        (``limit`` and ``probe_train_limit`` still apply).
      data_dir, data_seed: passed to :func:`tf_avae.data.load_arrays` (``data_seed`` fixes the ColorMNIST
        colours; kept apart from ``seed`` so every evaluation seed sees the same test set).
      batch_size / attack_batch_size: examples per forward pass / per PGD batch.
      step_size, cascade, jit_compile: PGD options (:class:`~tf_avae.evaluation.RobustnessEvaluator`).
      attack_regions: also attack only these parts of the images, ``"background"`` (pixels black in every
        channel) and/or ``"foreground"`` (:func:`tf_avae.adversarial.region_mask`), keyed
        ``adv_<region>/<task>/eps=<r>``: where an encoder is vulnerable.
      probe_C: inverse L2 strength of the logistic-regression probe.
      augmentation: layer or callable for the similarity analysis; ``None`` = the dataset's SimCLR preset.
      consistency_steps: K of the encode -> decode consistency and chain.
      sensitivity_limit: the encoder's random- vs worst-direction sensitivity is measured on this many test
        images (``None`` or 0: skipped).
      chain_images: images in the chain plot.
      similarity_limit: test examples used for the similarity analysis (``None`` = all).
      classifier_epochs: training epochs of the FID classifier.

    Returns:
      ``probe/<task>`` (clean test accuracy %), ``adv/<task>/eps=<r>`` (%) and ``adv_<region>/...``, ``mse``,
      ``mse/per_image_sum``, ``consistency/step=<k>``, ``fid`` (classifier FID), ``fid/classifier_accuracy/<task>`` (%),
      ``similarity/...``, ``time/<stage>`` (s), ``data/num_train``, ``data/num_test`` and ``notes``
      (list of str).
    """
    total_start = time.perf_counter()
    adapter = as_encoder_adapter(model)
    feature = adapter.check_feature(check_feature(feature))
    radii = check_radii(radii)
    pgd_steps = check_positive_int("pgd_steps", pgd_steps)
    if isinstance(attack_regions, str):
        attack_regions = (attack_regions,)
    attack_regions = [check_choice("attack_regions", region, REGIONS) for region in attack_regions]
    consistency_steps = check_positive_int("consistency_steps", consistency_steps)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be an integer >= 0; got {seed!r}.")
    for name, value in (("limit", limit), ("probe_train_limit", probe_train_limit),
                        ("similarity_limit", similarity_limit)):
        if value is not None:
            check_positive_int(name, value)
    report = Progress(progress)
    results: dict[str, Any] = {}
    notes: list[str] = []

    def stage(key, name=None, total=None):
        return report.stage(name or key, total, key=key)

    # -- data
    with stage("data"):
        if arrays is not None:
            checked = _check_arrays(arrays)
            train_images, train_labels = checked["train"]
            test_images, test_labels = checked["test"]
            train_images = train_images[:probe_train_limit]
            train_labels = {k: v[:probe_train_limit] for k, v in train_labels.items()}
            test_images = test_images[:limit]
            test_labels = {k: v[:limit] for k, v in test_labels.items()}
        else:
            train_images, train_labels = _load(dataset_name, "train", probe_train_limit, data_seed, data_dir)
            test_images, test_labels = _load(dataset_name, "test", limit, data_seed, data_dir)
    tasks = [task for task in test_labels if task in train_labels]
    if not tasks:
        raise ValueError(
            f"the train and test splits of {dataset_name!r} must share at least one labelled task; got train "
            f"tasks {sorted(train_labels)} and test tasks {sorted(test_labels)}."
        )
    results["data/num_train"] = int(train_images.shape[0])
    results["data/num_test"] = int(test_images.shape[0])

    # -- linear probes
    with stage("encode", f"encode ({feature})", total=train_images.shape[0] + test_images.shape[0]) as advance:
        train_features = encode_features(adapter, train_images, feature, batch_size)
        advance(train_images.shape[0])
        test_features = encode_features(adapter, test_images, feature, batch_size)
        advance(test_images.shape[0])
    probes = {}
    with stage("probe", "linear probes"):
        for task in tasks:
            num_classes = int(max(train_labels[task].max(), test_labels[task].max())) + 1
            probes[task] = fit_linear_probe(train_features, train_labels[task], num_classes=num_classes, C=probe_C,
                                            seed=seed)
            results[f"probe/{task}"] = probe_accuracy(probes[task], test_features, test_labels[task])

    # -- robustness
    start = time.perf_counter()
    for region in dict.fromkeys(["all", *attack_regions]):  # each region once, every pixel first
        evaluator = RobustnessEvaluator(adapter, probes, radii=radii, pgd_steps=pgd_steps, step_size=step_size,
                                        feature=feature, batch_size=attack_batch_size, cascade=cascade,
                                        jit_compile=jit_compile, region=region)
        results.update(evaluator(test_images, {t: test_labels[t] for t in tasks}, seed=seed, progress=report))
    report.times["robustness"] = time.perf_counter() - start
    if sensitivity_limit:
        with stage("sensitivity", "encoder sensitivity (random vs worst direction)"):
            results.update(encoder_sensitivity(adapter, test_images[:sensitivity_limit], seed=seed))

    # -- decoder-based metrics
    chain = None
    if adapter.can_reconstruct:
        with stage("mse", "reconstruction MSE"):
            results.update(reconstruction_error(adapter, test_images, batch_size))
        with stage("consistency", "latent consistency"):
            results.update(latent_consistency(adapter, test_images, consistency_steps, batch_size))
            chain = encode_decode_chain(adapter, test_images[:chain_images], consistency_steps)
    else:
        notes.append("mse and consistency skipped: the model has no decoder (no decode or reconstruction output).")
    if adapter.can_decode:
        with stage("fid", "classifier FID"):
            classifier = train_feature_classifier(
                train_images, {t: train_labels[t] for t in tasks}, epochs=classifier_epochs, seed=seed,
                cache_dir=classifier_dir, verbose=progress,
            )
            latent_dim = int(adapter.compiled("mean")(test_images[:1]).shape[-1])
            generated = sample_prior_images(adapter, test_images.shape[0], latent_dim=latent_dim, seed=seed,
                                            batch_size=batch_size)
            results["fid"] = classifier_fid(test_images, generated, classifier, batch_size)
            accuracy = classifier_accuracy(classifier, test_images, {t: test_labels[t] for t in tasks}, batch_size)
            results.update({f"fid/classifier_accuracy/{task}": value for task, value in accuracy.items()})
        notes.append("fid is a classifier FID: features of a small ConvNet trained in tf_avae on this dataset's "
                     "train split, not Inception; compare it only between models evaluated with it.")
    else:
        notes.append("fid skipped: the model has no decode(z) to sample from the prior.")

    # -- similarity of augmented views
    similarity_arrays = None
    if augmentation is None:
        augmentation = _default_augmentation(dataset_name, int(seed), notes)
    if augmentation is not None:
        with stage("similarity", "augmentation similarity"):
            metrics, similarity_arrays = augmentation_similarity(
                adapter, test_images[:similarity_limit], augmentation, feature=feature, batch_size=batch_size,
                seed=seed,
            )
            results.update(metrics)

    # -- plots
    if output_dir is not None:
        from tf_avae.evaluation import plots

        with stage("plots"):
            output_dir = os.fspath(output_dir)
            os.makedirs(output_dir, exist_ok=True)
            plots.plot_robustness(results, os.path.join(output_dir, PLOT_FILES["robustness"]),
                                  title=f"{adapter.name} on {dataset_name}: adversarial accuracy")
            if chain is not None:
                plots.plot_chain(chain, os.path.join(output_dir, PLOT_FILES["chain"]), max_images=chain_images)
            if similarity_arrays is not None:
                plots.plot_similarity_histogram(similarity_arrays["same"], similarity_arrays["different"],
                                                os.path.join(output_dir, PLOT_FILES["similarity"]))

    results.update({f"time/{name}": float(seconds) for name, seconds in report.times.items()})
    results["time/total"] = float(time.perf_counter() - total_start)
    results["notes"] = notes
    return results
