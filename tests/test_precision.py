"""distill.precision: a run trains in bf16 or fp16 only where the hardware runs it fast, falls back to
fp32 in one line where it does not, and records what ran.

That `accelerate launch --config_file accelerate_config.yaml` (which asks for bf16) trains in bf16 only
on a CPU with bf16 units is checked on the runs of test_resume.py's experiment through that launcher.
"""

from __future__ import annotations

import pytest
import torch
from conftest import train_run

import distill.precision
from distill.precision import precision_name, runs_fast, why_not_fast

cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU's precision")


@cpu_only
def test_on_a_cpu_only_bf16_units_run_a_reduced_precision_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    assert why_not_fast("fp32") is None and runs_fast("fp32")
    monkeypatch.setattr(distill.precision, "cpu_has_bf16", lambda: True)
    assert runs_fast("bf16") and not runs_fast("fp16")
    assert why_not_fast("fp16") == "there is no CUDA device, and a CPU does not train fast in fp16"
    monkeypatch.setattr(distill.precision, "cpu_has_bf16", lambda: False)
    assert (
        why_not_fast("bf16") == "there is no CUDA device, and this CPU has no bf16 units (AVX512-BF16 or AMX)"
    )


def test_a_run_records_the_precision_by_name() -> None:
    assert [precision_name(p) for p in ("bf16", "fp16", "no", None, "fp8")] == [
        "bf16", "fp16", "fp32", "fp32", "fp32"
    ]  # fmt: skip


@pytest.mark.slow
@cpu_only
def test_bf16_trains_in_bf16_on_a_cpu_with_bf16_units(
    trained, teacher_dir, shared_csv, tmp_path, monkeypatch
):
    monkeypatch.setattr(distill.precision, "cpu_has_bf16", lambda: True)
    full = trained("distill", "--seed", "7", "--layers", "even").results  # shared with test_training.py
    reduced = train_run(
        "distill", teacher_dir, shared_csv, tmp_path / "bf16", "--seed", "7", "--layers", "even", "--bf16"
    )
    assert reduced["precision"] == "bf16" and full["precision"] == "fp32"
    # Same seed and data: only bf16 arithmetic can change the first step's loss.
    assert reduced["log_history"][0]["loss"] != full["log_history"][0]["loss"]


@pytest.mark.slow
@cpu_only
@pytest.mark.parametrize(
    ("flag", "bf16_units", "reason"),
    [
        ("--bf16", False, "this CPU has no bf16 units (AVX512-BF16 or AMX)"),
        ("--fp16", True, "a CPU does not train fast in fp16"),
    ],
)
def test_reduced_precision_falls_back_to_fp32_where_the_cpu_cannot_run_it(
    flag, bf16_units, reason, teacher_dir, csv_data, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(distill.precision, "cpu_has_bf16", lambda: bf16_units)
    results = train_run("distill", teacher_dir, csv_data, tmp_path / "student", flag)
    assert results["precision"] == "fp32"
    assert (
        f"{flag[2:]} was asked for, but there is no CUDA device, and {reason}: training in fp32"
        in caplog.text
    )
