from pathlib import Path

import pytest
from conftest import run_script

from distill.experiment import ExperimentArguments, data_flags, plan

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
