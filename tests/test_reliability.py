"""Reliability: killed runs resume to the same model, unfinished runs are skipped, splits never leak,
user input never becomes HTML, and the load-test tool (tools/load_test.py) works.

Atomic results.json writes and the app's input limits (413, batch size, invalid UTF-8, 127.0.0.1) are
tested in test_results.py and test_app.py; the tests here cover what those do not.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from conftest import LABELS, ROOT, SHARED, TINY_RUN, TOKENIZER, run_script, tiny_config
from flask import Flask
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertForSequenceClassification, BertModel

from app.api import MAX_BODY_BYTES, register_api
from app.config import AppConfig
from app.inference import Classifier
from app.registry import ModelRegistry, load_registry
from distill.data import load_splits, normalize_text
from distill.experiment import PlannedRun
from distill.report import build_report, load_runs
from distill.results import write_results
from tools import load_test
from tools.gunicorn_harness import Answer

# One thread per subprocess: reproducible CPU kernels, and fair to the other jobs on a small machine.
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
DAVIDSON = SHARED / "data" / "davidson" / "labeled_data.csv"


def save_tiny_model(folder: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    BertForSequenceClassification(tiny_config(layers=2)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(TOKENIZER).save_pretrained(folder)
    return folder


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
    logs = {name: tmp_path / f"{name}.log" for name in ("resumed", "uninterrupted")}
    runs = {  # two single-threaded processes: in parallel on two cores
        "resumed": run_to_end([*command, "--resume_from_checkpoint", str(checkpoint)], logs["resumed"]),
        "uninterrupted": run_to_end(distill_command(teacher_dir, csv_data, reference, max_steps), logs["uninterrupted"]),
    }  # fmt: skip
    for name, proc in runs.items():
        assert proc.wait(timeout=600) == 0, log_tail(logs[name])
    # The Trainer took the checkpoint's state: a run that silently started over would end equal too.
    resumed_from = rf"Resuming training from checkpoint with epoch \d+ and global step {step(checkpoint)}\b"
    assert re.search(resumed_from, logs["resumed"].read_text()), log_tail(logs["resumed"])

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
    base = tmp_path / "base"
    BertModel(tiny_config()).save_pretrained(base)  # a bare pretrained encoder, as from the Hub
    tokenizer.save_pretrained(base)
    root = tmp_path / "outputs"
    command = [
        sys.executable, str(ROOT / "scripts" / "experiment.py"), "--model_name_or_path", str(base),
        "--dataset", str(csv_data), "--output_root", str(root), "--seeds", "1", "--strategies", "even",
        "--lora_layers", "even", "--class_names", *LABELS, "--max_steps", "4", "--learning_rate", "1e-3",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8", "--max_train_samples", "24",
        "--max_eval_samples", "8", "--max_test_samples", "8", "--eval_strategy", "steps", "--eval_steps", "2",
        "--save_strategy", "steps", "--save_steps", "2", "--report_to", "none", "--disable_tqdm", "true",
        "--log_level", "info",
    ]  # fmt: skip
    # Killed, with its running child, once the student (the second of four runs) has a checkpoint.
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
    assert "[1/4] teacher: done already" in output
    assert (root / "teacher" / "results.json").read_text() == teacher_results  # not trained again
    assert re.search(
        rf"Resuming training from checkpoint with epoch \d+ and global step {step(checkpoint)}\b", output
    )
    for run_dir in (student, root / "lora-even" / "seed-1"):
        history = json.loads((run_dir / "results.json").read_text())["log_history"]
        assert max(entry["step"] for entry in history) == 4
    assert (root / "report" / "results.md").exists()
    assert (root / "baseline-tfidf" / "results.json").exists()


def test_experiment_does_not_resume_from_a_checkpoint_cut_short(tmp_path):
    run = PlannedRun("interrupted", "distill.py", tmp_path / "run", [])
    fake_checkpoint(run.output_dir, 2)
    fake_checkpoint(run.output_dir, 4, complete=False)
    assert run.command_args()[-1] == str(run.output_dir / "checkpoint-2")


# --- unfinished run folders: compare and the app skip them with a warning ------------------------------------


def test_compare_and_the_app_skip_an_unfinished_run(tmp_path, caplog):
    root = tmp_path / "outputs"
    finished = save_tiny_model(root / "teacher")
    write_results(
        finished,
        {"method": "teacher", "layers": None, "seed": 42, "test_split_hash": "abc", "label_names": LABELS,
         "test_accuracy": 0.9, "test_macro_f1": 0.7, "num_parameters": 1000, "trainable_parameters": 1000,
         "test_confusion_matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "log_history": [{"loss": 1.0, "step": 1}]},
    )  # fmt: skip
    # What a run killed during its final save leaves: the model at the root, its checkpoints, and the
    # temporary file of a results.json write that never got renamed into place.
    unfinished = save_tiny_model(root / "student-even" / "seed-1", seed=1)
    save_tiny_model(unfinished / "checkpoint-2", seed=1)
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


# --- the split keeps duplicates, retweets and their variants inside one split --------------------------------


def variants(text: str, n: int) -> list[str]:
    """The first `n` spellings of `text` that normalize_text must treat as one text."""
    return [
        text,
        f"RT @user_{n}: {text}",
        text.upper(),
        f"  {text.replace(' ', '   ')}\t\n",
        f"rt @a: RT @b_2: {text.title()}",  # a retweet of a retweet
        f"RT @someone {text}",  # no colon after the handle
        f'"@quoted: {text}" &#128514;',  # a quote retweet, with an emoji as an HTML entity
        f"&#8220;@user_{n}: {text.capitalize()}!&#8221; http://t.co/x{n}",  # curly quotes and a link
        f"@reply {text} &amp; https://t.co/y{n}",  # a reply, an escaped ampersand, another link
    ][:n]


def assert_no_text_in_two_splits(splits: Any) -> None:
    seen = {name: {normalize_text(t) for t in split["text"]} for name, split in splits.data.items()}
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        shared = seen[a] & seen[b]
        assert not shared, f"{len(shared)} texts in both {a} and {b}, e.g. {sorted(shared)[:3]}"


@pytest.mark.parametrize("split_seed", [0, 1, 2])
def test_duplicate_groups_of_every_size_stay_in_one_split(tmp_path, split_seed):
    rows = []
    for i in range(90):
        # Groups of 1 to 9 spellings; every 7th group's copies disagree on the label, as annotators do.
        for j, text in enumerate(variants(f"message number {i} about the game", 1 + i % 9)):
            rows.append((text, (i + (j if i % 7 == 0 else 0)) % 3))
    path = tmp_path / "variants.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)

    splits = load_splits(str(path), validation_size=0.2, test_size=0.2, split_seed=split_seed)
    assert_no_text_in_two_splits(splits)
    assert splits.num_duplicates == len(rows) - 90
    assert sum(len(split) for split in splits.data.values()) == len(rows)  # none lost, none copied


def test_the_davidson_split_shares_no_text_between_splits():
    raw = pd.read_csv(DAVIDSON)
    splits = load_splits(str(DAVIDSON))
    assert_no_text_in_two_splits(splits)
    expected = int(raw["tweet"].map(normalize_text).duplicated().sum())
    assert expected > 0  # the corpus has retweets and re-spellings, so the grouping is exercised
    assert splits.num_duplicates == expected
    assert sum(len(split) for split in splits.data.values()) == len(raw)


@pytest.mark.slow
def test_results_json_records_the_duplicates(teacher_dir, tmp_path):
    rows = [(text, i % 3) for i in range(30) for text in variants(f"comment {i} on the weather", 3)]
    data = tmp_path / "duplicates.csv"
    pd.DataFrame(rows, columns=["tweet", "class"]).to_csv(data, index=False)
    out = tmp_path / "student"
    run_script(
        "distill", "--teacher", teacher_dir, "--dataset", data, "--class_names", *LABELS, "--output_dir", out,
        *TINY_RUN,
    )  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert results["num_duplicates"] == 60
    assert results["split_sizes"] == {"train": 24, "validation": 8, "test": 8}  # TINY_RUN's subsamples


# --- user input is never rendered as HTML ---------------------------------------------------------------------

HOSTILE = ["<script>alert(1)</script>", '<img src=x onerror="alert(1)">', "<b>bold</b> &amp; [link](javascript:alert(1))"]  # fmt: skip

# Runs in a fresh process: Dash registers pages and callbacks once per process, and tests/test_app.py
# imports app.app with its own models. Posts to the endpoint the browser calls for the Classify
# button and prints what the callback answered.
DASH_PROBE = """
import json, sys
import app.app as web
client = web.server.test_client()
answers = []
for text, model in json.loads(sys.argv[1]):
    answer = client.post("/_dash-update-component", json={
        "output": "classify-result.children",
        "outputs": {"id": "classify-result", "property": "children"},
        "inputs": [{"id": "classify-submit", "property": "n_clicks", "value": 1},
                   {"id": "classify-text", "property": "n_submit", "value": None}],
        "changedPropIds": ["classify-submit.n_clicks"],
        "state": [{"id": "classify-text", "property": "value", "value": text},
                  {"id": "classify-model", "property": "value", "value": model},
                  {"id": "classify-explain", "property": "value", "value": True}],
    })
    answers.append([answer.status_code, answer.get_json()])
print(json.dumps(answers))
"""


def components(node: Any, path: str = "") -> list[tuple[str, str, Any]]:
    """(path, component type, props) of every Dash component in a JSON layout."""
    found = []
    if isinstance(node, dict):
        if "type" in node and isinstance(node.get("props"), dict):
            found.append((path, node["type"], node["props"]))
        for key, value in node.items():
            found += components(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += components(value, f"{path}[{i}]")
    return found


def strings(node: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """(path of keys, value) of every string in a JSON document; list positions are left out of paths."""
    if isinstance(node, str):
        return [(path, node)]
    if isinstance(node, list):
        return [found for value in node for found in strings(value, path)]
    if isinstance(node, dict):
        return [found for key, value in node.items() for found in strings(value, (*path, key))]
    return []


@pytest.mark.slow
def test_classify_page_shows_input_only_as_plain_text(tmp_path):
    model = save_tiny_model(tmp_path / "tiny")
    cases = [(text, "tiny") for text in HOSTILE] + [("hello", name) for name in HOSTILE]
    done = subprocess.run(
        [sys.executable, "-c", DASH_PROBE, json.dumps(cases)],
        cwd=ROOT,
        env={**ENV, "TOXIC_MODELS": str(model), "TOXIC_NON_TOXIC_LABEL": "", "TOXIC_REPORT": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    echoed = 0
    for (text, name), (status, body) in zip(cases, answers, strict=True):
        assert status == 200, body
        for path, kind, props in components(body):
            assert not props.get("dangerously_allow_html"), (path, kind)
            assert kind not in {"Markdown", "Iframe", "Script"}, (path, kind)
        hostile = text if text in HOSTILE else name
        for path, value in strings(body):
            if hostile in value:
                # A string child is a React text node: shown as typed, never parsed as markup.
                assert path[-2:] == ("props", "children"), path
                echoed += 1
    assert echoed >= len(HOSTILE)  # the unknown model's name is shown back, so the check above ran


@pytest.fixture
def api(tokenizer):  # type: ignore[no-untyped-def]
    """A test client of the JSON API alone, on a fresh Flask server (app.app registers Dash once per process)."""
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(layers=2)).eval()
    server = Flask(__name__)
    register_api(server, ModelRegistry([Classifier("tiny", model, tokenizer)], {}))
    return server.test_client()


def test_api_answers_are_json_never_html(api):
    for body, status in (
        ({"text": HOSTILE[0]}, 200),
        ({"texts": HOSTILE}, 200),
        ({"text": "hi", "model": HOSTILE[1]}, 404),
    ):
        answer = api.post("/api/classify", json=body)
        assert (answer.status_code, answer.mimetype) == (status, "application/json")
        if status == 200:
            assert "<" not in answer.get_data(as_text=True)  # the input is not echoed back at all
    assert api.get(f"/api/{HOSTILE[0]}").mimetype == "application/json"


def chunked_post(api, body: bytes):  # type: ignore[no-untyped-def]
    """POST `body` as gunicorn hands a chunked request to the app: no Content-Length, the stream ending
    where the body does (wsgi.input_terminated)."""
    return api.post(
        "/api/classify",
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )


def test_a_small_chunked_body_is_read_whole(api):
    assert chunked_post(api, json.dumps({"text": "I hate you"}).encode()).status_code == 200


def test_a_chunked_body_over_1_mb_is_413(api):
    answer = chunked_post(api, json.dumps({"text": "a" * (2 * 1024 * 1024)}).encode())
    assert (answer.status_code, answer.mimetype) == (413, "application/json")


# --- tools/load_test.py: the benchmark and soak modes ----------------------------------------------------------


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
        save_tiny_model(outputs / name, seed)
        write_results(outputs / name, {"method": name.split("-")[0], "test_macro_f1": 0.5})
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
