"""The app's settings, read from environment variables that the command-line flags set.

Dash imports the pages, and gunicorn imports `app.app:server`, before any flag could be parsed, so the
environment is the one channel that works for `python app/app.py --model ...` and for gunicorn alike.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from distill.errors import UserError
from distill.quantize import QUANTIZATIONS

ENV_MODELS = "TOXIC_MODELS"  # comma-separated model folders or Hub ids; empty: every finished run
ENV_RUNS = "TOXIC_RUNS"  # folder searched for finished runs (default: outputs)
ENV_NON_TOXIC_LABEL = "TOXIC_NON_TOXIC_LABEL"  # the class that is not toxic (default: guessed)
ENV_REPORT = "TOXIC_REPORT"  # folder of scripts/compare.py's report (default: <runs>/report)
ENV_QUANTIZE = "TOXIC_QUANTIZE"  # int8: serve every model int8-quantized on the CPU; empty: as trained
ENV_MAX_LENGTH = "TOXIC_MAX_LENGTH"  # tokens to truncate at; empty: each model's training max_length


@dataclass(frozen=True)
class AppConfig:
    models: tuple[str, ...] = ()
    runs: Path = Path("outputs")
    non_toxic_label: str | None = None
    report: Path | None = None
    quantize: str | None = None
    max_length: int | None = None

    @property
    def report_dir(self) -> Path:
        return self.report if self.report is not None else self.runs / "report"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> AppConfig:
        models = tuple(m.strip() for m in environ.get(ENV_MODELS, "").split(",") if m.strip())
        report = environ.get(ENV_REPORT, "").strip()
        quantize = environ.get(ENV_QUANTIZE, "").strip().lower() or None
        if quantize is not None and quantize not in QUANTIZATIONS:
            raise UserError(
                f"{ENV_QUANTIZE}={quantize!r}: use {' or '.join(QUANTIZATIONS)}, or leave it empty."
            )
        return cls(
            models=models,
            runs=Path(environ.get(ENV_RUNS, "").strip() or "outputs"),
            non_toxic_label=environ.get(ENV_NON_TOXIC_LABEL, "").strip() or None,
            report=Path(report) if report else None,
            quantize=quantize,
            max_length=_max_length(environ.get(ENV_MAX_LENGTH, "").strip()),
        )

    def to_env(self) -> dict[str, str]:
        """The environment variables that `from_env` turns back into this configuration."""
        return {
            ENV_MODELS: ",".join(self.models),
            ENV_RUNS: str(self.runs),
            ENV_NON_TOXIC_LABEL: self.non_toxic_label or "",
            ENV_REPORT: str(self.report) if self.report is not None else "",
            ENV_QUANTIZE: self.quantize or "",
            ENV_MAX_LENGTH: str(self.max_length or ""),
        }


def _max_length(value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise UserError(f"{ENV_MAX_LENGTH}={value!r}: use a positive number of tokens, or leave it empty.")
    return int(value)


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of tokens")
    return int(value)


@dataclass(frozen=True)
class ServerOptions:
    config: AppConfig
    host: str
    port: int


def parse_args(argv: Sequence[str] | None = None) -> ServerOptions:
    """Parse `python app/app.py` flags; unset flags fall back to the environment."""
    parser = argparse.ArgumentParser(
        prog="python app/app.py",
        description="Serve the toxic-comment classifier UI and JSON API.",
        epilog=f"Each flag sets an environment variable ({ENV_MODELS}, {ENV_RUNS}, {ENV_NON_TOXIC_LABEL}, "
        f"{ENV_REPORT}, {ENV_QUANTIZE}, {ENV_MAX_LENGTH}), which is how gunicorn, importing app.app:server, is configured.",
    )
    try:
        env = AppConfig.from_env()
    except UserError as err:
        parser.error(str(err))
    parser.add_argument(
        "--model",
        dest="models",
        nargs="+",
        action="extend",
        metavar="DIR_OR_HUB_ID",
        help="model folder(s) or Hub id(s) to serve; default: every finished run under --runs",
    )
    parser.add_argument("--runs", type=Path, default=env.runs, help="folder of runs (default: %(default)s)")
    parser.add_argument(
        "--non_toxic_label",
        default=env.non_toxic_label,
        help="the class that is not toxic (default: the one each model's config.json names, saved at "
        "training time; else the first of neither, non-toxic, normal, ... or a not-/non-/no- class)",
    )
    parser.add_argument(
        "--report", type=Path, default=env.report, help="compare report folder (default: RUNS/report)"
    )
    parser.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        default=env.quantize,
        help="serve the models with int8 linear layers through ONNX Runtime, for faster CPU serving "
        "(default: as trained, fp32)",
    )
    parser.add_argument(
        "--max_length",
        type=_positive,
        default=env.max_length,
        metavar="TOKENS",
        help="truncate texts at this many tokens (default: each model's training --max_length, as saved "
        "with it; at most what the model's position table holds)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8050, help="port (default: %(default)s)")
    args = parser.parse_args(argv)
    config = AppConfig(
        models=tuple(args.models) if args.models else env.models,
        runs=args.runs,
        non_toxic_label=args.non_toxic_label,
        report=args.report,
        quantize=args.quantize,
        max_length=args.max_length,
    )
    return ServerOptions(config=config, host=args.host, port=args.port)
