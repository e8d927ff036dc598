"""scripts/predict.py: label every row of a file, in order, as the app would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from conftest import LABELS, ROOT, STATUSES, TEXTS, run_script, tiny_config
from transformers import BertForSequenceClassification

from app.inference import Classifier

PROBS = [f"pred_prob_{label}" for label in LABELS]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """A tiny random classifier whose labels differ between these texts (with the default
    initialisation every text gets the same label, and a wrong label could not show)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sharp-model")
    BertForSequenceClassification(tiny_config(layers=2, initializer_range=0.5)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def app_labels(model_dir: Path) -> list[str]:
    classifier = Classifier.load("sharp", str(model_dir))
    return [
        p["label"]
        for p in classifier.classify([t for t, s in zip(TEXTS, STATUSES, strict=True) if s == "ok"])
    ]


def predict(*args: Any) -> None:
    run_script("predict", *args)


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet", "txt"])
def test_every_row_is_written_in_order_with_the_apps_labels(
    suffix: str, model_dir: Path, inputs: dict[str, Path], app_labels: list[str], tmp_path: Path
) -> None:
    output = tmp_path / "labelled.csv"
    predict("--model", model_dir, "--input", inputs[suffix], "--output", output)
    written = pd.read_csv(output, dtype={"id": str, "tweet": str, "text": str}, keep_default_na=False)
    text_column = "text" if suffix == "txt" else "tweet"
    assert written[text_column].tolist() == TEXTS  # every row, in order, "NA" and "007" as they were
    if suffix != "txt":
        assert written["id"].tolist() == [f"row-{i}" for i in range(len(TEXTS))]
    assert written.columns.tolist()[-6:] == ["pred_label", "pred_toxic", *PROBS, "pred_status"]
    assert written["pred_status"].tolist() == STATUSES
    ok = written[written["pred_status"] == "ok"]
    assert ok["pred_label"].tolist() == app_labels
    assert len(set(app_labels)) > 1
    probabilities = ok[PROBS].astype(float)
    assert (probabilities.sum(axis=1) - 1).abs().max() < 1e-5
    assert ok["pred_toxic"].tolist() == [str(label != "neither") for label in app_labels]
    skipped = written[written["pred_status"] != "ok"]
    assert (skipped[["pred_label", "pred_toxic", *PROBS]] == "").all().all()  # empty cells


def test_non_text_values_are_kept_and_marked(model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "mixed.jsonl"
    rows = [{"text": "hello there"}, {"text": None}, {"text": 5}, {"text": ["a", "list"]}, {"other": 1}]
    source.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    output = tmp_path / "out.csv"
    predict("--model", model_dir, "--input", source, "--output", output)
    written = pd.read_csv(output, keep_default_na=False)
    assert written["pred_status"].tolist() == ["ok", "empty", "not_text", "not_text", "empty"]
    assert written["pred_label"].tolist()[0] in LABELS and written["pred_label"].tolist()[1:] == [""] * 4


def test_int8_labels_are_the_int8_apps(model_dir: Path, inputs: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "int8.csv"
    predict("--model", model_dir, "--input", inputs["txt"], "--output", output, "--quantize", "int8")
    written = pd.read_csv(output, keep_default_na=False)
    ok = [t for t, s in zip(TEXTS, STATUSES, strict=True) if s == "ok"]
    served = Classifier.load("sharp", str(model_dir), quantize="int8").classify(ok)
    assert written[written["pred_status"] == "ok"]["pred_label"].tolist() == [p["label"] for p in served]


def error_of(capsys: pytest.CaptureFixture[str], *args: Any, after_loading: bool = False) -> str:
    """The one line a mistake prints, after checking the exit status is 2. A mistake found only once
    the model is loaded (`after_loading`) follows the loading's progress bar."""
    capsys.readouterr()  # what earlier runs printed
    with pytest.raises(SystemExit) as exit_info:
        predict(*args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    if after_loading:  # (the bar is off once the app is imported: it turns progress bars off)
        err = err[err.rfind("error: ") :]
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_mistakes_get_one_line_and_exit_status_2(
    model_dir: Path, inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out.csv"
    missing = tmp_path / "missing.csv"
    assert f"Input file {missing} does not exist" in error_of(
        capsys, "--model", model_dir, "--input", missing, "--output", output
    )
    assert "has no column 'body' (--text_column); its columns are: ['id', 'tweet']" in error_of(
        capsys, "--model", model_dir, "--input", inputs["csv"], "--output", output, "--text_column", "body"
    )
    output.write_text("precious\n")
    assert f"{output} exists; pass --overwrite to replace it" in error_of(
        capsys, "--model", model_dir, "--input", inputs["csv"], "--output", output
    )
    assert output.read_text() == "precious\n"
    predict("--model", model_dir, "--input", inputs["csv"], "--output", output, "--overwrite")
    assert len(pd.read_csv(output)) == len(TEXTS)
    missing_model = tmp_path / "no-model"
    assert f"There is no model folder {missing_model} (--model)" in error_of(
        capsys, "--model", missing_model, "--input", inputs["csv"], "--output", tmp_path / "new.csv"
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("tweets.xlsx", "x", "use a .csv, .jsonl, .json, .parquet, .txt file"),
        ("empty.csv", "", "has no rows"),
        ("header.csv", "tweet\n", "has no rows"),
        ("nocolumn.csv", "body\nhello\n", "has no text column: looked for tweet, text, comment_text"),
        ("broken.jsonl", '{"text": "a"}\n{"text": \n', "line 2 is not JSON"),
        ("scalars.jsonl", '"just a string"\n', "line 1 is not a JSON object"),
        ("latin1.txt", b"caf\xe9\n", "is not UTF-8 text"),
    ],
)
def test_bad_input_files_are_refused_in_one_line(
    name: str,
    content: str | bytes,
    message: str,
    tmp_path: Path,
    model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / name
    if isinstance(content, bytes):
        source.write_bytes(content)
    else:
        source.write_text(content)
    assert message in error_of(
        capsys, "--model", model_dir, "--input", source, "--output", tmp_path / "o.csv"
    )


def test_other_refusals(
    model_dir: Path, inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "leave out --text_column" in error_of(
        capsys,
        "--model",
        model_dir,
        "--input",
        inputs["txt"],
        "--output",
        tmp_path / "o.csv",
        "--text_column",
        "x",
    )
    assert "name a .csv file" in error_of(
        capsys, "--model", model_dir, "--input", inputs["csv"], "--output", tmp_path / "o.parquet"
    )
    assert "is the input file" in error_of(
        capsys, "--model", model_dir, "--input", inputs["csv"], "--output", inputs["csv"], "--overwrite"
    )
    earlier = tmp_path / "earlier.csv"
    predict("--model", model_dir, "--input", inputs["csv"], "--output", earlier)
    assert "already has the column(s) pred_label, pred_toxic" in error_of(
        capsys,
        "--model",
        model_dir,
        "--input",
        earlier,
        "--output",
        tmp_path / "again.csv",
        after_loading=True,
    )


@pytest.mark.slow
def test_the_command_runs_and_fails_as_a_user_sees_it(
    model_dir: Path, inputs: dict[str, Path], tmp_path: Path
) -> None:
    output = tmp_path / "out.csv"
    command = [sys.executable, "scripts/predict.py", "--model", str(model_dir), "--input", str(inputs["txt"])]
    done = subprocess.run(
        [*command, "--output", str(output)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert f"Wrote {len(TEXTS)} rows to {output}: 8 labelled, 2 empty." in done.stdout
    assert "Classifying" in done.stderr  # tqdm's progress bar
    again = subprocess.run(
        [*command, "--output", str(output)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 2
    assert again.stderr == f"error: {output} exists; pass --overwrite to replace it.\n"
