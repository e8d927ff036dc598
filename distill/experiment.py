"""The whole experiment as a plan: which runs, in which order, with which flags.

A plan is data; `scripts/experiment.py` executes it. Runs that already have a results.json are
skipped, and a run interrupted after a checkpoint resumes from it, so re-running the same command
after a crash continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from distill.args import DEFAULT_DATASET, DEFAULT_TEACHER_BASE, DataArguments
from distill.errors import UserError
from distill.layers import layers_name
from distill.results import RESULTS_FILE


@dataclass
class ExperimentArguments:
    model_name_or_path: str = field(
        default=DEFAULT_TEACHER_BASE, metadata={"help": "Pretrained encoder fine-tuned into the teacher."}
    )
    dataset: str = field(default=DEFAULT_DATASET, metadata={"help": "Hub dataset id or local data file."})
    output_root: str = field(
        default="outputs", metadata={"help": "Every run goes in a folder under this one."}
    )
    seeds: list[int] = field(
        default_factory=lambda: [1, 2, 3], metadata={"help": "Training seeds of each student."}
    )
    strategies: list[str] = field(
        default_factory=lambda: ["top", "bottom", "odd", "even"],
        metadata={"help": "Layer choices to distil."},
    )
    lora_layers: list[str] = field(
        default_factory=lambda: ["even"],
        metadata={"help": "Layer choices for LoRA students (`all`: 12 layers; `none`: no LoRA runs)."},
    )
    teacher_seeds: list[int] = field(
        default_factory=lambda: [42],
        metadata={
            "help": "Seeds of the fine-tuned teacher. Students distil from the first (in teacher/); "
            "the others (teacher-seed-N/) measure the teacher's own spread."
        },
    )
    baseline: bool = field(
        default=True,
        metadata={"help": "Also fit the TF-IDF + logistic regression reference on the same split."},
    )
    lora_kd: bool = field(default=False, metadata={"help": "Also train LoRA+KD students."})
    launcher: str = field(
        default="",
        metadata={
            "help": "The command that starts each training run, before the script's path: for example "
            "'accelerate launch --quiet --config_file accelerate_config.yaml' on a GPU. Empty: this Python."
        },
    )


@dataclass
class PlannedRun:
    name: str
    script: str  # file name under scripts/
    output_dir: Path
    args: list[str]

    @property
    def finished(self) -> bool:
        return (self.output_dir / RESULTS_FILE).exists()

    def command(self, launcher: Sequence[str], scripts_dir: Path) -> list[str]:
        """The whole command line: `launcher` (a Python or `accelerate launch ...`), script, flags."""
        return [*launcher, str(scripts_dir / self.script), *self.command_args()]

    def command_args(self) -> list[str]:
        """The run's flags, resuming from its last checkpoint if an earlier attempt left one."""
        args = [*self.args, "--output_dir", str(self.output_dir)]
        last = last_complete_checkpoint(self.output_dir)
        return [*args, "--resume_from_checkpoint", str(last)] if last else args


def last_complete_checkpoint(output_dir: Path) -> Path | None:
    """The newest checkpoint-N folder whose trainer state was fully written; a save cut short by a
    kill has none, and resuming from it would fail."""
    checkpoints = sorted(
        (p for p in output_dir.glob("checkpoint-*") if p.name.removeprefix("checkpoint-").isdigit()),
        key=lambda p: int(p.name.removeprefix("checkpoint-")),
        reverse=True,
    )
    for checkpoint in checkpoints:
        try:
            json.loads((checkpoint / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        return checkpoint
    return None


def launcher_command(launcher: str, python: str) -> list[str]:
    """`launcher` split as a shell would, or `python` when it is empty; refused when its program is not
    found, before anything trains."""
    if not launcher.strip():
        return [python]
    try:
        words = shlex.split(launcher)
    except ValueError as err:
        raise UserError(f"--launcher {launcher!r} cannot be split into words: {err}.") from err
    if shutil.which(words[0]) is None:
        raise UserError(f"--launcher {launcher!r}: {words[0]!r} is not a program on this PATH.")
    return words


def plan(exp: ExperimentArguments, shared: Sequence[str]) -> list[PlannedRun]:
    """Teacher, then each distilled student and LoRA student for every seed, then the teacher's other
    seeds and the baseline, all with `shared` flags (the baseline with the data flags among them)."""
    root = Path(exp.output_root)
    teacher_dir = root / "teacher"
    # Data given as files (--train_file ...) among the shared flags replaces --dataset.
    given_files = any(flag.split("=", 1)[0] == "--train_file" for flag in shared)
    if given_files and exp.dataset != DEFAULT_DATASET:
        raise UserError(f"Both --dataset {exp.dataset} and --train_file: give the training data one way.")
    dataset = [] if given_files else ["--dataset", exp.dataset]
    common = [*dataset, *shared]
    teachers = [
        PlannedRun(
            "teacher" if i == 0 else f"teacher seed {seed}",
            "train_teacher.py",
            teacher_dir if i == 0 else root / f"teacher-seed-{seed}",
            ["--model_name_or_path", exp.model_name_or_path, "--seed", str(seed), *common],
        )
        for i, seed in enumerate(exp.teacher_seeds)
    ]
    lora_layers = [s for s in exp.lora_layers if s != "none"]
    students: list[tuple[str, str, str, list[str]]] = [
        ("distill.py", f"student-{layers_name(s)}", s, []) for s in exp.strategies
    ]
    students += [("lora.py", f"lora-{layers_name(s)}", s, []) for s in lora_layers]
    if exp.lora_kd:
        students += [("lora.py", f"lora-kd-{layers_name(s)}", s, ["--kd"]) for s in lora_layers]
    runs = teachers[:1]
    for seed in exp.seeds:
        for script, name, layers, extra in students:
            runs.append(
                PlannedRun(
                    f"{name} seed {seed}",
                    script,
                    root / name / f"seed-{seed}",
                    ["--teacher", str(teacher_dir), "--layers", layers, "--seed", str(seed), *extra, *common],
                )
            )
    runs += teachers[1:]
    if exp.baseline:
        data = [*dataset, *data_flags(shared)]
        runs.append(PlannedRun("baseline", "baseline.py", root / "baseline-tfidf", data))
    return runs


def data_flags(flags: Sequence[str]) -> list[str]:
    """The DataArguments flags (with their values) among `flags`: all the baseline accepts."""
    names = {f"--{f.name}" for f in dataclasses.fields(DataArguments)}
    kept: list[str] = []
    keep = False
    for flag in flags:
        if flag.startswith("--"):
            keep = flag.split("=", 1)[0] in names
        if keep:
            kept.append(flag)
    return kept
