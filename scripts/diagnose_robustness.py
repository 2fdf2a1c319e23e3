r"""Why is one encoder robust and another not? Per training workdir: how far an L-inf attack of radius eps moves
the code mu(x) (PGD maximising ||mu(x') - mu(x)||, no probe involved) against uniform noise of the same radius,
both relative to the spread of the codes (`tf_avae.evaluation.latent_displacement`), beside the adversarial
accuracy and local sensitivities of the run's eval.json. Writes JSON and a Markdown table (also printed).

    python scripts/diagnose_robustness.py --workdirs=runs/r/vae,runs/r/avae,runs/r/se --output=runs/r/diagnosis
    python scripts/diagnose_robustness.py --workdirs=... --epsilon=0.2 --limit=1000
    python scripts/diagnose_robustness.py --workdirs=... --at=data,delusion,noisy
    python scripts/diagnose_robustness.py --workdirs=runs/r/avae --checkpoints --output=runs/r/avae_over_training
    python scripts/diagnose_robustness.py --workdirs=... --regions=all,background,foreground

An encoder made insensitive to noise only (small `displacement/noise`) but not to the worst case (large
`displacement/pgd`) is the signature of training against random rather than adversarial perturbations.

`--at` also measures it where the objectives train the encoder (`tf_avae.evaluation.displacement_points`): at the
AVAE's delusions x~ ~ p(x|z), z ~ q(z|x) of the test images (`delusion`) and at the test images plus the
observation noise (`noisy`, the noise-augmented VAE's input). Those lie off [0, 1], so there neither the attack nor
the noise is clipped; every displacement is in units of the spread of the test images' codes.

`--regions` also lets the attack (and the noise) touch only the test images' black background (pixels 0 in every
channel) or only their foreground (`tf_avae.adversarial.region_mask`): where on the image the encoder is moved.
Regions apply at the data; the other point sets are measured on all pixels.

`--checkpoints` follows the same figures through training: one row per kept checkpoint (train with
`train.checkpoint_every_steps` and a large `train.keep_checkpoints` to keep them), beside the training curve's
adversarial accuracy at that step when the run recorded one (`eval.every_steps`).
"""

import functools
import json
import pathlib

from absl import app, flags

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Training workdirs (each with model.keras; eval.json is optional).")
_OUTPUT = flags.DEFINE_string("output", None, "Output path without suffix: writes <output>.json and <output>.md.")
_EPSILON = flags.DEFINE_float("epsilon", 0.1, "L-inf radius (pixels in [0, 1]).")
_STEPS = flags.DEFINE_integer("pgd_steps", 20, "PGD steps of the displacement attack.")
_LIMIT = flags.DEFINE_integer("limit", 500, "Test examples used.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the attack and the noise.")
_AT = flags.DEFINE_list("at", ["data"], "Where to measure: any of data (the test images), delusion (the model's "
                        "x~ at them), noisy (them plus the observation noise).")
_REGIONS = flags.DEFINE_list("regions", ["all"], "At the data: which pixels the attack may change, any of all, "
                             "background (black in every channel), foreground (the others).")
_CHECKPOINTS = flags.DEFINE_bool("checkpoints", False, "Also diagnose every kept checkpoint of each workdir "
                                  "(one row per step, oldest first; keep more with train.keep_checkpoints).")
flags.mark_flags_as_required(["workdirs", "output"])

TASKS = ("digit", "colour")
CURVE_KEYS = tuple(f"adv/{task}/eps=0.1" for task in TASKS)
SENSITIVITY_KEYS = ("sensitivity/random", "sensitivity/worst")


@functools.lru_cache(maxsize=None)
def test_images(name, split, limit, seed):
    """Loaded once per dataset, however many workdirs share it."""
    from tf_avae import data

    return data.load_arrays(name, split, limit=limit, seed=seed)[0]


def _rows(model, images, spread, common, figures, epsilon, pgd_steps, seed, at, regions):
    """One row per point set in `at` (see `displacement_points`), at the data one per region; `figures(region)`
    gives the recorded accuracies that go beside it."""
    from tf_avae.evaluation import displacement_points, latent_displacement

    rows = []
    for points in at:
        x = displacement_points(model, images, points, seed=seed)
        for region in regions if points == "data" else ["all"]:
            row = {**common, **figures(region), "points": points, "region": region}
            row.update(latent_displacement(model, x, epsilon=epsilon, pgd_steps=pgd_steps, seed=seed,
                                           bounds=(0.0, 1.0) if points == "data" else None, spread=spread,
                                           region=region))
            rows.append(row)
    return rows


def _curve_figures(workdir):
    """{step: {"curve/<key>": value}} from the run's robustness_curve.json (the training callback's probe)."""
    from tf_avae import train_lib

    path = workdir / train_lib.CURVE_FILE
    if not path.exists():
        return {}
    return {int(step): {f"curve/{key}": value for key, value in record.items() if key in CURVE_KEYS}
            for step, record in json.loads(path.read_text())["records"]}


def diagnose(workdir, epsilon, pgd_steps, limit, seed, at=("data",), checkpoints=False, regions=("all",)):
    """Rows of the trained model (model.keras) beside its eval figures; with `checkpoints`, first those of every
    kept checkpoint (oldest first). Every row also carries the training curve's figures at its step, if any.
    A region's rows carry the accuracy under that region's attack (`scripts/evaluate.py --attack_regions`), if
    eval.json has it, and no curve figures (the curve attacks every pixel)."""
    from tf_avae import train_lib
    from tf_avae.evaluation import code_spread, radius_key

    workdir = pathlib.Path(workdir)
    config = train_lib.load_config(workdir)
    images = test_images(config.data.name, config.data.get("eval_split") or "test", limit, seed)
    common = {"workdir": str(workdir), "model": config.model.name, "dataset": config.data.name}
    curve = _curve_figures(workdir)
    rows = []
    if checkpoints:
        for step, model in train_lib.checkpoint_models(workdir):
            # the unit of each row: the spread of the test images' codes at that step
            rows += _rows(model, images, code_spread(model, images), {**common, "steps": step, "source": "checkpoint"},
                          lambda region: curve.get(step, {}) if region == "all" else {},
                          epsilon, pgd_steps, seed, at, regions)
    model = train_lib.load_model(workdir)
    steps = train_lib.trained_steps(workdir)
    evaluation = workdir / train_lib.EVAL_FILE
    recorded = json.loads(evaluation.read_text()) if evaluation.exists() else {}

    def figures(region):
        found = {key: recorded[key] for key in SENSITIVITY_KEYS if key in recorded}
        found.update({f"adv/{task}/eps=0.1": recorded[key] for task in TASKS
                      if (key := radius_key(task, 0.1, region)) in recorded})
        return {**(curve.get(steps, {}) if region == "all" else {}), **found}

    return rows + _rows(model, images, code_spread(model, images), {**common, "steps": steps, "source": "model"},
                        figures, epsilon, pgd_steps, seed, at, regions)


def markdown(rows, epsilon, pgd_steps, limit):
    def cell(row, key, digits):
        return "-" if row.get(key) is None else f"{row[key]:.{digits}f}"

    lines = [f"L-inf radius {epsilon}, PGD {pgd_steps} steps maximising ||mu(x') - mu(x)||, {limit} test images; "
             "displacements are medians over examples, in units of the codes' RMS spread (at each row's step). "
             "adv: the run's eval.json (the evaluation suite; a region's row: its attack on that region only, "
             "scripts/evaluate.py --attack_regions); curve: its training curve at that step "
             "(robustness_curve.json, the curve's own probe and attack).", "",
             "| run | steps | at | region | adv digit 0.1 | adv colour 0.1 | curve digit 0.1 | curve colour 0.1 | "
             "moved by PGD | moved by noise | PGD / noise | sens. random | sens. worst |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['workdir']} | {row['steps']} | {row['points']} | {row.get('region', 'all')} | "
                     f"{cell(row, 'adv/digit/eps=0.1', 1)} | {cell(row, 'adv/colour/eps=0.1', 1)} | "
                     f"{cell(row, 'curve/adv/digit/eps=0.1', 1)} | {cell(row, 'curve/adv/colour/eps=0.1', 1)} | "
                     f"{cell(row, 'displacement/pgd', 3)} | "
                     f"{cell(row, 'displacement/noise', 3)} | {cell(row, 'displacement/ratio', 1)} | "
                     f"{cell(row, 'sensitivity/random', 3)} | {cell(row, 'sensitivity/worst', 3)} |")
    return "\n".join(lines) + "\n"


def over_training_panels(rows):
    """The plot of --checkpoints: the curve's adversarial accuracy and the displacements against the step, one line
    per run (and point set); the final model's rows repeat its last checkpoint's and are left out."""
    rows = [row for row in rows if row.get("source") == "checkpoint"]
    several = len({row["workdir"] for row in rows}) > 1

    def label(row, what):  # several runs: one colour per run (evaluation.plot_panels)
        return (pathlib.Path(row["workdir"]).name, what) if several else what

    accuracy, moved = {}, {}
    for row in rows:
        if row["points"] == "data" and row.get("region", "all") == "all":
            for key in CURVE_KEYS:
                if f"curve/{key}" in row:
                    accuracy.setdefault(label(row, key.split("/")[1]), []).append((row["steps"], row[f"curve/{key}"]))
        where = row["points"] if row.get("region", "all") == "all" else f"{row['points']} ({row['region']})"
        for kind in ("pgd", "noise"):
            moved.setdefault(label(row, f"{kind} at {where}"), []).append(
                (row["steps"], row[f"displacement/{kind}"]))
    return {name: lines for name, lines in (("adversarial accuracy at eps 0.1, training curve (%)", accuracy),
                                            ("code moved (median, x code spread)", moved)) if lines}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from tf_avae.adversarial import REGIONS
    from tf_avae.evaluation import sensitivity
    from tf_avae.validation import check_choice

    at = [check_choice("--at", points, sensitivity.POINTS) for points in _AT.value]
    regions = [check_choice("--regions", region, REGIONS) for region in _REGIONS.value]
    rows = [row for w in _WORKDIRS.value for row in diagnose(w, _EPSILON.value, _STEPS.value, _LIMIT.value,
                                                             _SEED.value, at, _CHECKPOINTS.value, regions)]
    text = markdown(rows, _EPSILON.value, _STEPS.value, _LIMIT.value)
    output = pathlib.Path(_OUTPUT.value)
    output.parent.mkdir(parents=True, exist_ok=True)
    settings = {"epsilon": _EPSILON.value, "pgd_steps": _STEPS.value, "limit": _LIMIT.value, "seed": _SEED.value,
                "at": at, "regions": regions, "checkpoints": _CHECKPOINTS.value}
    output.with_suffix(".json").write_text(json.dumps({"settings": settings, "rows": rows}, indent=1))
    output.with_suffix(".md").write_text(text)
    print(text)
    if _CHECKPOINTS.value:
        from tf_avae.evaluation import plot_panels

        print("plot:", plot_panels(over_training_panels(rows), output.with_suffix(".png"),
                                   log_y=("code moved (median, x code spread)",),
                                   title=f"L-inf radius {_EPSILON.value}, {_LIMIT.value} test images"))


if __name__ == "__main__":
    app.run(main)
