"""Shared fixtures: tiny random 12-layer teachers with the real bert-base-uncased tokenizer, small data."""

from __future__ import annotations

import os

# Tests never reach the network: fail fast instead of retrying against the unreachable Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

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
    path = tmp_path / "data.jsonl"
    frame = toxic_rows()[["tweet", "class"]].rename(columns={"tweet": "text", "class": "label"})
    frame["label"] = frame["label"].map(dict(enumerate(LABELS)))
    frame.to_json(path, orient="records", lines=True)
    return path


TINY_RUN = [
    "--max_steps", "1", "--learning_rate", "0", "--weight_decay", "0",
    "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
    "--max_train_samples", "24", "--max_eval_samples", "8", "--max_test_samples", "8",
    "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true",
]  # fmt: skip


def run_script(name: str, *args: str | os.PathLike) -> None:
    """Run scripts/<name>.py in this process, as `python scripts/<name>.py ARGS` would."""
    argv = sys.argv
    sys.argv = [str(ROOT / "scripts" / f"{name}.py"), *map(str, args)]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    finally:
        sys.argv = argv
