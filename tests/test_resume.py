"""A run killed at any moment, and run again, ends as an uninterrupted run would: distill.resume (the
whole run's time, attempts and loss across a resume), scripts/experiment.py skipping finished runs and
resuming the interrupted one, and compare and the app skipping a run that never finished."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import ACCELERATE, ENV, LABELS, ROOT, run_script, save_run, tiny_config
from safetensors.torch import load_file
from transformers import BertModel

from app.config import AppConfig
from app.registry import load_registry
from distill.experiment import PlannedRun
from distill.precision import runs_fast
from distill.report import build_report, load_runs
from distill.results import write_results


def log_tail(path: Path) -> str:
    return path.read_text()[-4000:] if path.exists() else ""


# --- a killed run resumes to the model an uninterrupted run makes -----------------------------------------


def distill_command(teacher: Path, data: Path, out: Path, max_steps: int) -> list[str]:
    # Checkpoints every 2 steps, 6 steps per epoch: a kill lands mid-epoch and the run crosses an epoch,
    # so resuming must restore the data order, optimizer, scheduler and RNG. Logs every 3 steps: the
    # steps between a log and a checkpoint must still count in the resumed run's training loss.
    # --log_level info makes the Trainer say from which step it resumed.
    return [
        sys.executable, str(ROOT / "scripts" / "distill.py"), "--teacher", str(teacher), "--dataset", str(data),
        "--layers", "even", "--output_dir", str(out), "--max_steps", str(max_steps), "--seed", "3",
        "--learning_rate", "1e-3", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
        "--max_train_samples", "24", "--max_eval_samples", "8", "--max_test_samples", "8",
        "--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2",
        "--logging_steps", "3", "--report_to", "none", "--disable_tqdm", "true", "--log_level", "info",
    ]  # fmt: skip


def step(checkpoint: Path) -> int:
    return int(checkpoint.name.rpartition("-")[2])


def complete_checkpoints(out: Path) -> list[Path]:
    """Checkpoints a run can resume from: the Trainer writes trainer_state.json last, and not atomically,
    so a checkpoint counts only once that file parses and names the checkpoint's step."""
    complete = []
    for folder in out.glob("checkpoint-*"):
        try:
            state = json.loads((folder / "trainer_state.json").read_text())
        except (OSError, ValueError):  # not written yet, half written, or rotated away meanwhile
            continue
        if state.get("global_step") == step(folder):
            complete.append(folder)
    return sorted(complete, key=step)


def kill_at_first_checkpoint(command: list[str], out: Path, max_steps: int, log: Path) -> Path | None:
    """Start `command`, SIGKILL it as soon as a checkpoint is complete, and return the last complete
    checkpoint; None if the run got to its end (results.json or its final checkpoint) before the kill."""
    with log.open("w") as sink:
        # Its own process group: the kill takes any helper processes with it, as an OOM kill or a
        # preempted machine would.
        proc = subprocess.Popen(
            command, env=ENV, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 600
        while not complete_checkpoints(out):
            if proc.poll() is not None:
                assert proc.returncode == 0, log_tail(log)
                return None
            assert time.monotonic() < deadline, "no checkpoint within 10 minutes\n" + log_tail(log)
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    checkpoints = complete_checkpoints(out)
    if (out / "results.json").exists() or step(checkpoints[-1]) >= max_steps:
        return None
    return checkpoints[-1]


def run_to_end(command: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as sink:
        return subprocess.Popen(command, env=ENV, stdout=sink, stderr=subprocess.STDOUT)


def assert_same_weights(a: Path, b: Path) -> None:
    left, right = load_file(a), load_file(b)
    assert left.keys() == right.keys()
    for name in left:
        assert torch.allclose(left[name], right[name], atol=1e-5), (a, name)


@pytest.mark.slow
def test_a_killed_distill_run_resumes_to_the_same_model(teacher_dir, csv_data, tmp_path):
    # A tiny run can outpace the poll on a fast machine; then a longer one is killed instead, never skipped.
    for max_steps in (8, 32, 128):
        interrupted = tmp_path / f"interrupted-{max_steps}"
        command = distill_command(teacher_dir, csv_data, interrupted, max_steps)
        checkpoint = kill_at_first_checkpoint(command, interrupted, max_steps, tmp_path / "killed.log")
        if checkpoint is not None:
            break
    else:
        pytest.fail("every run finished before it could be killed")
    assert not (interrupted / "results.json").exists()  # an unfinished run, as a crash leaves it
    # Read now: the resumed run may rotate this checkpoint away.
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    first_attempt = state["stateful_callbacks"].get("RunClock", {}).get("attributes", {})

    reference = tmp_path / "uninterrupted"
    log = tmp_path / "resumed.log"
    # The resumed run in a process of its own and, meanwhile, the uninterrupted one here in this process
    # (single-threaded both: in parallel on two cores), without --log_level info, which would leave
    # transformers' logging at info for the tests after this one.
    resumed = run_to_end([*command, "--resume_from_checkpoint", str(checkpoint)], log)
    try:
        uninterrupted = distill_command(teacher_dir, csv_data, reference, max_steps)
        run_script("distill", *uninterrupted[2 : uninterrupted.index("--log_level")])
    finally:
        assert resumed.wait(timeout=600) == 0, log_tail(log)
    # The Trainer took the checkpoint's state: a run that silently started over would end equal too.
    resumed_from = rf"Resuming training from checkpoint with epoch \d+ and global step {step(checkpoint)}\b"
    assert re.search(resumed_from, log.read_text()), log_tail(log)

    # The last checkpoint is the end of training, whichever checkpoint validation then selected.
    assert_same_weights(
        interrupted / f"checkpoint-{max_steps}" / "model.safetensors",
        reference / f"checkpoint-{max_steps}" / "model.safetensors",
    )
    assert_same_weights(interrupted / "model.safetensors", reference / "model.safetensors")
    resumed, uninterrupted = (json.loads((d / "results.json").read_text()) for d in (interrupted, reference))
    assert Path(resumed["best_checkpoint"]).name == Path(uninterrupted["best_checkpoint"]).name
    for key in ("eval_loss", "eval_macro_f1", "test_loss", "test_accuracy", "test_macro_f1"):
        assert resumed[key] == pytest.approx(uninterrupted[key], abs=1e-5), key
    assert resumed["test_split_hash"] == uninterrupted["test_split_hash"]

    # What was logged and recorded is the whole run's: the loss and its parts at every log, and the
    # training loss over every step (the Trainer's own covers only the steps after the resume).
    def logged(results: dict[str, Any]) -> dict[int, dict[str, float]]:
        parts = ("loss", "loss_kl", "loss_ce")
        return {e["step"]: {k: e[k] for k in parts} for e in results["log_history"] if "loss" in e}

    assert logged(resumed).keys() == logged(uninterrupted).keys()
    assert max(logged(resumed)) == max_steps
    for at_step, entry in logged(resumed).items():
        assert entry == pytest.approx(logged(uninterrupted)[at_step], abs=1e-4), at_step
    assert resumed["train_loss"] == pytest.approx(uninterrupted["train_loss"], abs=1e-6)
    # The time of both attempts: the first attempt's, saved with the checkpoint, plus the second's.
    assert first_attempt["attempts"] == 1
    assert (resumed["train_attempts"], uninterrupted["train_attempts"]) == (2, 1)
    assert resumed["train_runtime"] > first_attempt["seconds"] > 0


# --- scripts/experiment.py: what a re-run after a crash does with each run folder ---------------------------


def fake_checkpoint(run_dir: Path, global_step: int, *, complete: bool = True) -> Path:
    """A checkpoint folder as the Trainer leaves it; without trainer_state.json when a kill cut the save short."""
    folder = run_dir / f"checkpoint-{global_step}"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"")
    if complete:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": global_step}))
    return folder


def test_experiment_skips_finished_runs_and_resumes_from_the_last_checkpoint(tmp_path):
    def planned(name: str) -> PlannedRun:
        return PlannedRun(name, "distill.py", tmp_path / name, ["--layers", "even"])

    finished = planned("finished")
    write_results(finished.output_dir, {"test_macro_f1": 0.5})
    assert finished.finished

    fresh = planned("fresh")
    assert not fresh.finished
    assert fresh.command_args() == ["--layers", "even", "--output_dir", str(fresh.output_dir)]

    interrupted = planned("interrupted")
    for global_step in (2, 10, 4):  # numeric order, not name or creation order: 10 is the last
        fake_checkpoint(interrupted.output_dir, global_step)
    assert not interrupted.finished
    assert interrupted.command_args()[-2:] == [
        "--resume_from_checkpoint",
        str(interrupted.output_dir / "checkpoint-10"),
    ]


@pytest.mark.slow
def test_a_killed_experiment_skips_finished_runs_and_resumes_the_interrupted_one(
    csv_data, tmp_path, tokenizer
):
    """The experiment through `accelerate launch` with accelerate_config.yaml (its --launcher):
    killed with its running child once the student has a checkpoint, then run again."""
    base = tmp_path / "base"
    BertModel(tiny_config()).save_pretrained(base)  # a bare pretrained encoder, as from the Hub
    tokenizer.save_pretrained(base)
    root = tmp_path / "outputs"
    command = [
        sys.executable, str(ROOT / "scripts" / "experiment.py"), "--launcher", ACCELERATE,
        "--model_name_or_path", str(base), "--dataset", str(csv_data), "--output_root", str(root),
        "--seeds", "1", "--strategies", "even", "--lora_layers", "even", "--no_baseline", "--class_names", *LABELS,
        "--max_steps", "4", "--learning_rate", "1e-3", "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "8", "--max_train_samples", "24", "--max_eval_samples", "8",
        "--max_test_samples", "8", "--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps",
        "--save_steps", "2", "--report_to", "none", "--disable_tqdm", "true", "--log_level", "info",
    ]  # fmt: skip
    # Killed, with its running child, once the student (the second of three runs) has a checkpoint. (The
    # baseline, which trains no network, is left out: test_baseline.py runs it.)
    student = root / "student-even" / "seed-1"
    checkpoint = kill_at_first_checkpoint(command, student, 4, tmp_path / "killed.log")
    assert checkpoint is not None, "the student finished before it could be killed\n" + log_tail(
        tmp_path / "killed.log"
    )
    assert (root / "teacher" / "results.json").exists() and not (student / "results.json").exists()
    teacher_results = (root / "teacher" / "results.json").read_text()

    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "[1/3] teacher: done already" in output
    assert (root / "teacher" / "results.json").read_text() == teacher_results  # not trained again
    assert re.search(
        rf"Resuming training from checkpoint with epoch \d+ and global step {step(checkpoint)}\b", output
    )
    # accelerate_config.yaml asks for bf16: each run heard it from the launcher, and trained in it where
    # the hardware runs it fast (on a CPU: bf16 units), or said in one line that it fell back to fp32.
    precision = "bf16" if runs_fast("bf16") else "fp32"
    fallback = "bf16 was asked for, but there is no CUDA device"
    killed = (tmp_path / "killed.log").read_text()
    assert killed.count(fallback) == (0 if precision == "bf16" else 2), killed[-4000:]  # teacher, student
    assert output.count(fallback) == (0 if precision == "bf16" else 2), output[-4000:]  # student, LoRA
    for run_dir in (root / "teacher", student, root / "lora-even" / "seed-1"):
        results = json.loads((run_dir / "results.json").read_text())
        assert results["precision"] == precision and results["world_size"] == 1
        assert max(entry["step"] for entry in results["log_history"]) == 4
    assert json.loads((student / "results.json").read_text())["train_attempts"] == 2
    assert (root / "report" / "results.md").exists()


def test_experiment_does_not_resume_from_a_checkpoint_cut_short(tmp_path):
    run = PlannedRun("interrupted", "distill.py", tmp_path / "run", [])
    fake_checkpoint(run.output_dir, 2)
    fake_checkpoint(run.output_dir, 4, complete=False)
    assert run.command_args()[-1] == str(run.output_dir / "checkpoint-2")


# --- unfinished run folders: compare and the app skip them with a warning ------------------------------------


def test_compare_and_the_app_skip_an_unfinished_run(tmp_path, caplog):
    root = tmp_path / "outputs"
    finished = save_run(root / "teacher")
    write_results(
        finished,
        {"method": "teacher", "layers": None, "seed": 42, "test_split_hash": "abc", "label_names": LABELS,
         "test_accuracy": 0.9, "test_macro_f1": 0.7, "num_parameters": 1000, "trainable_parameters": 1000,
         "test_confusion_matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "log_history": [{"loss": 1.0, "step": 1}]},
    )  # fmt: skip
    # What a run killed during its final save leaves: the model at the root, its checkpoints, and the
    # temporary file of a results.json write that never got renamed into place.
    unfinished = save_run(root / "student-even" / "seed-1", seed=1)
    save_run(unfinished / "checkpoint-2", seed=1)
    (unfinished / ".results.json.x1y2.tmp").write_text('{"test_macro_f1": 0.9')

    with caplog.at_level("WARNING"):
        runs = load_runs(root)
    assert [run["run_dir"] for run in runs] == [str(finished)]
    assert f"Skipping {unfinished}" in caplog.text and "unfinished run" in caplog.text
    assert "checkpoint-2" not in caplog.text  # checkpoints are part of a run, not runs to warn about
    assert build_report(root).summary.index.tolist() == ["Teacher"]

    caplog.clear()
    with caplog.at_level("WARNING"):
        registry = load_registry(AppConfig(runs=root))
    assert registry.names == ["teacher · seed 42"]
    assert str(unfinished) in caplog.text
