"""Evaluates what `scripts/train.py` or `scripts/export.py` produced: a workdir or an exported SavedModel.

Writes `eval.json` (a flat object of numbers, what `scripts/export.py` copies into the robustness card),
`eval_notes.json` (what could not be measured and why, the settings) and PNG plots.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import tensorflow as tf

from tf_avae import train_lib
from tf_avae.evaluation import evaluate_model
from tf_avae.validation import check_choice

NOTES_FILE = "eval_notes.json"
PLOTS_DIR = "plots"
FEATURES = ("auto", "mean", "backbone")


def is_saved_model(path) -> bool:
    return (pathlib.Path(path) / "saved_model.pb").exists()


def load_for_evaluation(path):
    """(model, config or None) from a workdir (model.keras) or an exported SavedModel directory."""
    path = pathlib.Path(path)
    if is_saved_model(path):
        config = None
        card = path / "assets" / "card.json"
        if card.exists():
            config = json.loads(card.read_text()).get("config")
        return tf.saved_model.load(str(path)), config
    if not path.is_dir():
        raise FileNotFoundError(f"--workdir {str(path)!r} is neither a training workdir nor a SavedModel directory.")
    return train_lib.load_model(path), train_lib.config_to_dict(train_lib.load_config(path))


def evaluate_path(path, *, dataset: str | None = None, output_dir=None, feature: str = "auto",
                  **options: Any) -> dict[str, float]:
    """Evaluates the model at `path`; returns the numeric results written to `<output_dir>/eval.json`.

    `output_dir` defaults to the workdir itself; for a SavedModel (which is served and must not change)
    it defaults to `<path>-eval`. `options` go to `tf_avae.evaluation.evaluate_model`.
    """
    check_choice("feature", feature, FEATURES)
    path = pathlib.Path(path)
    model, config = load_for_evaluation(path)
    dataset = dataset or (config or {}).get("data", {}).get("name")
    if not dataset:
        raise ValueError(f"--dataset is needed: {str(path)!r} carries no training config naming its dataset.")
    if feature == "auto":  # AAVAE's probe reads the backbone of a ResNet, other models the posterior mean
        architecture = (config or {}).get("network", {}).get("architecture")
        feature = "backbone" if architecture == "resnet" and not is_saved_model(path) else "mean"
    if output_dir is None:
        output_dir = path.parent / f"{path.name}-eval" if is_saved_model(path) else path
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    results = evaluate_model(model, dataset, feature=feature, output_dir=output_dir / PLOTS_DIR, **options)
    numbers = {k: float(v) for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    notes = {"notes": list(results.get("notes", [])), "source": str(path), "dataset": dataset, "feature": feature,
             "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()
                         if isinstance(v, (int, float, str, tuple, list, type(None)))}}
    train_lib.write_json(output_dir / train_lib.EVAL_FILE, numbers)
    train_lib.write_json(output_dir / NOTES_FILE, notes)
    return numbers
