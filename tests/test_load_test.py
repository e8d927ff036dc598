"""tools/load_test.py: its benchmark and soak modes, their flags, and both run against gunicorn."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ENV, ROOT, save_run

from app.api import MAX_BODY_BYTES
from tools import load_test
from tools.gunicorn_harness import Answer


def memory(before: int = 1000, after: int = 1100, replaced: bool = False) -> load_test.Memory:
    return load_test.Memory(before, max(before, after), after, {1, 2}, {1, 3} if replaced else {1, 2})


def test_soak_schedule_mixes_good_and_bad_input():
    schedule = load_test.schedule()
    assert len(schedule) == 20
    expected = [case.expected for case in schedule]
    assert 0.4 <= expected.count(200) / len(expected) <= 0.6
    assert {400, 404, 413} <= set(expected)
    oversized = load_test.cases()["oversized body"].body
    assert oversized is not None and len(oversized) > MAX_BODY_BYTES


def test_soak_verdict_fails_on_5xx_wrong_answers_lost_requests_restarts_and_growth():
    verdict = load_test.verdict
    good = [Answer("tweet", "200", 0.1, 5.0), Answer("empty text", "400", 0.1, None)]
    assert verdict(good, memory(), unsent=0, max_growth=0.3) == []
    failures = {
        "server errors": verdict([*good, Answer("tweet", "500", 0.1, None)], memory(), 0, 0.3),
        "unexpected": verdict([*good, Answer("invalid UTF-8", "200", 0.1, 1.0)], memory(), 0, 0.3),
        "no answer": verdict([*good, Answer("tweet", "timeout", 60, None)], memory(), 0, 0.3),
        "not sent": verdict(good, memory(), 5, 0.3),
        "replaced": verdict(good, memory(replaced=True), 0, 0.3),
        "grew": verdict(good, memory(after=1400), 0, 0.3),
    }
    for what, found in failures.items():
        assert len(found) == 1, (what, found)


def test_benchmark_sends_every_10th_request_bad_and_spreads_the_rest_over_the_models():
    models = ["teacher", "student"]
    picks = [load_test.benchmark_request(models, 20, c, r) for c in range(5) for r in range(20)]
    labels = [label for _, label in picks]
    assert labels[9::10] == [load_test.BAD] * 10
    assert labels.count(load_test.BAD) == 10
    assert {label for label in labels if label != load_test.BAD} == set(models)
    for body, label in picks:
        if label != load_test.BAD:
            assert json.loads(body)["model"] == label  # answers are counted under the model asked


@pytest.mark.parametrize("argv", [["--help"], ["benchmark", "--help"], ["soak", "--help"]])
def test_load_test_help_explains_itself(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        load_test.parse_args(argv)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "gunicorn" in out and "tools/load_test.py" in out
    if argv[:1] == ["soak"]:
        assert "--max_memory_growth" in out and "--quantize" in out
    elif argv[:1] == ["benchmark"]:
        assert "--clients" in out and "--max_seconds" not in out
    else:
        assert "benchmark" in out and "soak" in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bench"],
        ["benchmark", "--clients", "0"],
        ["benchmark", "--requests", "many"],
        ["benchmark", "--client", "3"],  # an abbreviation: exact flag names only
        ["soak", "--timeout", "nan"],
        ["soak", "--max_memory_growth", "-1"],
        ["benchmark", "--max_seconds", "5"],  # a soak flag
    ],
)
def test_load_test_bad_flags_end_in_one_line_and_status_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        load_test.parse_args(argv)
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and captured.err.startswith("error: "), captured.err


def save_tiny_runs(outputs: Path) -> Path:
    for seed, name in enumerate(("teacher", "student-even")):
        save_run(outputs / name, seed, {"method": name.split("-")[0], "test_macro_f1": 0.5})
    return outputs


def run_load_test(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "tools/load_test.py", *argv, "--workers", "1", "--threads", "2"],
        cwd=ROOT, env={**ENV, "TOXIC_NON_TOXIC_LABEL": "", "TOXIC_REPORT": ""}, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_soak_mode_passes_against_tiny_models(tmp_path):
    runs = save_tiny_runs(tmp_path / "outputs")
    done = run_load_test(
        "soak", "--runs", str(runs), "--clients", "4", "--requests", "20", "--max_seconds", "300"
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "PASS" in done.stdout
    assert "80 of 80 requests" in done.stdout
    for status in ("200", "400", "404", "413"):
        assert f"\n{status}     " in done.stdout


@pytest.mark.slow
def test_benchmark_mode_reports_latency_per_model(tmp_path):
    runs = save_tiny_runs(tmp_path / "outputs")
    done = run_load_test("benchmark", "--runs", str(runs), "--clients", "4", "--requests", "10")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "40 requests (4 clients x 10)" in done.stdout
    table = done.stdout.partition("model p50 ms")[2].splitlines()[1:]
    models = done.stdout.partition("models: ")[2].splitlines()[0].split(", ")
    assert len(models) == 2
    assert sorted(line.split()[0] for line in table if line) == sorted(["(bad", *models])
    for line in table:
        if line and not line.startswith("(bad"):
            assert line.split()[1] == "18" and line.split()[2] == "200x18", line
