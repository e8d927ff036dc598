"""PNG plots of saved runs (matplotlib, no display needed)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from distill.results import atomic_write


def loss_curves(runs: list[dict[str, Any]], path: Path) -> Path:
    """Training loss against step for every run (from the Trainer's log history)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for run in runs:
        points = [(e["step"], e["loss"]) for e in run.get("log_history", []) if "loss" in e]
        if points:
            steps, losses = zip(*points, strict=True)
            ax.plot(steps, losses, label=f"{run['method_name']} (seed {run.get('seed')})", linewidth=1)
    ax.set(xlabel="step", ylabel="training loss", title="Training loss")
    if ax.lines:
        ax.legend(fontsize=6, ncol=2)
    else:  # every run was shorter than --logging_steps
        ax.text(0.5, 0.5, "no training loss was logged", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)


def confusion_matrices(runs: list[dict[str, Any]], path: Path) -> Path:
    """One row-normalised test confusion matrix per method, summed over its runs."""
    from distill.report import confusion_sum

    matrices = confusion_sum(runs)
    labels = runs[0].get("label_names") or []
    cols = min(3, max(1, len(matrices)))
    rows = max(1, math.ceil(len(matrices) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.3 * rows), squeeze=False)
    for ax, (name, matrix) in zip(axes.flat, matrices.items(), strict=False):
        share = matrix / matrix.sum(axis=1, keepdims=True).clip(min=1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for (i, j), value in pd.DataFrame(share).stack().items():
            ax.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > 0.5 else "black",
            )
        ticks = list(range(len(share)))
        short = [str(x).replace("_", "\n") for x in labels] or [str(t) for t in ticks]
        ax.set_xticks(ticks, short, fontsize=6, rotation=30)
        ax.set_yticks(ticks, short, fontsize=6)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
    for ax in list(axes.flat)[len(matrices) :]:
        ax.axis("off")
    return _save(fig, path)


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


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return atomic_write(path, buffer.getvalue())
