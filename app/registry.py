"""The models the app serves: found and loaded once at start-up, skipping (and naming) the broken ones."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import AppConfig
from app.inference import Classifier
from distill.errors import UserError
from distill.results import find_runs, read_results, run_title

logger = logging.getLogger(__name__)

# The part of results.json that GET /api/models and the About page show.
_SUMMARY_KEYS = (
    "method",
    "layers",
    "teacher",
    "seed",
    "num_parameters",
    "eval_macro_f1",
    "test_accuracy",
    "test_macro_f1",
)


class ModelRegistry:
    """Loaded classifiers by name, in start-up order, with their test results and a default (the first
    unless named)."""

    def __init__(
        self,
        classifiers: list[Classifier],
        results: dict[str, dict[str, Any] | None],
        default: str | None = None,
        aliases: dict[str, str] | None = None,
    ) -> None:
        if not classifiers:
            raise ValueError("a ModelRegistry needs at least one classifier")
        self._classifiers = {c.name: c for c in classifiers}
        self._results = results
        self._default = self._classifiers.get(default or "", classifiers[0])
        self._aliases = aliases or {}

    @property
    def names(self) -> list[str]:
        return list(self._classifiers)

    @property
    def default(self) -> Classifier:
        return self._default

    def get(self, name: str | None) -> Classifier | None:
        """The classifier called `name` (the default one for None), or None if no model has that name.
        A model is also found by its folder or Hub id, as given or relative to --runs."""
        if name is None:
            return self.default
        return self._classifiers.get(name) or self._classifiers.get(self._aliases.get(name, ""))

    def results(self, name: str) -> dict[str, Any] | None:
        """The model's test metrics from its results.json; None for a model without one (a Hub id)."""
        return self._results.get(name)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "name": c.name,
                "source": c.source,
                "labels": c.labels,
                "non_toxic_label": c.non_toxic_label,
                "max_length": c.max_length,
                "precision": c.precision,
                "default": c is self.default,
                "results": self.results(c.name),
            }
            for c in self._classifiers.values()
        ]


def load_registry(config: AppConfig) -> ModelRegistry:
    """Load every configured model; a model that fails is logged by name and left out.

    Raises UserError if there is nothing to load, or nothing loaded.
    """
    entries = _entries(config)
    classifiers: list[Classifier] = []
    results: dict[str, dict[str, Any] | None] = {}
    for entry in entries:
        try:
            classifier = Classifier.load(
                entry.name, entry.source, config.non_toxic_label, config.quantize, config.max_length
            )
        except UserError as err:  # its message names the model
            logger.error("Skipping a model: %s", err)
            continue
        except Exception as err:  # any other failure (truncated weights, ...) also means: skip this one
            logger.error(
                "Skipping a model: %s could not be loaded (%s: %s)", entry.source, type(err).__name__, err
            )
            continue
        classifiers.append(classifier)
        results[entry.name] = _summary(entry.record)
        logger.info(
            "Loaded model %s (%s) from %s: classes %s, %r is not toxic, at most %d tokens.",
            entry.name,
            classifier.precision,
            entry.source,
            ", ".join(classifier.labels),
            classifier.non_toxic_label,
            classifier.max_length,
        )
    if not classifiers:
        raise UserError(
            f"None of the {len(entries)} model(s) could be loaded ({', '.join(e.source for e in entries)}); "
            "the log above says why for each."
        )
    # The first --model given; from --runs, the run with the best validation macro-F1.
    ranked = entries if config.models else sorted(entries, key=_validation_score, reverse=True)
    default = next((e.name for e in ranked if e.name in results), None)
    # Clients that name a model by its folder (as the app named models before) still find it.
    aliases = {alias: e.name for e in entries for alias in (e.where, e.source) if alias != e.name}
    return ModelRegistry(classifiers, results, default, aliases)


@dataclass(frozen=True)
class _Entry:
    name: str  # as the menu and /api/models show it
    source: str  # folder or Hub id
    where: str  # the folder's name, or its path relative to --runs, or the Hub id
    record: dict[str, Any] | None  # its results.json, if it has one


def _entries(config: AppConfig) -> list[_Entry]:
    """The models to load, from --model or else from the finished runs under --runs, each named from
    its results.json (`student-even · seed 1`), or by its folder or Hub id when it has none."""
    if config.models:
        found = [(source, Path(source).name if Path(source).is_dir() else source) for source in config.models]
    else:
        found = [(str(run), _relative(run, config.runs)) for run in _finished_runs(config.runs)]
    records = [_record(source) for source, _ in found]
    titles = [run_title(r) if r else where for r, (_, where) in zip(records, found, strict=True)]
    entries: list[_Entry] = []
    for (source, where), record, title in zip(found, records, titles, strict=True):
        name = title if titles.count(title) == 1 else f"{title} ({where})"
        if any(e.name == name for e in entries):  # the same folder given twice
            name = source
        entries.append(_Entry(name, source, where, record))
    return entries


def _finished_runs(runs: Path) -> list[Path]:
    if not runs.is_dir():
        raise UserError(
            f"No models to serve: {runs} is not a folder. Pass --model DIR_OR_HUB_ID, or --runs with "
            "the folder holding your runs (train one with scripts/train_teacher.py)."
        )
    # Reference runs such as the TF-IDF baseline record results but have no model to serve.
    found = [run for run in find_runs(runs) if (run / "config.json").exists()]
    if not found:
        raise UserError(
            f"No models to serve: {runs} holds no finished run (a folder with results.json). "
            "Pass --model DIR_OR_HUB_ID, or train one with scripts/train_teacher.py."
        )
    return found


def _relative(run: Path, root: Path) -> str:
    return run.relative_to(root).as_posix() if run != root else run.name


def _record(source: str) -> dict[str, Any] | None:
    if not Path(source).is_dir():  # a Hub id has no results.json
        return None
    try:
        return read_results(source)
    except UserError as err:
        logger.warning("Serving %s without its results: %s", source, err)
        return None


def _validation_score(entry: _Entry) -> float:
    score = (entry.record or {}).get("eval_macro_f1")
    return float(score) if isinstance(score, int | float) else float("-inf")


def _summary(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    summary = {key: record.get(key) for key in _SUMMARY_KEYS}
    summary.update({key: value for key, value in record.items() if key.startswith("test_f1_")})
    return summary


_current: ModelRegistry | None = None


def install(registry: ModelRegistry) -> None:
    """Make `registry` the one the pages use (the app loads it once, at start-up)."""
    global _current
    _current = registry


def current() -> ModelRegistry:
    if _current is None:
        raise RuntimeError("no models installed: start the app with app/app.py or gunicorn 'app.app:server'")
    return _current
