"""The whole chain a user runs, on a tiny model: teacher -> odd (CSV) -> even (JSONL) -> LoRA -> report."""

import json

import pytest
from conftest import LABELS, run_script, tiny_config
from transformers import BertModel, pipeline

pytestmark = pytest.mark.slow

STEPS = [
    "--max_steps",
    "2",
    "--per_device_train_batch_size",
    "8",
    "--report_to",
    "none",
    "--disable_tqdm",
    "true",
]


def test_teacher_students_lora_and_report(tmp_path, csv_data, jsonl_data, tokenizer):
    base = tmp_path / "base"
    BertModel(tiny_config()).save_pretrained(base)
    tokenizer.save_pretrained(base)
    runs = tmp_path / "runs"
    csv = ["--dataset", csv_data, "--class_names", *LABELS]

    run_script("train_teacher", "--model_name_or_path", base, *csv, "--output_dir", runs / "teacher", *STEPS)
    teacher = ["--teacher", runs / "teacher"]
    run_script("distill", *teacher, *csv, "--layers", "odd", "--output_dir", runs / "student-odd", *STEPS)
    # The same rows as JSONL with text/label columns and string labels: the same split, the same test set.
    run_script("distill", *teacher, "--dataset", jsonl_data, "--class_names", *LABELS, "--layers", "even",
               "--output_dir", runs / "student-even", *STEPS)  # fmt: skip
    run_script("lora", *teacher, *csv, "--layers", "even", "--output_dir", runs / "lora-even", *STEPS)
    run_script("compare", "--runs", runs, "--output_dir", runs / "report")

    hashes = {
        json.loads((d / "results.json").read_text())["test_split_hash"]
        for d in runs.iterdir()
        if d.name != "report"
    }
    assert len(hashes) == 1
    report = (runs / "report" / "results.md").read_text()
    a7 = report.split("## A7")[1].split("## A6")[0]
    for row in ("Odd Layer", "Even Layer", "LoRA (even)", "Teacher"):
        line = next(line for line in a7.splitlines() if line.startswith(f"| {row} |"))
        assert "macro-F1 0." in line or "macro-F1 1." in line, line
    for run in ("teacher", "student-odd", "student-even", "lora-even"):
        prediction = pipeline("text-classification", model=str(runs / run))("I hate you")[0]
        assert prediction["label"] in LABELS, run
