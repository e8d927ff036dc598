"""Run the whole comparison with one command: teacher, top/bottom/odd/even students, LoRA, report.

    python scripts/experiment.py --seeds 1 2 3 --num_train_epochs 3
    python scripts/experiment.py --launcher "accelerate launch --quiet --config_file accelerate_config.yaml" ...

Flags this script does not know (--max_length, --num_train_epochs, --learning_rate,
--max_train_samples, ...) are passed to every run, so all methods get the same budget. LoRA may get
a rate of its own (--lora_learning_rates 2e-3), or search a grid on validation at the first seed
and run the chosen rate's other seeds (--lora_learning_rates 5e-4 1e-3 2e-3). Finished runs are
skipped and an interrupted run resumes from its last checkpoint: after a crash, run the same command
again.
"""

import sys
from pathlib import Path

# Import the library beside this script, whatever is installed: `python scripts/x.py` puts scripts/
# first on the import path, where scripts/distill.py would shadow the distill package.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT), *(p for p in sys.path if Path(p or ".").resolve() != _ROOT / "scripts")]

import subprocess
import time

from transformers import HfArgumentParser

from distill import cli
from distill.errors import UserError
from distill.experiment import (
    ExperimentArguments,
    PlannedRun,
    chosen_rates,
    claim,
    launcher_command,
    plan,
    plan_chosen,
    rate_name,
)
from distill.report import build_report, write_report
from distill.results import read_results

SCRIPTS = Path(__file__).resolve().parent


def execute(runs: list[PlannedRun], launcher: list[str]) -> None:
    """Train each run in turn, skipping finished ones; stop at the first that fails."""
    for i, run in enumerate(runs, 1):
        prefix = f"[{i}/{len(runs)}] {run.name}"
        if not run.finished:
            with claim(run.output_dir) as lock:
                # Asked again under the lock: a command beside this one may have finished it meanwhile.
                if not run.finished:
                    train(run, prefix, launcher, lock)
                    continue
        print(f"{prefix}: done already ({run.output_dir}), skipped", flush=True)


def train(run: PlannedRun, prefix: str, launcher: list[str], lock: int) -> None:
    """One run, in a process that inherits the run's lock."""
    print(f"{prefix}: training -> {run.output_dir}", flush=True)
    start = time.monotonic()
    done = subprocess.run(run.command(launcher, SCRIPTS), pass_fds=(lock,))
    if done.returncode != 0:
        raise UserError(f"{run.name} failed (exit status {done.returncode}); see its output above.")
    result = read_results(run.output_dir)
    print(
        f"{prefix}: test accuracy {result['test_accuracy']:.4f}, macro-F1 {result['test_macro_f1']:.4f} "
        f"({(time.monotonic() - start) / 60:.1f} min)",
        flush=True,
    )


def main() -> None:
    # No abbreviations: unknown flags go to every run, so `--seed` must not silently mean `--seeds`.
    exp, shared = HfArgumentParser(ExperimentArguments, allow_abbrev=False).parse_args_into_dataclasses(
        return_remaining_strings=True
    )
    cli.setup_logging()
    if any(flag.split("=", 1)[0] == "--seed" for flag in shared):
        raise UserError("Give seeds with --seeds (students) and --teacher_seeds, not --seed.")
    launcher = launcher_command(exp.launcher, sys.executable)
    first = plan(exp, shared)
    execute(first, launcher)
    # Chosen from the finished search runs' validation scores; a re-run chooses the same again.
    chosen = chosen_rates(first)
    for arm, rate in chosen.items():
        print(f"{arm}: learning rate {rate_name(rate)} chosen on validation", flush=True)
    execute(plan_chosen(exp, shared, chosen), launcher)
    report_dir = Path(exp.output_root) / "report"
    write_report(build_report(exp.output_root), report_dir)
    print(f"Report: {report_dir / 'results.md'}")


if __name__ == "__main__":
    cli.run(main)
