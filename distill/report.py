"""Turn saved runs into the comparison: tables (A7, A6, full), CSV/JSON, and plots.

Runs are grouped by method (teacher, a layer choice, LoRA, LoRA+KD) and summarised over seeds as
mean ± sample standard deviation with the number of runs beside it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from distill.errors import UserError
from distill.layers import layers_name
from distill.results import atomic_write, find_runs, read_results

logger = logging.getLogger(__name__)

DISTILL_NAMES = {"odd": "Odd Layer", "even": "Even Layer", "top": "Top-K", "bottom": "Bottom-K"}
A6_ROWS = {"Top-K": "Top-K (1-6)", "Bottom-K": "Bottom-K (7-12)", "Odd Layer": "Odd", "Even Layer": "Even"}
VARIANT = " · "
METRICS = ["train_loss", "eval_loss", "eval_accuracy", "eval_macro_f1", "test_accuracy", "test_macro_f1"]


@dataclass
class Report:
    summary: pd.DataFrame  # one row per method
    runs: list[dict[str, Any]]
    markdown: str
    # Learning rates a search did not choose: in the tables of the search, not in A7 or the plots.
    left_out: list[str] = field(default_factory=list)


def load_runs(roots: str | Path | Sequence[str | Path]) -> list[dict[str, Any]]:
    """Every finished run under `roots`, with `run_dir` and `method_name` added; all on one test split."""
    roots = _as_list(roots)
    dirs = sorted({d.resolve(): d for root in roots for d in find_runs(root)}.values())
    if not dirs:
        raise UserError(
            f"No finished runs under {', '.join(map(str, roots))} (folders with a results.json). Train "
            "some first, e.g. scripts/train_teacher.py and scripts/distill.py, or point --runs elsewhere."
        )
    runs = [{**read_results(d), "run_dir": str(d)} for d in dirs]
    for run in runs:
        run["method_name"] = method_name(run)
    tag_class_weighting(runs)
    tag_precision(runs)
    tag_learning_rate(runs)
    check_same_test_split(runs)
    return runs


def method_name(run: dict[str, Any]) -> str:
    """A readable name for the way a run was made: Teacher, Odd Layer, Top-K, LoRA (even), ..."""
    method = run.get("method", "distill")
    if method == "teacher":
        return "Teacher"
    if method == "baseline":
        return str(run.get("name", "Baseline"))
    spec = layers_name(
        str(run.get("arguments", {}).get("layers") or ",".join(map(str, run.get("layers") or [])))
    )
    if method == "distill":
        return DISTILL_NAMES.get(spec, f"Layers {spec.replace('-', ',')}")
    return f"{'LoRA+KD' if method == 'lora+kd' else 'LoRA'} ({spec.replace('-', ',')})"


def tag_class_weighting(runs: list[dict[str, Any]]) -> None:
    """When the neural runs mix weighted and unweighted cross-entropy, name each method's two kinds
    apart ("Teacher · class-weighted", "Teacher · unweighted") instead of averaging them together."""
    neural = [r for r in runs if r.get("method") != "baseline"]
    if len({r.get("class_weights") is None for r in neural}) > 1:
        for run in neural:
            run["method_name"] += (
                f"{VARIANT}{'unweighted' if run.get('class_weights') is None else 'class-weighted'}"
            )


def tag_precision(runs: list[dict[str, Any]]) -> None:
    """Name a method's runs apart by the precision they trained in when it differs ("Even Layer ·
    bf16"), so fp32 and bf16 runs are compared rather than averaged together."""
    precisions: dict[str, set[str]] = {}
    for run in runs:
        precisions.setdefault(run["method_name"], set()).add(run.get("precision", "fp32"))
    for run in runs:
        if len(precisions[run["method_name"]]) > 1:
            run["method_name"] += f"{VARIANT}{run.get('precision', 'fp32')}"


def tag_learning_rate(runs: list[dict[str, Any]]) -> None:
    """Name a method's runs apart by learning rate when they differ ("LoRA (even) · lr 0.0005"), so
    a learning-rate search is reported per rate rather than averaged into one row; such runs also get
    `rate_search` (the method's name without the rate) and `learning_rate`."""
    rates: dict[str, set[float | None]] = {}
    for run in runs:
        rates.setdefault(run["method_name"], set()).add(_learning_rate(run))
    for run in runs:
        rate = _learning_rate(run)
        if len(rates[run["method_name"]]) > 1 and rate is not None:
            run["rate_search"], run["learning_rate"] = run["method_name"], rate
            run["method_name"] += f"{VARIANT}lr {rate:g}"


@dataclass
class RateSearch:
    """A method trained at several learning rates, and the rate chosen on validation."""

    method: str  # its name without the rate, "LoRA (even)"
    runs: dict[float, list[dict[str, Any]]]  # by learning rate
    seed: int | None  # the seed every rate was run with, on which the rates are compared
    chosen: float

    def variant(self, rate: float) -> str:
        return str(self.runs[rate][0]["method_name"])


def rate_searches(runs: list[dict[str, Any]]) -> list[RateSearch]:
    """Each learning-rate search among the runs. A rate is chosen by the validation macro-F1 of its
    run at the search seed (the lowest seed run at every rate), so later seeds of the chosen rate do
    not weigh in on the choice; the test split plays no part."""
    families: dict[str, dict[float, list[dict[str, Any]]]] = {}
    for run in runs:
        if "rate_search" in run:
            families.setdefault(run["rate_search"], {}).setdefault(run["learning_rate"], []).append(run)
    searches = []
    for method, by_rate in families.items():
        common = set.intersection(*({r.get("seed") for r in group} for group in by_rate.values()))
        seed = min((s for s in common if s is not None), default=None)

        scores = {rate: _validation_score(group, seed) for rate, group in by_rate.items()}
        searches.append(RateSearch(method, by_rate, seed, max(sorted(scores), key=scores.__getitem__)))
    return sorted(searches, key=lambda search: _method_order(search.method))


def _validation_score(runs: list[dict[str, Any]], seed: int | None) -> float:
    at_seed = [r for r in runs if seed is None or r.get("seed") == seed]
    values = [float(r["eval_macro_f1"]) for r in at_seed if r.get("eval_macro_f1") is not None]
    return float(np.mean(values)) if values else float("-inf")


def learning_rate_table(searches: Sequence[RateSearch]) -> pd.DataFrame:
    """Every rate of each search: its validation macro-F1 at the search seed (what chose it), and
    over all its seeds, beside the test macro-F1."""
    rows = []
    for search in searches:
        for rate in sorted(search.runs):
            group = search.runs[rate]
            at_seed = [r.get("eval_macro_f1") for r in group if search.seed in (None, r.get("seed"))]
            rows.append(
                {
                    "Method": search.method,
                    "Learning rate": f"{rate:g}",
                    "Search seed": "all" if search.seed is None else search.seed,
                    "Validation macro-F1 (search)": _mean_std(at_seed),
                    "n": len(group),
                    "Validation macro-F1": _mean_std([r.get("eval_macro_f1") for r in group]),
                    "Validation loss": _mean_std([r.get("eval_loss") for r in group]),
                    "Test macro-F1": _mean_std([r.get("test_macro_f1") for r in group]),
                    "Chosen": "yes" if rate == search.chosen else "",
                }
            )
    return pd.DataFrame(rows)


def unchosen_rates(searches: Sequence[RateSearch], keep_rate: float | None) -> list[str]:
    """The variants the A7 table leaves out: every rate but the chosen one and `keep_rate` (the
    distilled students' rate, for the comparison at equal learning rates)."""
    return [
        search.variant(rate)
        for search in searches
        for rate in search.runs
        if rate != search.chosen and rate != keep_rate
    ]


def _learning_rate(run: dict[str, Any]) -> float | None:
    rate = run.get("arguments", {}).get("training", {}).get("learning_rate")
    return None if rate is None else float(rate)


def base_method(name: str) -> str:
    """ "Even Layer" for "Even Layer · unweighted"."""
    return name.split(VARIANT)[0]


def check_same_test_split(runs: list[dict[str, Any]]) -> None:
    """Refuse to compare runs evaluated on different test sets."""
    teacher = next((r for r in runs if r.get("method") == "teacher"), runs[0])
    reference = teacher.get("test_split_hash")
    different = [r["run_dir"] for r in runs if r.get("test_split_hash") != reference]
    if different:
        raise UserError(
            f"These runs were tested on a different test split than {teacher['run_dir']} "
            f"(hash {reference}), so they cannot be compared: {', '.join(different)}. "
            "Re-run them with the same --dataset, --split_seed, --test_size and --max_test_samples."
        )


def summarize(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per method: mean and std of each metric over seeds, n, sizes."""
    rows = []
    for run in runs:
        row = {"method": run["method_name"], "seed": run.get("seed"), "run_dir": run["run_dir"]}
        row.update({m: run.get(m) for m in METRICS})
        row.update({k: v for k, v in run.items() if k.startswith("test_f1_")})
        row["num_parameters"] = run.get("num_parameters")
        row["trainable_parameters"] = run.get("trainable_parameters")
        row["size_mb"] = _size_mb(run.get("num_parameters"))
        row["train_minutes"] = (run.get("train_runtime") or float("nan")) / 60
        rows.append(row)
    frame = pd.DataFrame(rows)
    numeric = [c for c in frame.columns if c not in ("method", "seed", "run_dir")]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce")
    grouped = frame.groupby("method", sort=False)
    summary = grouped[numeric].mean().add_suffix("_mean")
    summary = summary.join(grouped[numeric].std(ddof=1).add_suffix("_std"))
    summary["n"] = grouped.size()
    summary["seeds"] = grouped["seed"].apply(lambda s: sorted(s.dropna().astype(int).tolist()))
    order = sorted(summary.index, key=_method_order)
    return summary.loc[order]


def a7_table(
    summary: pd.DataFrame, baselines: Sequence[str] = (), left_out: Sequence[str] = ()
) -> pd.DataFrame:
    """Model Type | Training Loss | Test Set Performance, for Odd, Even, LoRA, and for reference the
    teacher and any baselines; without the `left_out` variants (learning rates not chosen)."""
    students = [
        m
        for m in summary.index
        if (base_method(m) in ("Odd Layer", "Even Layer") or m.startswith("LoRA")) and m not in left_out
    ]
    references = [m for m in summary.index if base_method(m) == "Teacher" or m in baselines]
    return pd.DataFrame(
        [
            {
                "Model Type": name,
                "Training Loss": _pm(summary, name, "train_loss"),
                "Test Set Performance": f"accuracy {_pm(summary, name, 'test_accuracy')}, "
                f"macro-F1 {_pm(summary, name, 'test_macro_f1')} (n={int(summary.loc[name, 'n'])})",
            }
            for name in students + references
        ]
    )


def a6_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Student Layer | Training Loss | Validation Loss | Validation Accuracy, for Top-K, Bottom-K, Odd, Even."""
    return pd.DataFrame(
        [
            {
                "Student Layer": label + name.removeprefix(base),
                "Training Loss": _pm(summary, name, "train_loss"),
                "Validation Loss": _pm(summary, name, "eval_loss"),
                "Validation Accuracy": _pm(summary, name, "eval_accuracy"),
                "n": int(summary.loc[name, "n"]),
            }
            for base, label in A6_ROWS.items()
            for name in summary.index
            if base_method(name) == base
        ]
    )


def full_table(summary: pd.DataFrame) -> pd.DataFrame:
    class_columns = [
        c.removesuffix("_mean") for c in summary.columns if c.startswith("test_f1_") and c.endswith("_mean")
    ]
    rows = []
    for name in summary.index:
        row = {
            "Method": name,
            "Parameters": f"{summary.loc[name, 'num_parameters_mean']:,.0f}",
            "Trainable": f"{summary.loc[name, 'trainable_parameters_mean']:,.0f}",
            "fp32 size (MB)": _one_decimal(summary.loc[name, "size_mb_mean"]),
            "Train (min)": _one_decimal(summary.loc[name, "train_minutes_mean"]),
            "Test accuracy": _pm(summary, name, "test_accuracy"),
            "Test macro-F1": _pm(summary, name, "test_macro_f1"),
        }
        row.update({f"F1 {c.removeprefix('test_f1_')}": _pm(summary, name, c) for c in class_columns})
        row["n"] = int(summary.loc[name, "n"])
        rows.append(row)
    return pd.DataFrame(rows)


def class_weight_table(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """Each method trained both with and without class weights: both kinds, then the change
    (class-weighted minus unweighted) over the seeds the two kinds share, on accuracy, macro-F1 and
    the rarest training class (the one the weights lift most). Baselines follow as references.
    Empty unless the runs mix the two kinds."""
    neural = [r for r in runs if r.get("method") != "baseline"]
    weighted = [r for r in neural if r.get("class_weights") is not None]
    if not weighted or len(weighted) == len(neural):
        return pd.DataFrame()
    rare = _rarest_class(weighted)
    columns = {
        "Test accuracy": "test_accuracy",
        "Test macro-F1": "test_macro_f1",
        f"F1 {rare}": f"test_f1_{rare}",
        f"Recall {rare}": f"test_recall_{rare}",
    }
    methods: dict[str, dict[bool, list[dict[str, Any]]]] = {}
    for run in neural:
        kinds = methods.setdefault(base_method(run["method_name"]), {True: [], False: []})
        kinds[run.get("class_weights") is not None].append(run)
    rows = []
    for name in sorted(methods, key=_method_order):
        with_, without = methods[name][True], methods[name][False]
        if not with_ or not without:
            continue
        for kind, group in (("class-weighted", with_), ("unweighted", without)):
            values = {c: _mean_std([r.get(m) for r in group]) for c, m in columns.items()}
            rows.append({"Method": name, "Class weights": kind, "n": len(group), **values})
        with_seed, without_seed = ({r.get("seed"): r for r in g} for g in (with_, without))
        shared = sorted(s for s in with_seed.keys() & without_seed.keys() if s is not None)
        by_seed = [(with_seed[s], without_seed[s]) for s in shared]
        rows.append(
            {
                "Method": name,
                "Class weights": "change, same seeds",
                "n": len(by_seed),
                **{
                    c: _mean_std([_diff(w.get(m), u.get(m)) for w, u in by_seed], sign=True)
                    for c, m in columns.items()
                },
            }
        )
    for run in runs:
        if run.get("method") == "baseline":
            values = {c: _mean_std([run.get(m)]) for c, m in columns.items()}
            rows.append(
                {"Method": f"{run['method_name']} (reference)", "Class weights": "balanced", "n": 1, **values}
            )
    return pd.DataFrame(rows)


def build_report(roots: str | Path | Sequence[str | Path]) -> Report:
    runs = load_runs(roots)
    where = ", ".join(f"`{r}`" for r in _as_list(roots))
    summary = summarize(runs)
    searches = rate_searches(runs)
    baselines = [r["method_name"] for r in runs if r.get("method") == "baseline"]
    distilled = {_learning_rate(r) for r in runs if r.get("method") == "distill"}
    equal_rate = distilled.pop() if len(distilled) == 1 else None
    left_out = unchosen_rates(searches, equal_rate)
    parts = [
        "# Results",
        f"{len(runs)} runs under {where}, all on test split `{runs[0].get('test_split_hash')}`. "
        "Figures are mean ± sample standard deviation over n runs (seeds). Training loss is each "
        "method's own objective (distillation: α·KL·T² + (1−α)·CE; LoRA and teacher: CE); validation "
        "loss is cross-entropy for every method.",
        "## A7: distillation vs LoRA",
    ]
    if searches:
        parts.append(
            "A method run at several learning rates is shown at the rate chosen on validation (see "
            "*Learning rates*)"
            + (
                f", and at the distilled students' rate ({equal_rate:g}) for an equal-rate comparison."
                if equal_rate
                else "."
            )
        )
    parts += [
        markdown_table(a7_table(summary, baselines, left_out)),
        "## A6: which teacher layers to start from",
        markdown_table(a6_table(summary)),
        "## All methods",
        markdown_table(full_table(summary)),
    ]
    if searches:
        parts += [
            "## Learning rates",
            "The rate is chosen by its validation macro-F1 at the search seed (the lowest seed every "
            "rate was run with; the mean over all runs where no seed is shared). The chosen rate's other "
            "seeds and the test split play no part in the choice.",
            markdown_table(learning_rate_table(searches)),
        ]
    weighting = class_weight_table(runs)
    if not weighting.empty:
        parts += [
            "## Class weights: with and without",
            "The change is class-weighted minus unweighted, mean ± std over the seeds both kinds were "
            "run with. The class shown is the rarest in training: the one the weights lift most.",
            markdown_table(weighting),
        ]
    return Report(summary, runs, "\n\n".join(parts) + "\n", left_out)


def write_report(report: Report, output_dir: str | Path) -> list[Path]:
    """results.md, results.csv, summary.json and the PNG plots, each written atomically. (Not
    results.json: that name marks a run, and a report often sits inside the folder of its runs.)"""
    out = Path(output_dir)
    table = report.summary.reset_index()
    written = [
        atomic_write(out / "results.md", report.markdown),
        atomic_write(out / "results.csv", table.to_csv(index=False)),
        atomic_write(out / "summary.json", json.dumps(json.loads(table.to_json(orient="records")), indent=2)),
    ]
    # matplotlib only when plotting. One way only: plots takes data shaped here and never imports report.
    from distill import plots

    runs = [run for run in report.runs if run["method_name"] not in report.left_out]
    summary = report.summary.drop(index=report.left_out)
    written += [
        plots.loss_curves(loss_histories(runs), out / "loss_curves.png"),
        plots.confusion_matrices(confusion_sum(runs), label_names(runs), out / "confusion_matrices.png"),
        plots.macro_f1_bars(summary, out / "macro_f1.png"),
    ]
    return written


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub markdown table of a small DataFrame."""
    if frame.empty:
        return "_no runs of these methods_"
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _pm(summary: pd.DataFrame, name: str, metric: str) -> str:
    return _format(summary.loc[name, f"{metric}_mean"], summary.loc[name, f"{metric}_std"])


def _mean_std(values: Sequence[Any], *, sign: bool = False) -> str:
    """ "mean ± std" of the values present ("-" if none), signed for changes."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return "-"
    std = float(np.std(present, ddof=1)) if len(present) > 1 else float("nan")
    return _format(float(np.mean(present)), std, sign=sign)


def _format(mean: float, std: float, *, sign: bool = False) -> str:
    """ "0.7212 ± 0.0062"; the mean alone without a std (one run), "-" without a mean."""
    if pd.isna(mean):
        return "-"
    text = f"{mean:+.4f}" if sign else f"{mean:.4f}"
    return text if pd.isna(std) else f"{text} ± {std:.4f}"


def _diff(a: Any, b: Any) -> float | None:
    return None if a is None or b is None else float(a) - float(b)


def _rarest_class(weighted_runs: list[dict[str, Any]]) -> str:
    """The class with the largest training weight, by name where the runs record label names."""
    run = weighted_runs[0]
    index = int(np.argmax(run["class_weights"]))
    names = run.get("label_names") or []
    return str(names[index]) if index < len(names) else str(index)


def _as_list(roots: str | Path | Sequence[str | Path]) -> list[str | Path]:
    """One folder or several, as a list: what --runs may name."""
    return [roots] if isinstance(roots, str | Path) else list(roots)


def _one_decimal(value: float) -> str:
    return "-" if pd.isna(value) else f"{value:.1f}"


def _size_mb(num_parameters: Any) -> float:
    # From results.json, not from the weights on disk, so a report rebuilds from the records alone: the
    # size in fp32, 4 bytes a parameter (what every run here saves: mixed precision trains under autocast),
    # in MB as the Hub counts file sizes (10**6 bytes).
    return float(num_parameters) * 4 / 10**6 if num_parameters else float("nan")


def _method_order(full_name: str) -> tuple[int, str]:
    """Teacher, the named layer choices, custom lists, LoRA, LoRA+KD, then baselines."""
    name = base_method(full_name)
    rank = ["Teacher", "Top-K", "Bottom-K", "Odd Layer", "Even Layer"]
    if name in rank:
        return rank.index(name), full_name
    kind = (
        3
        if name.startswith("LoRA+KD")
        else 2
        if name.startswith("LoRA")
        else 1
        if name.startswith("Layers")
        else 4
    )
    return len(rank) + kind, full_name


def confusion_sum(runs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Test confusion matrices summed over each method's runs."""
    out: dict[str, np.ndarray] = {}
    for run in runs:
        if run.get("test_confusion_matrix") is not None:
            matrix = np.asarray(run["test_confusion_matrix"])
            out[run["method_name"]] = out.get(run["method_name"], 0) + matrix
    return {name: out[name] for name in sorted(out, key=_method_order)}


def loss_histories(runs: list[dict[str, Any]]) -> dict[str, list[tuple[list[float], list[float]]]]:
    """Each method's runs' logged training loss as (steps, losses), methods in report order. Runs
    that logged none (shorter than --logging_steps) are left out, so a method's count is of curves."""
    out: dict[str, list[tuple[list[float], list[float]]]] = {}
    for run in runs:
        points = [(float(e["step"]), float(e["loss"])) for e in run.get("log_history", []) if "loss" in e]
        if points:
            steps, losses = zip(*points, strict=True)
            out.setdefault(run["method_name"], []).append((list(steps), list(losses)))
    return {name: out[name] for name in sorted(out, key=_method_order)}


def label_names(runs: list[dict[str, Any]]) -> list[str]:
    """The class names of the first run that records them ([] if none does)."""
    return next((list(map(str, r["label_names"])) for r in runs if r.get("label_names")), [])
