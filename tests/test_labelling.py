"""distill.labelling: a file of texts read as stored, and predictions put beside its rows in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import LABELS, TEXTS

from distill.errors import UserError
from distill.labelling import prediction_columns, read_texts, with_predictions, write_csv


def test_read_texts_keeps_values_as_stored(inputs: dict[str, Path]) -> None:
    table, column = read_texts(inputs["csv"])
    assert column == "tweet" and table[column].tolist() == TEXTS
    table, column = read_texts(inputs["jsonl"], "tweet")
    assert table[column].tolist() == TEXTS
    with pytest.raises(UserError, match="has no column 'id2'"):
        read_texts(inputs["parquet"], "id2")


def test_with_predictions_refuses_a_count_mismatch() -> None:
    table = pd.DataFrame({"text": ["a", "", "b"]})
    with pytest.raises(ValueError, match="1 rows of probabilities for 2 texts"):
        with_predictions(table, ["ok", "empty", "ok"], torch.ones(1, 3).numpy() / 3, LABELS, "neither")


def test_predictions_go_beside_the_rows_they_belong_to() -> None:
    table = pd.DataFrame({"id": ["a", "b", "c", "d"], "text": ["you vermin", "", "lovely", None]})
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])  # for rows a and c
    out = with_predictions(table, ["ok", "empty", "ok", "empty"], probabilities, LABELS, "neither")
    assert out.columns.tolist() == ["id", "text", *prediction_columns(LABELS)]
    assert out["id"].tolist() == ["a", "b", "c", "d"]  # every row, in order
    assert out["pred_label"].tolist() == ["hate_speech", None, "neither", None]
    assert out["pred_toxic"].tolist() == [True, None, False, None]
    assert out["pred_prob_neither"].tolist()[::2] == [0.1, 0.8]
    assert out["pred_prob_neither"].isna().tolist() == [False, True, False, True]
    assert out["pred_status"].tolist() == ["ok", "empty", "ok", "empty"]
    with pytest.raises(UserError, match="already has the column"):
        with_predictions(out, ["ok"] * 4, np.ones((4, 3)) / 3, LABELS, "neither")


def test_a_text_file_is_one_text_per_line_and_a_csv_round_trips(tmp_path: Path) -> None:
    source = tmp_path / "texts.txt"
    source.write_text("first\u2028still the first\r\n\nthird\n", encoding="utf-8")
    table, column = read_texts(source)
    assert column == "text" and table[column].tolist() == ["first\u2028still the first", "", "third"]
    output = tmp_path / "out" / "labelled.csv"
    write_csv(table, output)
    assert read_texts(output)[0][column].tolist() == table[column].tolist()
    assert [p.name for p in output.parent.iterdir()] == ["labelled.csv"]  # no partial file left
