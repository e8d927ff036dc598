"""The models the app serves: found and loaded once at start-up, skipping (and naming) the broken ones."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from app.config import AppConfig
from app.inference import Classifier
from distill.errors import UserError
from distill.results import find_runs, read_results

logger = logging.getLogger(__name__)

# The part of results.json that GET /api/models and the About page show.
_SUMMARY_KEYS = ("method", "layers", "teacher", "num_parameters", "test_accuracy", "test_macro_f1")


class ModelRegistry:
    """Loaded classifiers by name, in start-up order (the first is the default), with their test results."""

    def __init__(self, classifiers: list[Classifier], results: dict[str, dict[str, Any] | None]) -> None:
        if not classifiers:
            raise ValueError("a ModelRegistry needs at least one classifier")
        self._classifiers = {c.name: c for c in classifiers}
        self._results = results

    @property
    def names(self) -> list[str]:
        return list(self._classifiers)

    @property
    def default(self) -> Classifier:
        return next(iter(self._classifiers.values()))

    def get(self, name: str | None) -> Classifier | None:
        """The classifier called `name` (the default one for None), or None if no model has that name."""
        return self.default if name is None else self._classifiers.get(name)

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
    sources = _sources(config)
    classifiers: list[Classifier] = []
    results: dict[str, dict[str, Any] | None] = {}
    for name, source in sources.items():
        try:
            classifier = Classifier.load(name, source, config.non_toxic_label, config.quantize)
        except UserError as err:  # its message names the model
            logger.error("Skipping a model: %s", err)
            continue
        except Exception as err:  # any other failure (truncated weights, ...) also means: skip this one
            logger.error("Skipping a model: %s could not be loaded (%s: %s)", source, type(err).__name__, err)
            continue
        classifiers.append(classifier)
        results[name] = _summary(source)
        logger.info(
            "Loaded model %s (%s) from %s: classes %s, %r is not toxic, at most %d tokens.",
            name,
            classifier.precision,
            source,
            ", ".join(classifier.labels),
            classifier.non_toxic_label,
            classifier.max_length,
        )
    if not classifiers:
        raise UserError(
            f"None of the {len(sources)} model(s) could be loaded ({', '.join(sources.values())}); "
            "the log above says why for each."
        )
    return ModelRegistry(classifiers, results)


def _sources(config: AppConfig) -> dict[str, str]:
    """Display name -> folder or Hub id, from --model or else from the finished runs under --runs."""
    if config.models:
        names: dict[str, str] = {}
        for source in config.models:
            short = Path(source).name if Path(source).is_dir() else source
            names[source if short in names else short] = source
        return names
    if not config.runs.is_dir():
        raise UserError(
            f"No models to serve: {config.runs} is not a folder. Pass --model DIR_OR_HUB_ID, or --runs with "
            "the folder holding your runs (train one with scripts/train_teacher.py)."
        )
    # Reference runs such as the TF-IDF baseline record results but have no model to serve.
    runs = [run for run in find_runs(config.runs) if (run / "config.json").exists()]
    if not runs:
        raise UserError(
            f"No models to serve: {config.runs} holds no finished run (a folder with results.json). "
            "Pass --model DIR_OR_HUB_ID, or train one with scripts/train_teacher.py."
        )
    return {
        (run.relative_to(config.runs).as_posix() if run != config.runs else run.name): str(run)
        for run in runs
    }


def _summary(source: str) -> dict[str, Any] | None:
    if not Path(source).is_dir():  # a Hub id has no results.json
        return None
    try:
        record = read_results(source)
    except UserError as err:
        logger.warning("Serving %s without its test results: %s", source, err)
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
