r"""Evaluates a trained model: linear probes, PGD robustness, reconstruction, classifier FID, latent
consistency and augmentation similarity; writes eval.json, eval_notes.json and PNG plots.

    python scripts/evaluate.py --workdir runs/avae_color_mnist
    python scripts/evaluate.py --workdir saved_models/avae_color_mnist/1 --limit 1000
    python scripts/evaluate.py --workdir runs/avae_color_mnist --radii=0,0.05,0.1,0.2 --pgd_steps=100
    python scripts/evaluate.py --workdir runs/avae_color_mnist --attack_regions=background,foreground
"""

import json

from absl import app, flags

from tf_avae import eval_lib

_WORKDIR = flags.DEFINE_string("workdir", None, "A training workdir, or an exported SavedModel version directory.")
_LIMIT = flags.DEFINE_integer("limit", None, "Evaluate the first N test examples only.")
_PROBE_LIMIT = flags.DEFINE_integer("probe_train_limit", None, "Fit the probes on the first N train examples.")
_RADII = flags.DEFINE_list("radii", ["0", "0.1", "0.2"], "L-inf PGD radii (pixels in [0, 1]).")
_STEPS = flags.DEFINE_integer("pgd_steps", 40, "PGD steps (random start).")
_DATASET = flags.DEFINE_string("dataset", None, "Dataset name (default: the one the model was trained on).")
_FEATURE = flags.DEFINE_enum("feature", "auto", list(eval_lib.FEATURES), "Probe features (auto: backbone for ResNets).")
_OUTPUT = flags.DEFINE_string("output_dir", None, "Where to write (default: the workdir; <savedmodel>-eval).")
_REGIONS = flags.DEFINE_list("attack_regions", [], "Also attack only the background (pixels black in every channel) "
                             "and/or the foreground (the other pixels): adv_<region>/<task>/eps=<r> in eval.json.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the attacks and samples.")
_CLASSIFIER_DIR = flags.DEFINE_string("classifier_dir", None, "Cache of the classifier-FID network "
                                      "(default: ~/.cache/tf_avae/fid_classifiers).")
flags.mark_flag_as_required("workdir")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from tf_avae.adversarial import REGIONS
    from tf_avae.data import data_dir

    classifier_dir = _CLASSIFIER_DIR.value or str(data_dir() / "fid_classifiers")
    unknown = sorted(set(_REGIONS.value) - set(REGIONS))
    if unknown:
        raise app.UsageError(f"--attack_regions must be among {list(REGIONS)}; got {unknown}")
    try:
        radii = tuple(float(r) for r in _RADII.value)
    except ValueError:
        raise app.UsageError(f"--radii must be numbers separated by commas; got {_RADII.value}") from None
    results = eval_lib.evaluate_path(
        _WORKDIR.value, dataset=_DATASET.value, output_dir=_OUTPUT.value, feature=_FEATURE.value,
        limit=_LIMIT.value, probe_train_limit=_PROBE_LIMIT.value, radii=radii, pgd_steps=_STEPS.value,
        seed=_SEED.value, classifier_dir=classifier_dir, attack_regions=tuple(_REGIONS.value),
    )
    print(json.dumps({k: round(v, 4) for k, v in results.items() if not k.startswith("time/")}, indent=1))


if __name__ == "__main__":
    app.run(main)
