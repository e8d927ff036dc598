"""The whole experiment as a plan: which runs, in which order, with which flags.

A plan is data; `scripts/experiment.py` executes it. Runs that already have a results.json are
skipped, and a run interrupted after a checkpoint resumes from it, so re-running the same command
after a crash continues where it stopped.

A LoRA learning rate searched over a grid (--lora_learning_rates with several rates) plans in two
phases: `plan` runs every rate at the first seed; `choose_learning_rate` picks the one with the best
validation macro-F1 from those runs' results; `plan_chosen` then runs only that rate's other seeds.
The choice is made again from the same records on a re-run, so the second phase resumes too.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import shlex
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from distill.args import DEFAULT_DATASET, DEFAULT_TEACHER_BASE, DataArguments
from distill.errors import UserError
from distill.layers import layers_name
from distill.report import best_rate
from distill.results import RESULTS_FILE, read_results


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
        metadata={
            "help": "Fit the TF-IDF + logistic regression reference on the same split "
            "(--no_baseline skips it)."
        },
    )
    lora_kd: bool = field(default=False, metadata={"help": "Also train LoRA+KD students."})
    pkd_strategies: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Layer choices to distil again with layer matching (--pkd_weight; each student layer "
            "matches the teacher layer it was copied from), beside their runs without it."
        },
    )
    pkd_weight: float = field(
        default=100.0,
        metadata={
            "help": "β of the layer-matching runs (--pkd_strategies). Default 100: the middle of Patient KD's "
            "grid (10, 100, 500, 1000), and the β of its PyTorch reimplementation's example."
        },
    )
    lora_learning_rates: list[float] | None = field(
        default=None,
        metadata={
            "help": "LoRA's own learning rate, for the LoRA and LoRA+KD runs instead of --learning_rate. "
            "One rate: every seed runs at it. Several: each runs at the first of --seeds, and only the "
            "one with the best validation macro-F1 runs the other seeds (ties: the lowest), per LoRA "
            "body. Runs go to lora-lr-<rate>/. Default: the --learning_rate every method gets, or without "
            "one, lora.py's own 2e-3."
        },
    )
    launcher: str = field(
        default="",
        metadata={
            "help": "The command that starts each training run, before the script's path: for example "
            "'accelerate launch --quiet --config_file accelerate_config.yaml' on a GPU. Empty: this Python."
        },
    )

    def __post_init__(self) -> None:
        rates = self.lora_learning_rates or []
        if any(rate <= 0 for rate in rates):
            raise UserError(f"--lora_learning_rates {' '.join(map(str, rates))}: rates must be positive.")
        if len(set(rates)) < len(rates):
            raise UserError(f"--lora_learning_rates {' '.join(map(str, rates))}: a rate is given twice.")
        if rates and all(layers == "none" for layers in self.lora_layers):
            raise UserError("--lora_learning_rates, but --lora_layers none: there are no LoRA runs.")
        if self.pkd_strategies and self.pkd_weight <= 0:
            raise UserError(f"--pkd_weight {self.pkd_weight:g}: layer-matching runs need a weight above 0.")


@dataclass
class PlannedRun:
    name: str
    script: str  # file name under scripts/
    output_dir: Path
    args: list[str]
    learning_rate: float | None = None  # given to this run alone (LoRA's own), not by the shared flags
    search: str | None = None  # the LoRA arm whose learning rate this run, at the first seed, helps choose

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


@contextmanager
def claim(output_dir: Path) -> Iterator[int]:
    """Hold a run folder's lock (`<folder>.lock` beside it) while its run trains, and yield the lock's
    file descriptor for the training process to inherit, so that the lock lasts while either lives.
    Two experiment.py commands side by side whose plans overlap then stop with a one-line error
    instead of training one run into one folder twice. The system drops a lock when its holders end,
    so a killed run's lock never blocks the resume."""
    lock = output_dir.with_name(f"{output_dir.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{output_dir} is being trained by another process, which holds {lock}; "
                "experiment.py commands side by side need runs that do not overlap."
            ) from None
        yield handle.fileno()


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


@dataclass(frozen=True)
class Arm:
    """One kind of student the experiment trains at every seed."""

    name: str  # its folder: student-even, lora-even, lora-kd-even
    script: str  # file name under scripts/
    layers: str
    extra: tuple[str, ...] = ()
    rates: tuple[float, ...] = ()  # its own learning rates; none: the shared flags' rate

    @property
    def searched(self) -> bool:
        return len(self.rates) > 1


def plan(exp: ExperimentArguments, shared: Sequence[str]) -> list[PlannedRun]:
    """Teacher, then each distilled student and LoRA student for every seed, then the teacher's other
    seeds and the baseline, all with `shared` flags (the baseline with the data flags among them). A
    LoRA arm with a grid of learning rates runs each rate at the first seed only: its other seeds wait
    on the choice (`plan_chosen`)."""
    root, dataset = _root(exp), _dataset_flags(exp, shared)
    common = [*dataset, *shared]
    teachers = [
        PlannedRun(
            "teacher" if i == 0 else f"teacher seed {seed}",
            "train_teacher.py",
            _teacher_dir(exp) if i == 0 else root / f"teacher-seed-{seed}",
            ["--model_name_or_path", exp.model_name_or_path, "--seed", str(seed), *common],
        )
        for i, seed in enumerate(exp.teacher_seeds)
    ]
    runs = teachers[:1]
    for i, seed in enumerate(exp.seeds):
        for arm in _arms(exp):
            if arm.searched and i > 0:
                continue
            runs += [_student_run(exp, arm, seed, rate, common) for rate in arm.rates or (None,)]
    runs += teachers[1:]
    if exp.baseline:
        data = [*dataset, *data_flags(shared)]
        runs.append(PlannedRun("baseline", "baseline.py", root / "baseline-tfidf", data))
    return runs


def plan_chosen(
    exp: ExperimentArguments, shared: Sequence[str], chosen: Mapping[str, float]
) -> list[PlannedRun]:
    """The runs that waited on a learning-rate search: each searched LoRA arm at the rate `chosen` for
    it (by arm name), at every seed after the first."""
    common = _common_flags(exp, shared)
    searched = [arm for arm in _arms(exp) if arm.searched]
    missing = [arm.name for arm in searched if arm.name not in chosen]
    if missing:
        raise UserError(f"No learning rate chosen for {', '.join(missing)}: run its search first.")
    return [
        _student_run(exp, arm, seed, chosen[arm.name], common) for seed in exp.seeds[1:] for arm in searched
    ]


def choose_learning_rate(results: Mapping[float, Mapping[str, Any]]) -> float:
    """The learning rate whose run (its results.json, by rate) scored the best validation macro-F1
    (eval_macro_f1); of a tie, the lowest rate, as the report chooses. Test metrics play no part."""
    missing = [f"{rate:g}" for rate, result in results.items() if result.get("eval_macro_f1") is None]
    if missing:
        raise UserError(
            f"The run at learning rate {', '.join(missing)} recorded no validation macro-F1 "
            "(eval_macro_f1), so no rate can be chosen: keep evaluation on (--eval_strategy)."
        )
    return best_rate({rate: float(result["eval_macro_f1"]) for rate, result in results.items()})


def search_trials(runs: Sequence[PlannedRun]) -> dict[str, dict[float, Path]]:
    """Each learning-rate search among `runs`: its runs at the first seed, by rate, by arm name."""
    trials: dict[str, dict[float, Path]] = {}
    for run in runs:
        if run.search is not None and run.learning_rate is not None:
            trials.setdefault(run.search, {})[run.learning_rate] = run.output_dir
    return trials


def chosen_rates(runs: Sequence[PlannedRun]) -> dict[str, float]:
    """The rate each search among `runs` (finished) chose, read from their results.json files."""
    return {
        arm: choose_learning_rate({rate: read_results(folder) for rate, folder in trials.items()})
        for arm, trials in search_trials(runs).items()
    }


def _arms(exp: ExperimentArguments) -> list[Arm]:
    """The distilled students, then the LoRA (and LoRA+KD) students, each with its own rates."""
    lora_layers = [s for s in exp.lora_layers if s != "none"]
    rates = tuple(exp.lora_learning_rates or ())
    arms = [Arm(f"student-{layers_name(s)}", "distill.py", s) for s in exp.strategies]
    pkd = ("--pkd_weight", f"{exp.pkd_weight:g}")
    arms += [Arm(f"student-{layers_name(s)}-pkd", "distill.py", s, pkd) for s in exp.pkd_strategies]
    arms += [Arm(f"lora-{layers_name(s)}", "lora.py", s, rates=rates) for s in lora_layers]
    if exp.lora_kd:
        arms += [Arm(f"lora-kd-{layers_name(s)}", "lora.py", s, ("--kd",), rates) for s in lora_layers]
    return arms


def _student_run(
    exp: ExperimentArguments, arm: Arm, seed: int, rate: float | None, common: Sequence[str]
) -> PlannedRun:
    """One student run. A rate of its own puts it under lora-lr-<rate>/ (so each rate of a search
    keeps its runs) and replaces the shared --learning_rate."""
    args = ["--teacher", str(_teacher_dir(exp)), "--layers", arm.layers, "--seed", str(seed), *arm.extra]
    if rate is None:
        return PlannedRun(
            f"{arm.name} seed {seed}", arm.script, _root(exp) / arm.name / f"seed-{seed}", [*args, *common]
        )
    name = rate_name(rate)
    return PlannedRun(
        f"{arm.name} lr {name} seed {seed}",
        arm.script,
        _root(exp) / f"lora-lr-{name}" / arm.name / f"seed-{seed}",
        [*args, *without_flags(common, {"--learning_rate"}), "--learning_rate", name],
        learning_rate=rate,
        search=arm.name if arm.searched and seed == exp.seeds[0] else None,
    )


def rate_name(rate: float) -> str:
    """A learning rate as folders and flags spell it: 2e-3, 5e-5, 2.5e-4 (every digit of the rate)."""
    return f"{Decimal(repr(rate)).normalize():e}"


def _root(exp: ExperimentArguments) -> Path:
    return Path(exp.output_root)


def _teacher_dir(exp: ExperimentArguments) -> Path:
    return _root(exp) / "teacher"


def _dataset_flags(exp: ExperimentArguments, shared: Sequence[str]) -> list[str]:
    """--dataset, unless data files among the shared flags (--train_file ...) replace it."""
    given_files = any(flag.split("=", 1)[0] == "--train_file" for flag in shared)
    if given_files and exp.dataset != DEFAULT_DATASET:
        raise UserError(f"Both --dataset {exp.dataset} and --train_file: give the training data one way.")
    return [] if given_files else ["--dataset", exp.dataset]


def _common_flags(exp: ExperimentArguments, shared: Sequence[str]) -> list[str]:
    return [*_dataset_flags(exp, shared), *shared]


def data_flags(flags: Sequence[str]) -> list[str]:
    """The DataArguments flags (with their values) among `flags`: all the baseline accepts."""
    names = {f"--{f.name}" for f in dataclasses.fields(DataArguments)}
    return [word for name, words in _flag_groups(flags) if name in names for word in words]


def without_flags(flags: Sequence[str], names: set[str]) -> list[str]:
    """`flags` less the flags `names` and their values."""
    return [word for name, words in _flag_groups(flags) if name not in names for word in words]


def _flag_groups(flags: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Each flag with its words (the flag and the values after it), by its name without any =value,
    spelled with underscores as the fields are (the parser also takes --learning-rate)."""
    groups: list[tuple[str, list[str]]] = []
    for word in flags:
        if word.startswith("--") or not groups:
            groups.append(("--" + word.removeprefix("--").split("=", 1)[0].replace("-", "_"), []))
        groups[-1][1].append(word)
    return groups
