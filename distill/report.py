"""Turn saved runs into the comparison: tables (A7, A6, full), CSV/JSON, and plots.

Runs are grouped by everything that changed their training (RunSettings: the method, teacher layer
choice, class weights, precision, learning rate, loss weights, data, budget, ...), not by their seed,
and each group is summarised over its seeds as mean ± sample standard deviation with the number of
runs beside it. A row is named by its method and the settings that tell it from the method's other rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
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
    # One row per RunSettings, by name; its `family` and `variant` columns (the name's two halves,
    # what the tables select and label rows by) stay out of the written files.
    summary: pd.DataFrame
    runs: list[dict[str, Any]]
    markdown: str
    # Learning rates a search did not choose: in the tables of the search, not in A7 or the plots.
    left_out: list[str] = field(default_factory=list)


def load_runs(roots: str | Path | Sequence[str | Path]) -> list[dict[str, Any]]:
    """Every finished run under `roots`, all on one test split, with `run_dir`, its `settings`
    (RunSettings), its `row` (RowName) and `method_name` (the row's name) added."""
    roots = _as_list(roots)
    dirs = sorted({d.resolve(): d for root in roots for d in find_runs(root)}.values())
    if not dirs:
        raise UserError(
            f"No finished runs under {', '.join(map(str, roots))} (folders with a results.json). Train "
            "some first, e.g. scripts/train_teacher.py and scripts/distill.py, or point --runs elsewhere."
        )
    runs = [{**read_results(d), "run_dir": str(d)} for d in dirs]
    check_same_test_split(runs)
    for run in runs:
        run["settings"] = run_settings(run)
    names = row_names(run["settings"] for run in runs)
    for run in runs:
        run["row"] = names[run["settings"]]
        run["method_name"] = run["row"].name
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


# Scalars, or tuples for what a results.json holds as a list: hashable, so settings can key a dict.
Frozen = str | int | float | bool | tuple[Any, ...] | None


@dataclass(frozen=True)
class RunSettings:
    """Every recorded setting that changes what a run learns. Runs with equal settings differ only
    by their seed and are averaged into one row; runs that differ in anything else get rows of their
    own. What changes no weight is left out: the seed, output folders, logging, evaluation batch
    sizes, the teacher-logit cache (a test shows it trains the same weights).

    The fields after `family` are in the order a row's name lists them (see `row_names`)."""

    method: str  # teacher, distill, lora, lora+kd, baseline
    family: str  # what the report calls the method: Teacher, Even Layer, LoRA (even), TF-IDF + LR
    class_weights: str | None = None  # the --class_weights flag (balanced, 4,1,1); None: unweighted
    precision: str | None = None  # what ran (fp32, bf16, fp16), not what was asked for
    teacher: str | None = None  # a student's teacher
    # Its weights: a teacher retrained into the same folder (on another CPU) is another teacher. None
    # in records made before students recorded it.
    teacher_fingerprint: str | None = None
    base_model: str | None = None  # the pretrained encoder a teacher was fine-tuned from
    dataset: str | None = None
    # The soft-label terms: None and 0 for the methods that learn from hard labels only.
    alpha: float | None = None
    temperature: float | None = None
    cosine_weight: float = 0.0
    pkd_weight: float = 0.0  # layer matching; absent from records made before it existed
    pkd_targets: Frozen = None  # None where layer matching is off
    lora_r: int | None = None
    lora_alpha: int | None = None
    lora_dropout: float | None = None
    lora_target_modules: Frozen = None
    max_length: int | None = None
    max_train_samples: int | None = None
    max_eval_samples: int | None = None  # the validation set that picks the checkpoint
    duration: str | None = None  # "3 epochs", or "500 steps" where --max_steps overrides the epochs
    batch_size: int | None = None  # examples per optimizer step: per device × accumulation × processes
    optim: str | None = None
    weight_decay: float | None = None
    adam_beta1: float | None = None
    adam_beta2: float | None = None
    adam_epsilon: float | None = None
    max_grad_norm: float | None = None
    lr_scheduler_type: str | None = None
    lr_scheduler_kwargs: Frozen = None
    warmup_steps: float | None = None
    label_smoothing_factor: float | None = None
    train_sampling_strategy: str | None = None
    load_best_model_at_end: bool | None = None
    metric_for_best_model: str | None = None
    learning_rate: float | None = None  # last: the rows of a rate search differ in it alone


_DISTILLING = ("distill", "lora+kd")
_LORA = ("lora", "lora+kd")
# Trainer settings that change the optimisation, copied as recorded (arguments.training).
_TRAINER_SETTINGS = (
    "optim",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "warmup_steps",
    "label_smoothing_factor",
    "train_sampling_strategy",
    "load_best_model_at_end",
    "metric_for_best_model",
    "learning_rate",
)


def run_settings(run: dict[str, Any]) -> RunSettings:
    """The settings a run's results.json records, as one key (absent ones at their old defaults)."""
    method = str(run.get("method", "distill"))
    arguments = run.get("arguments", {})
    training = arguments.get("training", {})
    distils, lora = method in _DISTILLING, method in _LORA
    return RunSettings(
        method=method,
        family=method_name(run),
        class_weights=_weighting(run),
        precision=None if method == "baseline" else run.get("precision", "fp32"),
        teacher=run.get("teacher") or arguments.get("teacher"),
        teacher_fingerprint=run.get("teacher_fingerprint"),
        base_model=arguments.get("model_name_or_path"),
        dataset=run.get("dataset"),
        alpha=arguments.get("alpha") if distils else None,
        temperature=arguments.get("temperature") if distils else None,
        cosine_weight=arguments.get("cosine_weight", 0.0) if distils else 0.0,
        pkd_weight=arguments.get("pkd_weight", 0.0) if distils else 0.0,
        pkd_targets=_layer_targets(run) if distils else None,
        lora_r=arguments.get("lora_r") if lora else None,
        lora_alpha=arguments.get("lora_alpha") if lora else None,
        lora_dropout=arguments.get("lora_dropout") if lora else None,
        lora_target_modules=_frozen(arguments.get("lora_target_modules")) if lora else None,
        max_length=arguments.get("max_length"),
        max_train_samples=arguments.get("max_train_samples"),
        max_eval_samples=arguments.get("max_eval_samples"),
        duration=_duration(training),
        batch_size=_batch_size(training, run.get("world_size")),
        **_trainer_settings(training),
    )


def _trainer_settings(training: dict[str, Any]) -> dict[str, Any]:
    return {name: _frozen(training.get(name)) for name in _TRAINER_SETTINGS}


def _weighting(run: dict[str, Any]) -> str | None:
    """The --class_weights flag; for a record without it, the weights it recorded."""
    flag = run.get("arguments", {}).get("training", {}).get("class_weights")
    if flag is not None:
        return None if flag == "none" else str(flag)
    weights = run.get("class_weights")
    return None if weights is None else ",".join(f"{float(w):.3g}" for w in weights)


def _layer_targets(run: dict[str, Any]) -> Frozen:
    """The teacher layers that layer matching matched, where it was on: by default (no --pkd_targets)
    the layers the student was copied from, so both spellings of one choice are one setting."""
    arguments = run.get("arguments", {})
    if not arguments.get("pkd_weight"):
        return None
    spec = str(arguments.get("pkd_targets") or "").strip()
    if not spec:
        return tuple(run.get("layers") or ())
    parts = [part.strip() for part in spec.split(",")]
    return tuple(int(part) for part in parts) if all(part.isdigit() for part in parts) else spec


def _duration(training: dict[str, Any]) -> str | None:
    """How long a run trained, as the Trainer reads it: --max_steps, when set, overrides the epochs."""
    steps, epochs = training.get("max_steps"), training.get("num_train_epochs")
    if steps is not None and steps > 0:
        return f"{steps} steps"
    return None if epochs is None else f"{float(epochs):g} epoch{'' if float(epochs) == 1 else 's'}"


def _batch_size(training: dict[str, Any], world_size: Any) -> int | None:
    """Examples per optimizer step: one update is the same for 8 × 1 and 4 × 2 (accumulation), and
    for 4 per device on 2 processes."""
    per_device = training.get("per_device_train_batch_size")
    if per_device is None:
        return None
    return int(per_device) * int(training.get("gradient_accumulation_steps", 1)) * int(world_size or 1)


def _frozen(value: Any) -> Frozen:
    """A recorded value as a hashable one: lists (and dicts, as sorted pairs) become tuples."""
    if isinstance(value, dict):  # options: none given, whether recorded as {} or as null
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items())) or None
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


@dataclass(frozen=True)
class RowName:
    """What the report calls the runs of one RunSettings: its family, then the settings that tell it
    from the family's other rows (" · bf16", " · α 0.9", " · lr 0.002")."""

    family: str
    parts: tuple[str, ...] = ()
    # The last part is the learning rate, which alone tells this row from others of a rate search.
    rate_searched: bool = False

    @property
    def name(self) -> str:
        return self.family + self.variant

    @property
    def variant(self) -> str:
        return "".join(VARIANT + part for part in self.parts)

    @property
    def search(self) -> str | None:
        """The name of its rate search (its name without the rate), if it is one of a search's rows."""
        return VARIANT.join((self.family, *self.parts[:-1])) if self.rate_searched else None


def row_names(settings: Iterable[RunSettings]) -> dict[RunSettings, RowName]:
    """A name for each settings: its family, then each setting, in field order, that takes more than
    one value among the settings that agree on everything named before it. So a setting that varies
    only together with one named earlier (the unweighted students' own teacher, beside "unweighted")
    is not named twice, and two settings never share a name. Class weights are an experiment-wide
    choice: when the neural runs mix them, every neural row says which it had."""
    keys = list(dict.fromkeys(settings))
    parts: dict[RunSettings, list[str]] = {key: [] for key in keys}
    searched: set[RunSettings] = set()
    neural = [key for key in keys if key.method != "baseline"]
    if len({key.class_weights for key in neural}) > 1:
        for key in neural:
            parts[key].append(setting_label("class_weights", key.class_weights))
    blocks = _split(_split([keys], "family"), "class_weights")
    for name in _NAMED:
        for block in blocks:
            if len({getattr(key, name) for key in block}) > 1:
                for key in block:
                    parts[key].append(setting_label(name, getattr(key, name)))
                if name == "learning_rate":
                    searched.update(key for key in block if key.learning_rate is not None)
        blocks = _split(blocks, name)
    return {key: RowName(key.family, tuple(parts[key]), key in searched) for key in keys}


# The settings a row's name may list after its class weights, in order.
_NAMED = [f.name for f in fields(RunSettings) if f.name not in ("method", "family", "class_weights")]
# How a setting reads in a row's name; the others read "<flag> <value>".
_LABELS: dict[str, Callable[[Any], str]] = {
    "class_weights": lambda v: (
        "unweighted" if v is None else "class-weighted" if v == "balanced" else f"class weights {v}"
    ),
    "precision": str,
    "teacher": lambda v: f"teacher {v}",
    "teacher_fingerprint": lambda v: f"teacher weights {v or 'unrecorded'}",
    "base_model": lambda v: f"from {v}",
    "dataset": lambda v: f"data {v}",
    "alpha": lambda v: f"α {_value(v)}",
    "temperature": lambda v: f"T {_value(v)}",
    "max_train_samples": lambda v: f"max_train_samples {'all' if v is None else v}",
    "max_eval_samples": lambda v: f"max_eval_samples {'all' if v is None else v}",
    "duration": str,
    "batch_size": lambda v: f"batch {v}",
    "learning_rate": lambda v: f"lr {_value(v)}",
}


def setting_label(name: str, value: Any) -> str:
    """How one setting reads in a row's name: "bf16", "α 0.9", "lr 0.002", "cosine_weight 0.5"."""
    label = _LABELS.get(name)
    return label(value) if label else f"{name} {_value(value)}"


def _value(value: Any) -> str:
    """A setting's value in a row's name: short, but never the same for two values ("lr 0.002")."""
    if isinstance(value, float):
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    if isinstance(value, tuple):
        return ",".join(map(_value, value))
    return "none" if value is None else str(value)


def _split(blocks: list[list[RunSettings]], name: str) -> list[list[RunSettings]]:
    """Each block cut into blocks of one value of the setting `name`, in order of first appearance."""
    out: list[list[RunSettings]] = []
    for block in blocks:
        by_value: dict[Any, list[RunSettings]] = {}
        for key in block:
            by_value.setdefault(getattr(key, name), []).append(key)
        out += by_value.values()
    return out


@dataclass
class RateSearch:
    """A method trained at several learning rates, and the rate chosen on validation."""

    method: str  # its name without the rate, "LoRA (even)"
    runs: dict[float, list[dict[str, Any]]]  # by learning rate
    seed: int | None  # the seed every rate was run with, on which the rates are compared
    chosen: float

    def variant(self, rate: float) -> str:
        return str(self.runs[rate][0]["method_name"])

    @property
    def family(self) -> str:
        return str(next(iter(self.runs.values()))[0]["row"].family)


def rate_searches(runs: list[dict[str, Any]]) -> list[RateSearch]:
    """Each learning-rate search among the runs. A rate is chosen by the validation macro-F1 of its
    run at the search seed (the lowest seed run at every rate), so later seeds of the chosen rate do
    not weigh in on the choice; the test split plays no part."""
    families: dict[str, dict[float, list[dict[str, Any]]]] = {}
    for run in runs:
        if (search := run["row"].search) is not None:
            rate = run["settings"].learning_rate
            families.setdefault(search, {}).setdefault(rate, []).append(run)
    searches = []
    for method, by_rate in families.items():
        common = set.intersection(*({r.get("seed") for r in group} for group in by_rate.values()))
        seed = min((s for s in common if s is not None), default=None)
        scores = {rate: _validation_score(group, seed) for rate, group in by_rate.items()}
        searches.append(RateSearch(method, by_rate, seed, best_rate(scores)))
    return sorted(searches, key=lambda search: _order(search.family, search.method))


def best_rate(validation_f1: Mapping[float, float]) -> float:
    """The learning rate with the highest validation macro-F1; of a tie, the lowest rate. One rule
    for the report's choice and for scripts/experiment.py's, which then runs only that rate's seeds."""
    if not validation_f1:
        raise UserError("No learning rates to choose from.")
    return max(sorted(validation_f1), key=validation_f1.__getitem__)


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
    # What the tables select and label rows by (see Report.summary).
    rows_by_name = {run["method_name"]: run["row"] for run in runs}
    summary["family"] = [rows_by_name[name].family for name in summary.index]
    summary["variant"] = [rows_by_name[name].variant for name in summary.index]
    order = sorted(summary.index, key=lambda name: _order(summary.loc[name, "family"], name))
    return summary.loc[order]


def a7_table(
    summary: pd.DataFrame, baselines: Sequence[str] = (), left_out: Sequence[str] = ()
) -> pd.DataFrame:
    """Model Type | Training Loss | Test Set Performance, for Odd, Even, LoRA, and for reference the
    teacher and any baselines; without the `left_out` variants (learning rates not chosen)."""
    family = summary["family"]
    students = [
        m
        for m in summary.index
        if (family[m] in ("Odd Layer", "Even Layer") or _is_lora(family[m])) and m not in left_out
    ]
    references = [m for m in summary.index if family[m] == "Teacher" or m in baselines]
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
                "Student Layer": label + summary.loc[name, "variant"],
                "Training Loss": _pm(summary, name, "train_loss"),
                "Validation Loss": _pm(summary, name, "eval_loss"),
                "Validation Accuracy": _pm(summary, name, "eval_accuracy"),
                "n": int(summary.loc[name, "n"]),
            }
            for family, label in A6_ROWS.items()
            for name in summary.index
            if summary.loc[name, "family"] == family
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
    Empty unless some runs differ in their class weights alone (see `weighting_pairs`)."""
    neural = [r for r in runs if r["settings"].method != "baseline"]
    pairs = weighting_pairs(neural)
    if not pairs:
        return pd.DataFrame()
    rare = _rarest_class([run for sides in pairs.values() for run in sides[True]])
    columns = {
        "Test accuracy": "test_accuracy",
        "Test macro-F1": "test_macro_f1",
        f"F1 {rare}": f"test_f1_{rare}",
        f"Recall {rare}": f"test_recall_{rare}",
    }
    # Named as the other tables name rows, less the weighting: "Odd Layer · α 0.9" where odd students
    # were also trained at another alpha.
    names = {key: row.name for key, row in row_names(_but_weighting(r["settings"]) for r in neural).items()}
    rows = []
    for key in sorted(pairs, key=lambda k: _order(k.family, names[k])):
        with_, without = pairs[key][True], pairs[key][False]
        for kind, group in (("class-weighted", with_), ("unweighted", without)):
            values = {c: _mean_std([r.get(m) for r in group]) for c, m in columns.items()}
            rows.append({"Method": names[key], "Class weights": kind, "n": len(group), **values})
        with_seed, without_seed = ({r.get("seed"): r for r in g} for g in (with_, without))
        shared = sorted(s for s in with_seed.keys() & without_seed.keys() if s is not None)
        by_seed = [(with_seed[s], without_seed[s]) for s in shared]
        rows.append(
            {
                "Method": names[key],
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


def weighting_pairs(runs: list[dict[str, Any]]) -> dict[RunSettings, dict[bool, list[dict[str, Any]]]]:
    """Runs trained alike but for their class weights, split into class-weighted (True) and
    unweighted (False), keyed by their common settings. The teacher may differ too: an unweighted
    student learns from an unweighted teacher. Where a side holds runs of more than one setting (two
    weightings, two teachers) there is no one pair to compare, and it is left out."""
    groups: dict[RunSettings, dict[bool, dict[RunSettings, list[dict[str, Any]]]]] = {}
    for run in runs:
        settings = run["settings"]
        sides = groups.setdefault(_but_weighting(settings), {True: {}, False: {}})
        sides[settings.class_weights is not None].setdefault(settings, []).append(run)
    return {
        common: {weighted: next(iter(side.values())) for weighted, side in sides.items()}
        for common, sides in groups.items()
        if all(len(side) == 1 for side in sides.values())
    }


def _but_weighting(settings: RunSettings) -> RunSettings:
    """The settings without the class weights and the teacher, whose own weighting goes with them."""
    return replace(settings, class_weights=None, teacher=None)


def build_report(roots: str | Path | Sequence[str | Path]) -> Report:
    runs = load_runs(roots)
    where = ", ".join(f"`{r}`" for r in _as_list(roots))
    summary = summarize(runs)
    searches = rate_searches(runs)
    baselines = [r["method_name"] for r in runs if r.get("method") == "baseline"]
    distilled = {r["settings"].learning_rate for r in runs if r["settings"].method == "distill"}
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
    table = report.summary.drop(columns=["family", "variant"]).reset_index()
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


def _order(family: str, name: str) -> tuple[int, str]:
    """Teacher, the named layer choices, custom lists, LoRA, LoRA+KD, then baselines; a family's rows
    by name."""
    rank = ["Teacher", "Top-K", "Bottom-K", "Odd Layer", "Even Layer"]
    if family in rank:
        return rank.index(family), name
    kind = (
        3
        if family.startswith("LoRA+KD")
        else 2
        if _is_lora(family)
        else 1
        if family.startswith("Layers")
        else 4
    )
    return len(rank) + kind, name


def _is_lora(family: str) -> bool:
    return family.startswith("LoRA")


def _in_report_order(runs: list[dict[str, Any]], names: Iterable[str]) -> list[str]:
    """`names` (rows of these runs) in report order."""
    families = {run["method_name"]: run["row"].family for run in runs}
    return sorted(names, key=lambda name: _order(families[name], name))


def confusion_sum(runs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Test confusion matrices summed over each method's runs."""
    out: dict[str, np.ndarray] = {}
    for run in runs:
        if run.get("test_confusion_matrix") is not None:
            matrix = np.asarray(run["test_confusion_matrix"])
            out[run["method_name"]] = out.get(run["method_name"], 0) + matrix
    return {name: out[name] for name in _in_report_order(runs, out)}


def loss_histories(runs: list[dict[str, Any]]) -> dict[str, list[tuple[list[float], list[float]]]]:
    """Each method's runs' logged training loss as (steps, losses), methods in report order. Runs
    that logged none (shorter than --logging_steps) are left out, so a method's count is of curves."""
    out: dict[str, list[tuple[list[float], list[float]]]] = {}
    for run in runs:
        points = [(float(e["step"]), float(e["loss"])) for e in run.get("log_history", []) if "loss" in e]
        if points:
            steps, losses = zip(*points, strict=True)
            out.setdefault(run["method_name"], []).append((list(steps), list(losses)))
    return {name: out[name] for name in _in_report_order(runs, out)}


def label_names(runs: list[dict[str, Any]]) -> list[str]:
    """The class names of the first run that records them ([] if none does)."""
    return next((list(map(str, r["label_names"])) for r in runs if r.get("label_names")), [])
