"""results.json: the one writer and the one reader of a finished run's record."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from distill.errors import UserError
from distill.layers import layers_name

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"


def write_results(run_dir: str | Path, results: dict[str, Any]) -> Path:
    """Write `run_dir/results.json` atomically: a reader sees the old file or the new one, never half."""
    return atomic_write(Path(run_dir) / RESULTS_FILE, json.dumps(results, indent=2, default=str))


def atomic_write(path: str | Path, content: str | bytes) -> Path:
    """Write a file through a temporary file and a rename, so no reader ever sees part of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """Read a run's results.json; a missing or unreadable file is a UserError naming it."""
    path = Path(run_dir) / RESULTS_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise UserError(f"{run_dir} holds no {RESULTS_FILE}: it is not a finished run.") from err
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"Cannot read {path}: {err}") from err


def find_runs(root: str | Path) -> list[Path]:
    """Folders under `root` holding a results.json, sorted; unfinished run folders are skipped with a warning."""
    root = Path(root)
    runs = sorted(p.parent for p in root.rglob(RESULTS_FILE) if "checkpoint-" not in str(p.parent))
    for folder in sorted(p.parent for p in root.rglob("config.json")):
        if (
            folder not in runs
            and "checkpoint-" not in folder.name
            and (folder / "model.safetensors").exists()
        ):
            logger.warning("Skipping %s: it has a model but no %s (an unfinished run).", folder, RESULTS_FILE)
    return runs


# What each method's runs are called in the app and in /api/models, before their layer choice.
_TITLE_PREFIX = {"distill": "student", "lora": "lora", "lora+kd": "lora-kd"}


def run_title(record: dict[str, Any]) -> str:
    """A short name for a run, from its results.json: `teacher · seed 42`, `student-even · seed 1`."""
    method = str(record.get("method", "run"))
    name = method
    if method in _TITLE_PREFIX:
        spec = record.get("arguments", {}).get("layers") or record.get("layers") or []
        name = f"{_TITLE_PREFIX[method]}-{layers_name(spec)}"
    seed = record.get("seed")
    return name if seed is None else f"{name} · seed {seed}"
