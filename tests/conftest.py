"""Shared fixtures: tiny random 12-layer teachers with the real bert-base-uncased tokenizer, small data,
runs of the scripts that several tests read (made once per session), and the web app imported once."""

from __future__ import annotations

import os

# Tests never reach the network: fail fast instead of retrying against the unreachable Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One CPU thread per process, here and in the scripts and servers the tests start (they inherit it):
# the models are tiny, and on a small machine whose other core is busy, a second thread that has to
# wait for it makes every forward pass several times slower instead of faster.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import importlib
import json
import logging
import runpy
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BertModel,
)

from distill.layers import find_layer_list
from distill.results import write_results

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TOKENIZER = SHARED / "assets" / "bert-base-uncased-tokenizer"
LABELS = ["hate_speech", "offensive_language", "neither"]


def tiny_config(cls=BertConfig, layers: int = 12, **extra):  # type: ignore[no-untyped-def]
    """A random model config small enough to train in a blink (hidden size 32)."""
    options = {
        "vocab_size": 30522,
        "hidden_size": 32,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "intermediate_size": 37,
        "max_position_embeddings": 128,
        "num_labels": 3,
        "id2label": dict(enumerate(LABELS)),
        "label2id": {n: i for i, n in enumerate(LABELS)},
    }
    return cls(**{**options, **extra})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first (in file order), quick ones last: with one worker per core (pytest-xdist), the
    quick tests then fill the end, and no core waits while the other finishes a minute-long run."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def tokenizer():  # type: ignore[no-untyped-def]
    return AutoTokenizer.from_pretrained(TOKENIZER)


@pytest.fixture(scope="session")
def teacher_dir(tmp_path_factory, tokenizer) -> Path:  # type: ignore[no-untyped-def]
    """A saved tiny 12-layer BERT classifier, standing in for a fine-tuned teacher."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("teacher")
    BertForSequenceClassification(tiny_config()).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def toxic_rows(n: int = 60) -> pd.DataFrame:
    """Small three-class data with every class present, shaped like the Davidson corpus: integer classes,
    named by the annotators' vote columns."""
    words = {
        0: "you people are vermin and should go",
        1: "this is damn stupid lol",
        2: "lovely weather at the beach",
    }
    rows = [
        {
            "tweet": f"{words[i % 3]} number {i}",
            "class": i % 3,
            **{name: 3 * (i % 3 == c) for c, name in enumerate(LABELS)},
        }
        for i in range(n)
    ]
    return pd.DataFrame(rows)


@pytest.fixture
def csv_data(tmp_path) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / "data.csv"
    toxic_rows().to_csv(path, index=False)
    return path


@pytest.fixture
def jsonl_data(tmp_path) -> Path:  # type: ignore[no-untyped-def]
    """text/label columns with string labels, as a user's own JSONL file would have."""
    return write_jsonl(tmp_path / "data.jsonl")


def write_jsonl(path: Path) -> Path:
    """toxic_rows() as text/label columns with string labels."""
    frame = toxic_rows()[["tweet", "class"]].rename(columns={"tweet": "text", "class": "label"})
    frame["label"] = frame["label"].map(dict(enumerate(LABELS)))
    frame.to_json(path, orient="records", lines=True)
    return path


# What the tests' subprocesses run with: one thread each (reproducible CPU kernels, and fair to the other
# jobs on a small machine), and never the network.
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
# The launcher accelerate_config.yaml is used with (it asks for bf16), as experiment.py's --launcher.
ACCELERATE = (
    f"{sys.executable} -m accelerate.commands.launch --quiet --config_file {ROOT / 'accelerate_config.yaml'}"
)


# --- files of texts to label (test_labelling.py, test_predict_script.py) -----------------------------

# Texts as people write them, and values that are no text at all (None: a missing value).
TEXTS = [
    "you people are vermin and should go",
    "lovely weather at the beach",
    "",
    "NA",  # pandas would read it as a missing value
    "007",  # and this as the number 7
    "this is damn stupid lol " * 3,
    "   ",
    "<b>hi</b> 😡 & you",
    'a comma, and "quotes"',
    "null",
]
STATUSES = ["ok", "ok", "empty", "ok", "ok", "ok", "empty", "ok", "ok", "ok"]


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same rows as CSV, JSONL, Parquet and plain text, with an id column where there are columns."""
    root = tmp_path_factory.mktemp("inputs")
    frame = pd.DataFrame({"id": [f"row-{i}" for i in range(len(TEXTS))], "tweet": TEXTS})
    paths = {suffix: root / f"tweets.{suffix}" for suffix in ("csv", "jsonl", "parquet", "txt")}
    frame.to_csv(paths["csv"], index=False)
    frame.to_json(paths["jsonl"], orient="records", lines=True, force_ascii=False)
    frame.to_parquet(paths["parquet"], index=False)
    paths["txt"].write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    return paths


# --- runs of the scripts ----------------------------------------------------------------------------

# One step at learning rate 0: a run that leaves the student as it started, for tests of what a script
# saves and records rather than of training.
TINY_RUN = [
    "--max_steps", "1", "--learning_rate", "0", "--weight_decay", "0",
    "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
    "--max_train_samples", "24", "--max_eval_samples", "8", "--max_test_samples", "8",
    "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true",
]  # fmt: skip


# A few real optimizer steps: a run with these flags moves the weights.
TRAIN = [
    "--max_steps", "3", "--learning_rate", "1e-3", "--per_device_train_batch_size", "4",
    "--per_device_eval_batch_size", "8", "--max_train_samples", "24", "--max_eval_samples", "8",
    "--max_test_samples", "8", "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true",
    "--logging_steps", "1",
]  # fmt: skip


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Two state dicts with the same names and exactly equal tensors."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def assert_student_is_teacher_layers(student_dir: Path, teacher_dir: Path, layers: list[int]) -> None:
    """The student saved in `student_dir` is the teacher's `layers` (numbered from 1) and its head, exactly."""
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir)
    student = AutoModelForSequenceClassification.from_pretrained(student_dir)
    _, t_layers = find_layer_list(teacher)
    _, s_layers = find_layer_list(student, len(layers))
    assert len(s_layers) == len(layers)
    for i, layer in enumerate(layers):
        for (name, a), (_, b) in zip(
            s_layers[i].state_dict().items(), t_layers[layer - 1].state_dict().items(), strict=True
        ):
            assert torch.equal(a, b), (layer, name)
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)


# What multiprocessing's resource tracker prints at exit for a worker's leftovers.
LEAK = "leaked semaphore"


def run_in_interpreter(*argv: object) -> subprocess.CompletedProcess[str]:
    """`python ARGV` in a new interpreter, whose stderr includes what the resource tracker says at exit."""
    env = {**ENV, "PYTHONPATH": str(ROOT)}  # for a script outside the project that imports distill
    return subprocess.run(
        [sys.executable, *map(str, argv)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )


def run_script(name: str, *args: str | os.PathLike) -> None:
    """Run scripts/<name>.py in this process, as `python scripts/<name>.py ARGS` would."""
    argv = sys.argv
    sys.argv = [str(ROOT / "scripts" / f"{name}.py"), *map(str, args)]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    finally:
        sys.argv = argv


def train_run(script: str, source: Path, data: Path, out: Path, *extra: str | os.PathLike) -> dict:
    """Train with `script` (train_teacher, distill or lora) from `source` for TRAIN's few steps, and
    return its results.json."""
    model_flag = "--model_name_or_path" if script == "train_teacher" else "--teacher"
    run_script(script, model_flag, source, "--dataset", data, "--class_names", *LABELS, "--output_dir", out,
               *TRAIN, *extra)  # fmt: skip
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="session")
def shared_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """csv_data's rows in one file for the whole session: the data of the runs that tests share."""
    path = tmp_path_factory.mktemp("shared-data") / "data.csv"
    toxic_rows().to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def bare_encoder(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """A pretrained encoder without a classification head, as from the Hub: train_teacher.py draws one."""
    path = tmp_path_factory.mktemp("bare")
    torch.manual_seed(0)
    BertModel(tiny_config()).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@dataclass
class SharedRun:
    """A finished run of a script: its folder, its results.json, and what distill's loggers said
    (logger name, message)."""

    folder: Path
    results: dict[str, Any]
    log: list[tuple[str, str]]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.name, record.getMessage()))


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., SharedRun]:
    """`shared_runs(script, *flags)`: scripts/<script>.py run with `flags` and an --output_dir of its own,
    once per session for each distinct command line, however many tests ask for it. The tests that
    share a run check different things about it; none writes into its folder (copy it to change it)."""
    root = tmp_path_factory.mktemp("shared-runs")
    done: dict[tuple[str, ...], SharedRun] = {}

    def shared(script: str, *flags: str | os.PathLike) -> SharedRun:
        key = (script, *map(str, flags))
        if key not in done:
            out = root / f"{script}-{len(done)}"
            records = _Records()
            logger = logging.getLogger("distill")
            logger.addHandler(records)
            try:
                run_script(script, *flags, "--output_dir", out)
            finally:
                logger.removeHandler(records)
            done[key] = SharedRun(out, json.loads((out / "results.json").read_text()), records.messages)
        return done[key]

    return shared


@pytest.fixture(scope="session")
def tiny_student(shared_runs, teacher_dir, shared_csv) -> Callable[[str], SharedRun]:  # type: ignore[no-untyped-def]
    """`tiny_student(layers)`: the shared run of distill.py from teacher_dir on shared_csv with TINY_RUN's
    one step at learning rate 0, starting from the teacher's `layers`."""

    def run(layers: str) -> SharedRun:
        return shared_runs(
            "distill", "--teacher", teacher_dir, "--dataset", shared_csv, "--layers", layers, *TINY_RUN
        )

    return run


@pytest.fixture(scope="session")
def trained(shared_runs, bare_encoder, teacher_dir, shared_csv) -> Callable[..., SharedRun]:  # type: ignore[no-untyped-def]
    """`trained(script, *extra)`: a shared run of train_teacher (from bare_encoder), distill or lora (from
    teacher_dir) on shared_csv with TRAIN's few real steps."""

    def run(script: str, *extra: str | os.PathLike) -> SharedRun:
        source = (
            ["--model_name_or_path", bare_encoder]
            if script == "train_teacher"
            else ["--teacher", teacher_dir]
        )
        return shared_runs(script, *source, "--dataset", shared_csv, "--class_names", *LABELS, *TRAIN, *extra)

    return run


@pytest.fixture(scope="session")
def chain(tmp_path_factory, bare_encoder, shared_csv) -> Path:  # type: ignore[no-untyped-def]
    """The whole chain a user runs, once for the session: a teacher from bare_encoder, an odd student
    on the CSV, an even student on the same rows as JSONL, a LoRA student, and compare.py's report, in
    one runs folder (read by test_pipeline.py and by the notebook in test_notebook.py)."""
    runs = tmp_path_factory.mktemp("chain")
    jsonl = write_jsonl(runs.parent / f"{runs.name}.jsonl")
    steps = ["--max_steps", "2", "--per_device_train_batch_size", "8", "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip
    csv = ["--dataset", shared_csv, "--class_names", *LABELS]
    run_script(
        "train_teacher", "--model_name_or_path", bare_encoder, *csv, "--output_dir", runs / "teacher", *steps
    )
    teacher = ["--teacher", runs / "teacher"]
    run_script("distill", *teacher, *csv, "--layers", "odd", "--output_dir", runs / "student-odd", *steps)
    # The same rows as JSONL with text/label columns and string labels: the same split, the same test set.
    run_script("distill", *teacher, "--dataset", jsonl, "--class_names", *LABELS, "--layers", "even",
               "--output_dir", runs / "student-even", *steps)  # fmt: skip
    run_script("lora", *teacher, *csv, "--layers", "even", "--output_dir", runs / "lora-even", *steps)
    run_script("compare", "--runs", runs, "--output_dir", runs / "report")
    return runs


def no_dropout_teacher(**extra: Any) -> BertForSequenceClassification:
    """A random 12-layer classifier without dropout, in eval mode."""
    torch.manual_seed(0)
    return BertForSequenceClassification(
        tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **extra)
    ).eval()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- finished runs as the app serves them, and the app itself (tests/test_app_*.py) ------------------


def tiny_model(seed: int = 0, **config: Any) -> BertForSequenceClassification:
    """A random 2-layer classifier in eval mode."""
    torch.manual_seed(seed)
    return BertForSequenceClassification(tiny_config(layers=2, **config)).eval()


def save_run(folder: Path, seed: int = 0, results: dict[str, Any] | None = None) -> Path:
    """A finished run as the scripts leave it: model, tokenizer and (unless None) results.json."""
    tiny_model(seed).save_pretrained(folder)
    AutoTokenizer.from_pretrained(TOKENIZER).save_pretrained(folder)
    if results is not None:
        write_results(folder, results)
    return folder


# The runs' names in the app, from their results.json.
TEACHER = "teacher · seed 42"
STUDENT = "student-even · seed 1"


def run_results(method: str, accuracy: float) -> dict[str, Any]:
    return {
        "method": method,
        "seed": 42 if method == "teacher" else 1,
        "arguments": {} if method == "teacher" else {"layers": "even"},
        "eval_macro_f1": accuracy - 0.1,
        "layers": None if method == "teacher" else [2, 4, 6, 8, 10, 12],
        "teacher": None if method == "teacher" else "outputs/teacher",
        "num_parameters": 1234,
        "test_accuracy": accuracy,
        "test_macro_f1": accuracy - 0.2,
        **{f"test_f1_{label}": 0.5 for label in LABELS},
        "log_history": [{"loss": 1.0}],
    }


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """outputs/ with two finished runs and one unfinished (model but no results.json)."""
    root = tmp_path_factory.mktemp("outputs")
    save_run(root / "teacher", 0, run_results("teacher", 0.9))
    save_run(root / "student-even", 1, run_results("distill", 0.8))
    save_run(root / "student-odd", 2, results=None)
    return root


@pytest.fixture(scope="session")
def web(runs: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app module, imported once: Dash registers pages and callbacks per process, not per app."""
    env = pytest.MonkeyPatch()
    env.setenv("TOXIC_RUNS", str(runs))
    env.setenv("TOXIC_MODELS", "")
    env.setenv("TOXIC_NON_TOXIC_LABEL", "")
    env.setenv("TOXIC_REPORT", str(tmp_path_factory.mktemp("no-report") / "report"))
    yield importlib.import_module("app.app")
    env.undo()


@pytest.fixture(scope="session")
def client(web: Any) -> Any:
    return web.server.test_client()


@pytest.fixture
def api(tokenizer):  # type: ignore[no-untyped-def]
    """A test client of the JSON API alone, on a fresh Flask server (app.app registers Dash once per process)."""
    from flask import Flask

    from app.api import register_api
    from app.inference import Classifier
    from app.registry import ModelRegistry

    server = Flask(__name__)
    register_api(server, ModelRegistry([Classifier("tiny", tiny_model(), tokenizer)], {}))
    return server.test_client()
