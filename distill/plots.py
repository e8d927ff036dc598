"""PNG plots of saved runs (matplotlib, no display needed).

Each plot has a `*_figure` function that takes plain data (already grouped by method, in report
order) and returns a Figure, and a thin wrapper that saves it. This module knows nothing about runs
or results.json: distill.report shapes the data, so the dependency runs one way (report → plots).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from distill.results import atomic_write

# One run's logged training loss: (steps, losses).
Curve = tuple[Sequence[float], Sequence[float]]


@dataclass(frozen=True)
class LossBand:
    """A method's training loss over its runs, on the union of their logged steps."""

    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray  # min over the runs at each step
    high: np.ndarray  # max over the runs at each step
    n: int  # runs


def loss_band(curves: Sequence[Curve]) -> LossBand:
    """Mean, min and max over runs, step by step. Runs logged at different steps are linearly
    interpolated onto the union of steps, each only within its own first..last step, so a shorter
    run never invents values past its end."""
    if not curves:
        raise ValueError("loss_band needs at least one curve")
    grid = np.unique(np.concatenate([np.asarray(steps, dtype=float) for steps, _ in curves]))
    stacked = np.full((len(curves), len(grid)), np.nan)
    for row, (steps, losses) in zip(stacked, curves, strict=True):
        # np.interp needs increasing steps; a step logged twice keeps its first value.
        x, first = np.unique(np.asarray(steps, dtype=float), return_index=True)
        y = np.asarray(losses, dtype=float)[first]
        inside = (grid >= x[0]) & (grid <= x[-1])
        row[inside] = np.interp(grid[inside], x, y)
    # Every grid step is some run's own step, so no column is all NaN.
    return LossBand(
        grid, np.nanmean(stacked, axis=0), np.nanmin(stacked, axis=0), np.nanmax(stacked, axis=0), len(curves)
    )


def loss_curves_figure(curves: Mapping[str, Sequence[Curve]]) -> Figure:
    """Training loss against step: one colour per method, its mean over runs as a line and the
    min–max over runs as a shaded band. `curves` maps method → its runs' curves, in legend order."""
    methods = {name: runs for name, runs in curves.items() if runs}
    fig, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
    for i, (name, runs) in enumerate(methods.items()):
        band = loss_band(runs)
        colour, style = _style(i, len(methods))
        ax.plot(
            band.steps, band.mean, color=colour, linestyle=style, linewidth=1.5, label=f"{name} (n={band.n})"
        )
        if band.n > 1:
            ax.fill_between(band.steps, band.low, band.high, color=colour, alpha=0.18, linewidth=0)
    ax.set(
        xlabel="step",
        ylabel="training loss",
        title="Training loss: mean over runs (seeds), shaded min–max",
    )
    if methods:
        # Outside the axes: inside, a dozen entries hide the curves they describe.
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0, frameon=False)
    else:  # every run was shorter than --logging_steps
        ax.text(0.5, 0.5, "no training loss was logged", ha="center", va="center", transform=ax.transAxes)
    return fig


def loss_curves(curves: Mapping[str, Sequence[Curve]], path: Path) -> Path:
    return _save(loss_curves_figure(curves), path)


def row_shares(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its total (rows are true classes, so the shares are recalls); an empty
    row stays zeros rather than dividing by zero."""
    matrix = np.asarray(matrix, dtype=float)
    return matrix / matrix.sum(axis=1, keepdims=True).clip(min=1)


def confusion_figure(matrices: Mapping[str, np.ndarray], labels: Sequence[str] = ()) -> Figure:
    """One test confusion matrix per method (already summed over its runs): colour and the upper
    number are the share of the true class's row, the bracketed number the count."""
    cols = min(3, max(1, len(matrices)))
    rows = max(1, math.ceil(len(matrices) / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.8 * cols, 3.5 * rows + 0.5), squeeze=False, layout="constrained"
    )
    for ax, (name, matrix) in zip(axes.flat, matrices.items(), strict=False):
        counts = np.asarray(matrix)
        share = row_shares(counts)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for (i, j), value in np.ndenumerate(share):
            ax.text(
                j,
                i,
                f"{value:.2f}\n({int(counts[i, j])})",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > 0.5 else "black",
            )
        ticks = list(range(len(share)))
        short = (
            [str(x).replace("_", "\n") for x in labels]
            if len(labels) == len(ticks)
            else list(map(str, ticks))
        )
        ax.set_xticks(ticks, short, fontsize=6, rotation=30)
        ax.set_yticks(ticks, short, fontsize=6)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("predicted class", fontsize=7)
        ax.set_ylabel("true class (row)", fontsize=7)
    for ax in list(axes.flat)[len(matrices) :]:
        ax.axis("off")
    if not matrices:
        axes.flat[0].text(0.5, 0.5, "no test confusion matrix was recorded", ha="center", va="center")
    fig.suptitle(
        "Test confusion matrices, summed over seeds\n"
        "rows are true classes; shares of each row (sum to 1), counts in brackets",
        fontsize=9,
    )
    return fig


def confusion_matrices(matrices: Mapping[str, np.ndarray], labels: Sequence[str], path: Path) -> Path:
    return _save(confusion_figure(matrices, labels), path)


def macro_f1_bars(summary: pd.DataFrame, path: Path) -> Path:
    """Test macro-F1 by method with ± one standard deviation over seeds."""
    means = summary["test_macro_f1_mean"]
    stds = summary["test_macro_f1_std"].fillna(0)
    # Horizontal bars, top to bottom in report order: long names like "Even Layer · unweighted" stay legible.
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.4 * len(means)))
    ax.barh(range(len(means)), means, xerr=stds, capsize=3, color="#4c72b0")
    ax.set_yticks(
        range(len(means)),
        [f"{m} (n={int(n)})" for m, n in zip(means.index, summary["n"], strict=True)],
        fontsize=8,
    )
    ax.invert_yaxis()
    for y, (mean, std) in enumerate(zip(means, stds, strict=True)):
        ax.text(mean + std + 0.01, y, f"{mean:.3f}", va="center", fontsize=7)
    ax.set(xlabel="test macro-F1", title="Test macro-F1 by method (mean ± std over seeds)", xlim=(0, 1))
    return _save(fig, path)


def _style(index: int, count: int) -> tuple[tuple[float, ...], str]:
    """A distinct colour per method: tab10 up to ten, tab20 beyond; past twenty the colours repeat
    with another line style, so no two methods look alike."""
    cmap = plt.get_cmap("tab10" if count <= 10 else "tab20")
    colours = getattr(cmap, "colors", None) or [cmap(k) for k in range(cmap.N)]
    return tuple(colours[index % len(colours)]), ("-", "--", ":", "-.")[index // len(colours) % 4]


def _save(fig: Figure, path: Path) -> Path:
    if fig.get_layout_engine() is None:  # constrained layout already fits titles and outside legends
        fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return atomic_write(path, buffer.getvalue())
