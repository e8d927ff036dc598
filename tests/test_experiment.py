import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LABELS, ROOT, run_script, tiny_config
from transformers import BertModel

from distill.errors import UserError
from distill.experiment import ExperimentArguments, data_flags, launcher_command, plan
from distill.precision import runs_fast

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


ACCELERATE = (
    f"{sys.executable} -m accelerate.commands.launch --quiet --config_file {ROOT / 'accelerate_config.yaml'}"
)


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


@pytest.mark.slow
def test_the_experiment_trains_every_run_through_accelerate_launch(csv_data, tokenizer, tmp_path):
    base = tmp_path / "base"
    BertModel(tiny_config()).save_pretrained(base)  # a bare pretrained encoder, as from the Hub
    tokenizer.save_pretrained(base)
    root = tmp_path / "outputs"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "experiment.py"), "--launcher", ACCELERATE,
         "--model_name_or_path", str(base), "--dataset", str(csv_data), "--output_root", str(root),
         "--seeds", "1", "--strategies", "even", "--lora_layers", "none", "--no_baseline",
         "--class_names", *LABELS, "--max_steps", "2", "--learning_rate", "1e-3",
         "--per_device_train_batch_size", "4", "--max_train_samples", "16", "--max_eval_samples", "8",
         "--max_test_samples", "8", "--report_to", "none", "--disable_tqdm", "true"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    # accelerate_config.yaml asks for bf16: each run heard it from the launcher, and trained in it where
    # this CPU has bf16 units, or said that it fell back.
    precision = "bf16" if runs_fast("bf16") else "fp32"
    fallbacks = output.count("bf16 was asked for, but there is no CUDA device")
    assert fallbacks == (0 if precision == "bf16" else 2), output[-4000:]
    for run in ("teacher", "student-even/seed-1"):
        results = json.loads((root / run / "results.json").read_text())
        assert results["precision"] == precision and results["world_size"] == 1
        assert max(entry["step"] for entry in results["log_history"]) == 2
    assert (root / "report" / "results.md").exists()
