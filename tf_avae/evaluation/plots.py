"""PNG plots of evaluation results (matplotlib's Agg canvas; no pyplot, no global backend change).

Every function takes plain results (the evaluation dicts / arrays), writes one PNG and returns its path.
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["plot_robustness", "plot_chain", "plot_similarity_histogram", "plot_training_curves", "plot_panels"]

_ADV_KEY = re.compile(r"^adv/(?P<task>.+)/eps=(?P<radius>[0-9.eE+-]+)$")


def _save(figure: Figure, path: str | os.PathLike) -> str:
    path = os.fspath(path)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    return path


def adversarial_curves(results: Mapping[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{task: (radii, accuracies)}`` parsed from ``adv/<task>/eps=<r>`` keys, radii ascending."""
    curves: dict[str, list[tuple[float, float]]] = {}
    for key, value in results.items():
        match = _ADV_KEY.match(str(key))
        if match:
            curves.setdefault(match["task"], []).append((float(match["radius"]), float(value)))
    return {task: tuple(np.array(v) for v in zip(*sorted(points))) for task, points in curves.items()}


def plot_robustness(results: Mapping[str, Any], path: str | os.PathLike, title: str = "Adversarial accuracy") -> str:
    """Adversarial accuracy (%) against the L-inf radius, one line per task.

    ``results`` is one flat evaluation dict, or ``{model_name: flat dict}`` for several models
    (one colour per task, one line style per model).
    """
    if any(_ADV_KEY.match(str(k)) for k in results):
        results = {"": results}
    figure = Figure(figsize=(5.5, 4))
    axes = figure.add_subplot()
    styles = ["-", "--", ":", "-."]
    tasks: list[str] = []
    for index, (model_name, model_results) in enumerate(results.items()):
        if not isinstance(model_results, Mapping):
            raise TypeError(f"results[{model_name!r}] must be a dict of evaluation results; got {model_results!r}.")
        for task, (radii, accuracy) in adversarial_curves(model_results).items():
            if task not in tasks:
                tasks.append(task)
            label = f"{model_name}: {task}" if model_name else task
            axes.plot(radii, accuracy, styles[index % len(styles)], marker="o", color=f"C{tasks.index(task)}",
                      label=label)
    axes.set(xlabel="L-inf radius (pixels in [0, 1])", ylabel="adversarial accuracy (%)", ylim=(-2, 102), title=title)
    axes.grid(alpha=0.3)
    if tasks:
        axes.legend()
    return _save(figure, path)


def plot_chain(chain: Any, path: str | os.PathLike, max_images: int = 8, title: str = "encode-decode chain") -> str:
    """A grid of an :func:`~tf_avae.evaluation.encode_decode_chain`: one row per image, one column per step."""
    chain = np.asarray(chain)
    if chain.ndim != 5:
        raise ValueError(f"chain must have shape [steps + 1, N, H, W, C]; got {chain.shape}.")
    steps, count = chain.shape[0], min(chain.shape[1], int(max_images))
    figure = Figure(figsize=(1.1 * steps, 1.1 * count + 0.4))
    figure.suptitle(title)
    for row in range(count):
        for column in range(steps):
            axes = figure.add_subplot(count, steps, row * steps + column + 1)
            image = np.clip(chain[column, row], 0.0, 1.0)
            axes.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None,
                        vmin=0.0, vmax=1.0)
            axes.set_xticks([])
            axes.set_yticks([])
            if row == 0:
                axes.set_title("x" if column == 0 else f"k={column}", fontsize=8)
    return _save(figure, path)


def plot_similarity_histogram(same: Any, different: Any, path: str | os.PathLike,
                              title: str = "cosine similarity of augmented views") -> str:
    """Histograms of the same-image and different-image similarities."""
    figure = Figure(figsize=(5.5, 4))
    axes = figure.add_subplot()
    bins = np.linspace(-1.0, 1.0, 61)
    axes.hist(np.asarray(same), bins=bins, alpha=0.6, density=True, label="same image")
    axes.hist(np.asarray(different), bins=bins, alpha=0.6, density=True, label="different images")
    axes.set(xlabel="cosine similarity of latent means", ylabel="density", title=title)
    axes.legend()
    return _save(figure, path)


def plot_training_curves(records: Sequence[tuple[int, Mapping[str, float]]], path: str | os.PathLike,
                         title: str = "accuracy during training") -> str:
    """Accuracy (%) against the training step from :attr:`RobustnessCallback.records`, one line per key."""
    records = list(records)
    if not records:
        raise ValueError("records must hold at least one (step, metrics) entry; got none.")
    keys = sorted({key for _, metrics in records for key in metrics})
    figure = Figure(figsize=(6.5, 4))
    axes = figure.add_subplot()
    for index, key in enumerate(keys):
        points = [(step, metrics[key]) for step, metrics in records if key in metrics]
        steps, values = zip(*points)
        axes.plot(steps, values, "--" if key.startswith("probe/") else "-", marker=".", color=f"C{index % 10}",
                  label=key)
    axes.set(xlabel="training step", ylabel="accuracy (%)", ylim=(-2, 102), title=title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path)


def plot_panels(panels: Mapping[str, Mapping[Any, Sequence[tuple[float, float]]]], path: str | os.PathLike,
                xlabel: str = "training step", log_y: Sequence[str] = (), title: str | None = None) -> str:
    """Side-by-side panels of lines: ``{panel title (its y label): {line: [(x, y), ...]}}``; panels named in `log_y`
    get a logarithmic y axis. A line is a label (one colour per label across the panels) or a ``(group, label)``
    pair (one colour per group, e.g. a run, and one line style per label within a panel)."""
    if not panels or not all(panels.values()):
        raise ValueError("panels must hold at least one panel, each with at least one line; got "
                         f"{ {name: list(lines) for name, lines in dict(panels).items()} }.")
    colours = list(dict.fromkeys(line[0] if isinstance(line, tuple) else line
                                 for lines in panels.values() for line in lines))
    figure = Figure(figsize=(5.2 * len(panels), 4), layout="constrained")
    for index, (name, lines) in enumerate(panels.items()):
        axes = figure.add_subplot(1, len(panels), index + 1)
        styles = list(dict.fromkeys(line[1] for line in lines if isinstance(line, tuple)))
        for line, points in lines.items():
            xs, ys = zip(*sorted(points))
            group, label = line if isinstance(line, tuple) else (line, None)
            style = ("-", "--", ":", "-.")[styles.index(label) % 4] if label is not None else "-"
            axes.plot(xs, ys, marker=".", markersize=4, color=f"C{colours.index(group) % 10}", linestyle=style,
                      label=group if label is None else f"{group}: {label}")
        axes.set(xlabel=xlabel, ylabel=name, yscale="log" if name in log_y else "linear")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    if title:
        figure.suptitle(title)
    return _save(figure, path)
