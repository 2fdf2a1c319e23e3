r"""How much do the adversarial-accuracy figures depend on the linear probe? Per training workdir, the frozen
encoder's posterior means are probed again under several probes (inverse L2 strength C of the logistic
regression, with or without per-feature standardisation) and each composed model x -> mu(x) -> logits is attacked
with the suite's PGD. The suite's own probe (C = 1, standardised) is one of the rows, so each table also repeats
the run's eval.json figures on the examples used. Writes JSON and a Markdown table (also printed).

    python scripts/probe_dependence.py --workdirs=runs/r/vae,runs/r/avae,runs/r/se --output=runs/r/probes
    python scripts/probe_dependence.py --workdirs=... --C=0.01,1 --standardise=true --radii=0.1 --limit=500

This is a diagnosis of the evaluation, not a different evaluation: every table in results/ keeps the suite's
probe. A probe change that makes an encoder look robust only counts if it leaves the VAE (not robust by
construction) where it was.
"""

import json
import pathlib
import sys

from absl import app, flags

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Training workdirs (each with model.keras).")
_OUTPUT = flags.DEFINE_string("output", None, "Output path without suffix: writes <output>.json and <output>.md.")
_C = flags.DEFINE_list("C", ["0.001", "0.01", "0.1", "1", "10"], "Inverse L2 strengths of the probe.")
_STANDARDISE = flags.DEFINE_list("standardise", ["true", "false"], "Standardise the features before the fit.")
_RADII = flags.DEFINE_list("radii", ["0", "0.1", "0.2"], "L-inf PGD radii (pixels in [0, 1]); 0 = clean.")
_STEPS = flags.DEFINE_integer("pgd_steps", 40, "PGD steps (random start).")
_LIMIT = flags.DEFINE_integer("limit", 1000, "Test examples attacked.")
_PROBE_LIMIT = flags.DEFINE_integer("probe_train_limit", None, "Fit the probes on the first N train examples.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the attacks.")
flags.mark_flags_as_required(["workdirs", "output"])


def parse_bool(name, text):
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise app.UsageError(f"{name} takes true/false values; got {text!r}.")
    return value in ("true", "1", "yes")


def probe_rows(workdir, probes, radii, pgd_steps, limit, probe_train_limit, seed):
    """One row per probe setting (standardise, C): clean and adversarial accuracy (%) per task, the probe's
    weight norm per task (on the raw features: ||W / scale||_F, the size of the logits' response to the code)."""
    import numpy as np

    from tf_avae import train_lib
    from tf_avae import data
    from tf_avae.evaluation import encode_features, fit_linear_probe, robust_accuracy
    from tf_avae.evaluation.probe import DEFAULT_C

    workdir = pathlib.Path(workdir)
    config = train_lib.load_config(workdir)
    model = train_lib.load_model(workdir)
    # data seed 0 fixes the colours, as in the suite
    train_images, train_labels = data.load_arrays(config.data.name, "train", limit=probe_train_limit, seed=0)
    test_images, test_labels = data.load_arrays(config.data.name, "test", limit=limit, seed=0)
    features = encode_features(model, train_images, "mean")
    tasks = [task for task in test_labels if task in train_labels]
    rows = []
    for standardise, C in probes:
        fitted = {task: fit_linear_probe(features, train_labels[task], C=C, standardise=standardise, seed=seed)
                  for task in tasks}
        row = {"workdir": str(workdir), "model": config.model.name, "steps": train_lib.trained_steps(workdir),
               "standardise": standardise, "C": C, "suite_probe": bool(standardise and C == DEFAULT_C)}
        for task, probe in fitted.items():
            kernel = np.asarray(probe.classifier.kernel) / np.asarray(probe.feature_scale)[:, None]
            row[f"weight_norm/{task}"] = float(np.linalg.norm(kernel))
        row.update(robust_accuracy(model, fitted, test_images, {t: test_labels[t] for t in tasks}, radii=radii,
                                   pgd_steps=pgd_steps, seed=seed, progress=False))
        rows.append(row)
        print(f"{workdir}: standardise={standardise} C={C:g}: " + ", ".join(
            f"{key} {value:.1f}" for key, value in row.items() if key.startswith("adv/")), file=sys.stderr, flush=True)
    return rows


def markdown(rows, radii, pgd_steps, limit):
    from tf_avae.evaluation.probe import DEFAULT_C

    tasks = sorted({key.split("/")[1] for row in rows for key in row if key.startswith("adv/")},
                   key=lambda t: (t != "digit", t))
    columns = [(task, r) for task in tasks for r in radii]
    lines = [f"L-inf PGD, {pgd_steps} steps, random start, on the first {limit} test images; adversarial accuracy "
             "(%) of the composed model x -> mu(x) -> probe, per probe (logistic regression, inverse L2 strength C, "
             f"on standardised or only centred features). **bold**: the suite's probe (C = {DEFAULT_C:g}, "
             "standardised). "
             "|W|: Frobenius norm of the probe's weights on the raw codes.", "",
             "| run | steps | standardised | C | " + " | ".join(f"{t} {r:g}" for t, r in columns) + " | " +
             " | ".join(f"|W| {t}" for t in tasks) + " |",
             "|---|---|---|---|" + "---|" * (len(columns) + len(tasks))]
    for row in rows:
        mark = "**" if row["suite_probe"] else ""
        cells = [row["workdir"], str(row["steps"]), "yes" if row["standardise"] else "no", f"{mark}{row['C']:g}{mark}"]
        cells += [f"{row[f'adv/{t}/eps={r:g}']:.1f}" if f"adv/{t}/eps={r:g}" in row else "-" for t, r in columns]
        cells += [f"{row[f'weight_norm/{t}']:.3g}" for t in tasks]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from tf_avae.evaluation.robustness import check_radii

    try:
        cs = [float(c) for c in _C.value]
    except ValueError:
        raise app.UsageError(f"--C takes numbers; got {_C.value!r}.") from None
    if not cs or any(not c > 0 for c in cs):
        raise app.UsageError(f"--C takes positive numbers; got {_C.value!r}.")
    standardise = [parse_bool("--standardise", s) for s in _STANDARDISE.value]
    radii = check_radii([float(r) for r in _RADII.value])
    probes = [(s, c) for s in standardise for c in cs]
    rows = [row for w in _WORKDIRS.value
            for row in probe_rows(w, probes, radii, _STEPS.value, _LIMIT.value, _PROBE_LIMIT.value, _SEED.value)]
    text = markdown(rows, radii, _STEPS.value, _LIMIT.value)
    output = pathlib.Path(_OUTPUT.value)
    output.parent.mkdir(parents=True, exist_ok=True)
    settings = {"C": cs, "standardise": standardise, "radii": list(radii), "pgd_steps": _STEPS.value,
                "limit": _LIMIT.value, "probe_train_limit": _PROBE_LIMIT.value, "seed": _SEED.value}
    output.with_suffix(".json").write_text(json.dumps({"settings": settings, "rows": rows}, indent=1))
    output.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    app.run(main)
