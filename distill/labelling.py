"""Label a file of texts: read a CSV, JSONL/JSON, Parquet or plain-text file as it is stored, and put a
classifier's predictions beside every row, in the input's order, keeping the rows it cannot classify."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from distill.data import TEXT_COLUMNS
from distill.errors import UserError

INPUT_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet", ".txt")
TXT_COLUMN = "text"  # the one column of a plain-text file, one text per line
PREFIX = "pred_"  # of every column added, so none replaces a column of the input (a gold `label`)


def read_texts(path: Path, text_column: str | None = None) -> tuple[pd.DataFrame, str]:
    """Every row of `path` and the name of the column holding the texts (`text_column`, or else the
    first of tweet, text, comment_text). Values are kept as stored: a CSV's cells are read as strings,
    so a text such as "NA" or "007" stays that text, and an empty cell is an empty string.

    Raises UserError for a missing, unreadable or empty file, or a missing column.
    """
    suffix = path.suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise UserError(f"Cannot read {path}: use a {', '.join(INPUT_SUFFIXES)} file.")
    if path.is_dir():
        raise UserError(f"{path} is a folder; pass a file of texts.")
    if not path.is_file():
        raise UserError(f"Input file {path} does not exist.")
    if suffix == ".txt" and text_column is not None:
        raise UserError(f"{path} is plain text, one text per line, with no columns: leave out --text_column.")
    try:
        table = _READERS[suffix](path)
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text (byte {err.start}).") from err
    except (ValueError, OSError) as err:  # pandas' parser errors and pyarrow's are ValueErrors or OSErrors
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"Cannot read {path} as {suffix} data: {first}") from err
    if table.empty:
        raise UserError(f"{path} has no rows.")
    table.columns = [str(c) for c in table.columns]
    return table, _text_column(table, text_column, path)


def _text_column(table: pd.DataFrame, given: str | None, path: Path) -> str:
    columns = list(table.columns)
    if given is not None:
        if given not in columns:
            raise UserError(f"{path} has no column {given!r} (--text_column); its columns are: {columns}.")
        return given
    found = next((name for name in TEXT_COLUMNS if name in columns), None)
    if found is None:
        raise UserError(
            f"{path} has no text column: looked for {', '.join(TEXT_COLUMNS)}; its columns are: {columns}. "
            "Name it with --text_column."
        )
    return found


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:  # no header at all
        return pd.DataFrame()


def _read_json(path: Path) -> pd.DataFrame:
    # A .json file is one array of records or JSON Lines; .jsonl is JSON Lines. Parsed with json rather
    # than pandas, which would turn "123" into a number and guess dates.
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        records = json.loads(text)
        where = [f"item {i}" for i in range(len(records))]
    else:
        numbered = [(i, line) for i, line in enumerate(text.split("\n"), start=1) if line.strip()]
        records, where = [], []
        for number, line in numbered:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"line {number} is not JSON ({err.msg})") from err
            where.append(f"line {number}")
    for record, place in zip(records, where, strict=True):
        if not isinstance(record, dict):
            raise ValueError(f'{place} is not a JSON object, such as {{"text": "..."}}')
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def _read_txt(path: Path) -> pd.DataFrame:
    # Split on newlines only: str.splitlines would also split a text at U+2028 or a form feed.
    text = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":  # the file's final newline ends the last line; it starts none
        lines.pop()
    return pd.DataFrame({TXT_COLUMN: lines})


_READERS = {
    ".csv": _read_csv,
    ".jsonl": _read_json,
    ".json": _read_json,
    ".parquet": pd.read_parquet,
    ".txt": _read_txt,
}


def prediction_columns(labels: Sequence[str]) -> list[str]:
    """The columns `with_predictions` adds, in order."""
    return [
        f"{PREFIX}label",
        f"{PREFIX}toxic",
        *(f"{PREFIX}prob_{label}" for label in labels),
        f"{PREFIX}status",
    ]


def refuse_clashes(columns: Sequence[object], labels: Sequence[str], source: object) -> None:
    """Raise UserError if `columns` (of `source`) hold a column that the predictions would replace."""
    clash = [name for name in prediction_columns(labels) if name in list(columns)]
    if clash:
        raise UserError(
            f"{source} already has the column(s) {', '.join(clash)}, which the predictions would replace "
            "(is it an earlier output?): rename or drop them."
        )


def with_predictions(
    table: pd.DataFrame,
    statuses: Sequence[str],
    probabilities: np.ndarray,
    labels: Sequence[str],
    non_toxic_label: str,
) -> pd.DataFrame:
    """`table` with the prediction columns added: the predicted label, whether it is toxic (any class
    but `non_toxic_label`), one probability per class, and the row's status (`text_status`).
    `probabilities` has one row per "ok" row of `table`, in order; the other rows are kept, with empty
    predictions. Raises UserError if `table` already has one of those columns."""
    refuse_clashes(table.columns, labels, "The input")
    ok = np.array([status == "ok" for status in statuses], dtype=bool)
    if int(ok.sum()) != len(probabilities):
        raise ValueError(f"{len(probabilities)} rows of probabilities for {int(ok.sum())} texts")
    top = probabilities.argmax(axis=1) if len(probabilities) else np.empty(0, dtype=int)
    predicted = [labels[i] for i in top]
    columns: dict[str, pd.Series] = {
        f"{PREFIX}label": _spread(predicted, ok, object),
        f"{PREFIX}toxic": _spread([label != non_toxic_label for label in predicted], ok, object),
    }
    for i, label in enumerate(labels):
        columns[f"{PREFIX}prob_{label}"] = _spread(probabilities[:, i].tolist(), ok, float)
    columns[f"{PREFIX}status"] = pd.Series(list(statuses), dtype=object)
    added_frame = pd.DataFrame(columns)
    added_frame.index = table.index
    return pd.concat([table, added_frame], axis=1)


def _spread(values: Sequence[object], ok: np.ndarray, dtype: type) -> pd.Series:
    """`values` at the rows where `ok`, and missing (an empty CSV cell) elsewhere."""
    column: np.ndarray = np.full(len(ok), None if dtype is object else np.nan, dtype=dtype)
    column[ok] = values
    return pd.Series(column, dtype=dtype)


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """Write `table` to `path` as CSV, all at once: a file half-written by a crash never replaces it.
    A text with lone surrogates (possible in JSON) is written with them escaped (\\udc80)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    table.to_csv(partial, index=False, encoding="utf-8", errors="backslashreplace")
    partial.replace(path)
