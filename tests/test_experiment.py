"""distill.experiment: the plan of an experiment's runs, LoRA's learning-rate search on validation, and
the launcher of each run. A whole experiment, through `accelerate launch`, killed and resumed, is in
test_resume.py."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ACCELERATE, run_script

from distill.errors import UserError
from distill.experiment import (
    ExperimentArguments,
    PlannedRun,
    choose_learning_rate,
    chosen_rates,
    claim,
    data_flags,
    launcher_command,
    plan,
    plan_chosen,
    without_flags,
)
from distill.report import build_report, learning_rate_table, rate_searches
from distill.results import write_results

SHARED = [
    "--max_length",
    "64",
    "--max_train_samples",
    "800",
    "--learning_rate",
    "5e-5",
    "--class_weights",
    "balanced",
]


def test_plan_trains_one_teacher_first_then_students_then_teacher_seeds_and_baseline(tmp_path):
    exp = ExperimentArguments(
        dataset="d.csv", output_root=str(tmp_path), seeds=[1, 2], strategies=["odd"], teacher_seeds=[42, 7]
    )
    runs = plan(exp, SHARED)
    assert [r.name for r in runs] == [
        "teacher",
        "student-odd seed 1",
        "lora-even seed 1",
        "student-odd seed 2",
        "lora-even seed 2",
        "teacher seed 7",
        "baseline",
    ]
    dirs = {r.name: r.output_dir.relative_to(tmp_path) for r in runs}
    assert dirs["teacher"] == Path("teacher") and dirs["teacher seed 7"] == Path("teacher-seed-7")
    assert dirs["lora-even seed 2"] == Path("lora-even/seed-2")
    # Every student distils from the first teacher, with its own seed and the shared budget.
    student = runs[3].args
    assert student[student.index("--teacher") + 1] == str(tmp_path / "teacher")
    assert student[student.index("--seed") + 1] == "2"
    assert all(flag in student for flag in SHARED)
    assert runs[5].args[runs[5].args.index("--seed") + 1] == "7"
    # The baseline gets the same split but no training flags, which it would refuse.
    assert runs[-1].script == "baseline.py"
    assert runs[-1].args == ["--dataset", "d.csv", "--max_length", "64", "--max_train_samples", "800"]


def test_plan_without_lora_or_baseline(tmp_path):
    exp = ExperimentArguments(
        output_root=str(tmp_path), seeds=[1], strategies=["even"], lora_layers=["none"], baseline=False
    )
    assert [r.name for r in plan(exp, [])] == ["teacher", "student-even seed 1"]


def test_layer_matching_runs_beside_the_same_students_without_it(tmp_path):
    exp = ExperimentArguments(
        output_root=str(tmp_path), seeds=[1, 2], strategies=["odd", "even"], pkd_strategies=["even"],
        lora_layers=["none"], baseline=False,
    )  # fmt: skip
    runs = {r.name: r for r in plan(exp, SHARED)}
    assert list(runs) == [
        "teacher", "student-odd seed 1", "student-even seed 1", "student-even-pkd seed 1",
        "student-odd seed 2", "student-even seed 2", "student-even-pkd seed 2",
    ]  # fmt: skip
    matched = runs["student-even-pkd seed 2"]
    assert matched.output_dir == tmp_path / "student-even-pkd" / "seed-2"
    assert flag(matched, "--pkd_weight") == "100" and flag(matched, "--layers") == "even"
    assert "--pkd_weight" not in runs["student-even seed 2"].args
    with pytest.raises(UserError, match="--pkd_weight 0"):
        ExperimentArguments(pkd_strategies=["even"], pkd_weight=0)


def flag(run: PlannedRun, name: str) -> str:
    """The value of the one `name` flag among the run's flags."""
    assert run.args.count(name) == 1, run.args
    return run.args[run.args.index(name) + 1]


def finish(run: PlannedRun, eval_f1: float, test_f1: float) -> None:
    """A results.json for `run`, as its script would record it: a finished run."""
    write_results(
        run.output_dir,
        {
            "method": "lora" if run.script == "lora.py" else "distill",
            "seed": int(flag(run, "--seed")),
            "test_split_hash": "abc",
            "arguments": {
                "layers": flag(run, "--layers"),
                "teacher": flag(run, "--teacher"),
                "training": {"learning_rate": float(flag(run, "--learning_rate"))},
            },
            "eval_macro_f1": eval_f1,
            "test_macro_f1": test_f1,
        },
    )


def test_a_lora_rate_grid_runs_every_rate_at_the_first_seed_then_the_validation_best_at_the_others(
    tmp_path,
):
    exp = ExperimentArguments(
        output_root=str(tmp_path),
        seeds=[1, 2, 3],
        strategies=["odd"],
        baseline=False,
        lora_learning_rates=[5e-4, 1e-3, 2e-3],
    )
    runs = plan(exp, SHARED)
    lora = [r for r in runs if r.script == "lora.py"]
    assert [r.name for r in lora] == [
        "lora-even lr 5e-4 seed 1",
        "lora-even lr 1e-3 seed 1",
        "lora-even lr 2e-3 seed 1",
    ]
    assert [r.output_dir.relative_to(tmp_path) for r in lora] == [
        Path(f"lora-lr-{rate}/lora-even/seed-1") for rate in ("5e-4", "1e-3", "2e-3")
    ]
    # LoRA's rate replaces the shared one; the distilled students keep it.
    assert [flag(r, "--learning_rate") for r in lora] == ["5e-4", "1e-3", "2e-3"]
    assert {flag(r, "--learning_rate") for r in runs if r.script == "distill.py"} == {"5e-5"}
    assert [r.name for r in runs if r.script == "distill.py"] == [f"student-odd seed {s}" for s in (1, 2, 3)]

    # 1e-3 is best on validation, 2e-3 on test: validation chooses.
    for run, eval_f1, test_f1 in zip(lora, [0.60, 0.70, 0.65], [0.60, 0.50, 0.90], strict=True):
        finish(run, eval_f1, test_f1)
    chosen = chosen_rates(runs)
    assert chosen == {"lora-even": 1e-3}
    later = plan_chosen(exp, SHARED, chosen)
    assert [r.name for r in later] == ["lora-even lr 1e-3 seed 2", "lora-even lr 1e-3 seed 3"]
    assert [r.output_dir.relative_to(tmp_path) for r in later] == [
        Path("lora-lr-1e-3/lora-even/seed-2"),
        Path("lora-lr-1e-3/lora-even/seed-3"),
    ]
    assert all(flag(r, "--learning_rate") == "1e-3" for r in later)

    # The same command again: the same plan, its searched runs done, and the same choice.
    assert plan(exp, SHARED) == runs and all(r.finished for r in lora)
    assert chosen_rates(plan(exp, SHARED)) == chosen

    # The report sees each rate and marks the one the experiment chose.
    for run in later:
        finish(run, 0.5, 0.5)
    report = build_report(tmp_path)
    [search] = rate_searches(report.runs)
    assert (search.method, search.seed, search.chosen) == ("LoRA (even)", 1, 1e-3)
    table = learning_rate_table([search])
    assert table["Chosen"].tolist() == ["", "yes", ""] and table["n"].tolist() == [1, 3, 1]


def test_one_lora_rate_runs_every_seed_at_it_without_a_search(tmp_path):
    exp = ExperimentArguments(
        output_root=str(tmp_path), seeds=[1, 2], strategies=[], baseline=False, lora_learning_rates=[2e-3]
    )
    runs = plan(exp, ["--learning_rate=5e-5"])
    assert [r.output_dir.relative_to(tmp_path) for r in runs[1:]] == [
        Path("lora-lr-2e-3/lora-even/seed-1"),
        Path("lora-lr-2e-3/lora-even/seed-2"),
    ]
    assert all(
        flag(r, "--learning_rate") == "2e-3" and "--learning_rate=5e-5" not in r.args for r in runs[1:]
    )
    assert chosen_rates(runs) == {} and plan_chosen(exp, [], {}) == []


def test_the_rate_is_chosen_on_validation_macro_f1_alone():
    results = {
        5e-4: {"eval_macro_f1": 0.60, "test_macro_f1": 0.95},
        1e-3: {"eval_macro_f1": 0.70, "test_macro_f1": 0.40},
        2e-3: {"eval_macro_f1": 0.70, "test_macro_f1": 0.50},
    }
    assert choose_learning_rate(results) == 1e-3  # of a tie, the lowest rate, as the report chooses
    with pytest.raises(UserError, match="no validation macro-F1"):
        choose_learning_rate({1e-3: {"test_macro_f1": 0.9}})


@pytest.mark.parametrize(
    ("rates", "lora_layers", "message"),
    [
        (["0"], "even", "rates must be positive"),
        (["2e-3", "0.002"], "even", "a rate is given twice"),
        (["2e-3"], "none", "there are no LoRA runs"),
    ],
)
def test_bad_lora_learning_rates_are_refused_before_training(rates, lora_layers, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_script(
            "experiment",
            "--output_root",
            tmp_path / "out",
            "--lora_layers",
            lora_layers,
            "--lora_learning_rates",
            *rates,
        )
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_without_flags_drops_a_flag_in_every_spelling_with_its_values():
    flags = ["--learning_rate", "5e-5", "--max_length=64", "--learning-rate=1e-4", "--class_names", "a", "b"]
    assert without_flags(flags, {"--learning_rate"}) == ["--max_length=64", "--class_names", "a", "b"]


def test_data_flags_keeps_data_arguments_with_their_values():
    flags = [
        "--num_train_epochs",
        "1",
        "--class_names",
        "a",
        "b",
        "--split_seed=3",
        "--fp16",
        "--max_length",
        "8",
    ]
    assert data_flags(flags) == ["--class_names", "a", "b", "--split_seed=3", "--max_length", "8"]


def test_experiment_refuses_a_shared_seed_before_training(tmp_path, capsys):
    # --seed would be passed to every run and give all students one seed; it must name --seeds.
    with pytest.raises(SystemExit) as exit_info:
        run_script("experiment", "--output_root", tmp_path / "out", "--seeds", "1", "--seed", "3")
    assert exit_info.value.code == 2
    assert "--seeds (students) and --teacher_seeds, not --seed" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_each_run_starts_with_the_launcher_before_its_script(tmp_path):
    exp = ExperimentArguments(output_root=str(tmp_path), seeds=[1], strategies=["even"], lora_layers=["none"])
    teacher = plan(exp, ["--max_length", "64"])[0]
    launcher = launcher_command(ACCELERATE, "unused")
    assert launcher[:4] == [sys.executable, "-m", "accelerate.commands.launch", "--quiet"]
    assert teacher.command(launcher, Path("scripts")) == [
        *launcher,
        str(Path("scripts") / "train_teacher.py"),
        *teacher.command_args(),
    ]
    assert launcher_command("", "/usr/bin/python3") == ["/usr/bin/python3"]  # no launcher: plain Python


@pytest.mark.parametrize(
    ("launcher", "message"),
    [
        ("acelerate launch", "'acelerate' is not a program on this PATH"),
        ("accelerate launch --config_file 'a b", "cannot be split into words"),
    ],
)
def test_a_launcher_that_cannot_start_is_refused_before_training(launcher, message, tmp_path, capsys):
    with pytest.raises(UserError, match=message):
        launcher_command(launcher, sys.executable)
    with pytest.raises(SystemExit) as exit_info:
        run_script("experiment", "--output_root", tmp_path / "out", "--launcher", launcher)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_run_folder_is_trained_by_one_process_at_a_time(tmp_path):
    run_dir = tmp_path / "student-even" / "seed-1"
    with claim(run_dir) as lock:
        # The training process inherits the lock: it holds the folder even after this command ends.
        trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=(lock,))
    try:
        with pytest.raises(UserError, match=f"{run_dir} is being trained by another process"), claim(run_dir):
            pass
    finally:
        trainer.kill()
        trainer.wait()
    with claim(run_dir):  # its holders ended, as a killed run's do: the resume may take the folder
        pass
    assert (tmp_path / "student-even" / "seed-1.lock").is_file() and not run_dir.exists()


def test_experiment_stops_before_a_run_another_command_is_training(tmp_path, capsys):
    out = tmp_path / "out"
    with claim(out / "teacher"), pytest.raises(SystemExit) as exit_info:
        run_script(
            "experiment", "--output_root", out, "--seeds", "1", "--lora_layers", "none", "--no_baseline"
        )
    assert exit_info.value.code == 2
    assert f"{out / 'teacher'} is being trained by another process" in capsys.readouterr().err
    assert not (out / "teacher").exists()
