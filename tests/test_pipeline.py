"""The whole chain a user runs, on a tiny model: teacher -> odd (CSV) -> even (JSONL) -> LoRA -> report
(made once for the session by conftest.chain, whose runs the notebook test reads too)."""

import json

import pytest
from conftest import LABELS
from transformers import pipeline

pytestmark = pytest.mark.slow


def test_teacher_students_lora_and_report(chain):
    runs = chain
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
