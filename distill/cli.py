"""What every script does around its main(): logging like the Hugging Face examples, user errors
turned into one clear message and exit status 2 instead of a traceback, and a clean exit from a
distributed run."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import datasets
import torch.distributed as dist
import transformers
from accelerate import PartialState
from transformers import HfArgumentParser, TrainingArguments

from distill.errors import UserError


def setup_logging(training_args: TrainingArguments | None = None) -> None:
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    main_process = training_args is None or training_args.should_log
    logging.getLogger("distill").setLevel(logging.INFO if main_process else logging.WARNING)
    # --log_level / --log_level_replica set the libraries' verbosity, as in the Hugging Face examples.
    if training_args is not None:
        level = training_args.get_process_log_level()
        datasets.utils.logging.set_verbosity(level)
        transformers.utils.logging.set_verbosity(level)
    transformers.utils.logging.enable_explicit_format()


def parse_args(dataclass_types: Any, args: list[str] | None = None) -> tuple:
    """The command line as `dataclass_types`, as HfArgumentParser reads it, but with exact flag names
    only (`--layer` is refused, not taken for `--layers`), and with an unknown flag or an invalid
    combination of flags as a UserError (one line, exit status 2) instead of a traceback."""
    parser = HfArgumentParser(dataclass_types, allow_abbrev=False)
    try:
        *parsed, unknown = parser.parse_args_into_dataclasses(args=args, return_remaining_strings=True)
    except UserError:
        raise
    except ValueError as err:  # TrainingArguments' own checks, such as mismatched save and eval strategies
        raise UserError(" ".join(str(err).split())) from err
    if unknown:
        raise UserError(f"Unknown argument(s): {' '.join(unknown)}. `--help` lists every flag.")
    return tuple(parsed)


def with_positional(argv: list[str], flag: str) -> list[str]:
    """Read a leading positional argument as `flag` (`script.py RUN_DIR ...` for `--run_dir RUN_DIR`),
    since HfArgumentParser makes every dataclass field a flag."""
    return [flag, *argv] if argv and not argv[0].startswith("-") else argv


def run(main: Callable[[], object]) -> None:
    """Call `main`; on a UserError print `error: <message>` to stderr and exit with status 2. After a
    distributed run, leave the process group cleanly."""
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    leave_process_group()


def leave_process_group() -> None:
    """Wait for every rank, then destroy the process group, as torch.distributed asks of a script.
    A rank that exits with gloo's worker threads still alive can abort at interpreter shutdown
    (SIGABRT, "terminate called without an active exception"), failing a run that had succeeded.
    Only on success: after an error the other ranks may never reach the barrier."""
    if dist.is_available() and dist.is_initialized():
        state = PartialState()
        state.wait_for_everyone()
        state.destroy_process_group()
