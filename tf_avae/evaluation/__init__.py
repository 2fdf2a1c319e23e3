"""Evaluation of representation models (DESIGN section 4): linear probe, PGD robustness, reconstruction
MSE, classifier FID, latent consistency, similarity of augmented views, a training callback, plots and
the whole suite (:func:`evaluate_model`). Every metric function returns a plain dict of floats
(accuracies in percent) that scripts print and save.
"""

from tf_avae.evaluation.adapter import FEATURES, EncoderAdapter, as_encoder_adapter
from tf_avae.evaluation.callback import CollapseMonitor, RobustnessCallback
from tf_avae.evaluation.consistency import encode_decode_chain, latent_consistency
from tf_avae.evaluation.features import encode_features, map_batches
from tf_avae.evaluation.plots import (plot_chain, plot_panels, plot_robustness, plot_similarity_histogram,
                                     plot_training_curves)
from tf_avae.evaluation.probe import LinearProbe, fit_linear_probe, make_logits_fn, probe_accuracy
from tf_avae.evaluation.progress import Progress
from tf_avae.evaluation.quality import (
    classifier_accuracy,
    classifier_fid,
    feature_extractor,
    feature_statistics,
    frechet_distance,
    reconstruction_error,
    sample_prior_images,
    train_feature_classifier,
)
from tf_avae.evaluation.robustness import RobustnessEvaluator, radius_key, robust_accuracy
from tf_avae.evaluation.sensitivity import code_spread, displacement_points, encoder_sensitivity, latent_displacement
from tf_avae.evaluation.similarity import augmentation_similarity, cosine_similarity, similarity_summary
from tf_avae.evaluation.suite import PLOT_FILES, evaluate_model

__all__ = [
    "FEATURES",
    "PLOT_FILES",
    "CollapseMonitor",
    "EncoderAdapter",
    "LinearProbe",
    "Progress",
    "RobustnessCallback",
    "RobustnessEvaluator",
    "as_encoder_adapter",
    "augmentation_similarity",
    "classifier_accuracy",
    "classifier_fid",
    "code_spread",
    "cosine_similarity",
    "displacement_points",
    "encode_decode_chain",
    "encode_features",
    "encoder_sensitivity",
    "latent_displacement",
    "evaluate_model",
    "feature_extractor",
    "feature_statistics",
    "fit_linear_probe",
    "frechet_distance",
    "latent_consistency",
    "make_logits_fn",
    "map_batches",
    "plot_chain",
    "plot_panels",
    "plot_robustness",
    "plot_similarity_histogram",
    "plot_training_curves",
    "probe_accuracy",
    "radius_key",
    "reconstruction_error",
    "robust_accuracy",
    "sample_prior_images",
    "similarity_summary",
    "train_feature_classifier",
]
