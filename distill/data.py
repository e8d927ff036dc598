"""Data: load a Hub dataset or a local file, validate it, split it without leaks, tokenize it.

The split is seeded, stratified by label, and keeps texts that are the same under `normalize_text`
(the same words, whatever retweet marks, @handles, links, entities, punctuation and case) inside one
split, so that a retweet in the training data never gives away a test answer. Validation and test
splits that come with the data are kept whole; train loses the rows that repeat them. Every run given
the same data and `split_seed` sees the same split; `Splits.test_hash` proves it.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from datasets import ClassLabel, Dataset, DatasetDict
from sklearn.model_selection import train_test_split
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from distill.errors import UserError
from distill.offline import hub_unreachable_reason

logger = logging.getLogger(__name__)

TEXT_COLUMNS = ("tweet", "text", "comment_text")
LABEL_COLUMNS = ("class", "label", "labels")
# Local files are read with pandas, not `datasets.load_dataset("csv", data_files=...)`: every later step
# (cleaning, the stratified split) works on DataFrames, and load_dataset would add an Arrow cache
# under ~/.cache for each file and multi-line errors, for no shorter code.
FILE_READERS = {
    ".csv": lambda p: pd.read_csv(p),
    ".jsonl": lambda p: pd.read_json(p, lines=True),
    ".json": lambda p: _read_json(p),
    ".parquet": lambda p: pd.read_parquet(p),
}
# The Davidson corpus as a CSV has integer classes and no names; its vote columns carry them.
KNOWN_LABEL_NAMES = {
    ("hate_speech", "offensive_language", "neither"): ["hate_speech", "offensive_language", "neither"],
    ("hate_speech_count", "offensive_language_count", "neither_count"): [
        "hate_speech",
        "offensive_language",
        "neither",
    ],
}
SPLITS = ("train", "validation", "test")
HELD_OUT = ("validation", "test")
# Tokens per example, computed once at tokenization: the Trainer's length-grouped sampler reads it
# (`--length_column_name`), so it never has to walk the dataset to measure it.
LENGTH = "length"


@dataclass
class Splits:
    """Disjoint train/validation/test data (columns `text`, `label`) with what runs record about it."""

    data: DatasetDict
    label_names: list[str]
    test_hash: str
    num_duplicates: int
    # Rows dropped from each split because their text is in a held-out split: {"train": n, "validation":
    # 0, "test": 0}. Only train loses rows now; held-out splits keep their keys, at 0, so that records
    # read like those of earlier versions, which cut a given validation or test split instead.
    held_out_duplicates: dict[str, int] = field(default_factory=dict)
    # Rows of a given validation split whose text is also in the given test split (both kept whole).
    validation_also_in_test: int = 0

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def load_splits(
    dataset: str,
    *,
    train_file: str | None = None,
    validation_file: str | None = None,
    test_file: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    class_names: list[str] | None = None,
    validation_size: float = 0.1,
    test_size: float = 0.1,
    split_seed: int = 42,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    max_test_samples: int | None = None,
) -> Splits:
    """Load `dataset` (Hub id or local file), or `train_file`, and return seeded, leak-free splits.

    Splits that the data brings (a Hub dataset's, or `validation_file` and `test_file`) are used whole,
    shuffled by `split_seed`, and train loses its rows whose text is in one of them; the missing ones
    are then carved out of train, stratified. `Splits.held_out_duplicates` counts the rows train lost.
    """
    for name, size in (("--validation_size", validation_size), ("--test_size", test_size)):
        if not 0 < size < 1:
            raise UserError(f"{name} must be a fraction between 0 and 1, got {size}.")
    if validation_size + test_size >= 1:
        raise UserError("--validation_size plus --test_size must leave some data for training.")

    tables, hub_names, sources = read_splits(dataset, train_file, validation_file, test_file)
    source = train_file or dataset
    first = next(iter(tables.values()))
    text_col = _pick_column(first, text_column, TEXT_COLUMNS, "text", source)
    label_col = _pick_column(first, label_column, LABEL_COLUMNS, "label", source)
    names = class_names or hub_names or _known_label_names(first.columns)

    frames = {}
    for split, table in tables.items():
        if text_col not in table.columns or label_col not in table.columns:
            raise UserError(
                f"The {split} data ({sources[split]}) lacks column {text_col!r} or {label_col!r}; "
                f"its columns are: {[str(c) for c in table.columns]}."
            )
        frames[split] = _clean(
            table[[text_col, label_col]].set_axis(["text", "label"], axis=1), split, sources[split]
        )
    numeric = {split: pd.api.types.is_numeric_dtype(f["label"]) for split, f in frames.items()}
    if len(set(numeric.values())) > 1:
        kinds = ", ".join(
            f"{split} ({sources[split]}): {'numbers' if is_number else 'strings'}"
            for split, is_number in numeric.items()
        )
        raise UserError(
            f"The splits' labels are of different kinds ({kinds}): label every split the same way."
        )
    names = _label_names(pd.concat([f["label"] for f in frames.values()]), names, source)
    frames = {split: f.assign(label=_encode(f["label"], names)) for split, f in frames.items()}

    given = {split: frames[split] for split in HELD_OUT if split in frames}
    train, lost = _without_held_out_texts(_training_pool(frames), given)
    if train.empty:
        raise UserError(
            f"All {lost} rows of the training data ({sources.get('train', source)}) also occur in the "
            "given validation or test data: nothing is left to train on."
        )
    overlap = _validation_also_in_test(given)
    frames, num_duplicates = _split(train, given, validation_size, test_size, split_seed)
    limits = {"train": max_train_samples, "validation": max_eval_samples, "test": max_test_samples}
    frames = {s: f.head(limits[s]) if limits[s] is not None else f for s, f in frames.items()}
    for split, frame in frames.items():
        if frame.empty:
            raise UserError(
                f"The {split} split of {source} is empty: use more data or a larger --{split}_size."
            )

    data = DatasetDict({s: Dataset.from_pandas(frames[s], preserve_index=False) for s in SPLITS})
    logger.info(
        "Data %s: %s examples; %d duplicate texts kept within one split; labels %s",
        source,
        ", ".join(f"{s} {len(frames[s])}" for s in SPLITS),
        num_duplicates,
        names,
    )
    dropped = {"train": lost, "validation": 0, "test": 0}
    return Splits(data, names, split_hash(frames["test"]), num_duplicates, dropped, overlap)


def read_splits(
    dataset: str,
    train_file: str | None = None,
    validation_file: str | None = None,
    test_file: str | None = None,
) -> tuple[dict[str, pd.DataFrame], list[str] | None, dict[str, str]]:
    """One DataFrame per split that the data brings: `train_file` or else `dataset` (whose Hub splits
    come along), replaced by `validation_file` and `test_file` where given; with ClassLabel names if
    any, and each split's source for messages."""
    if train_file is not None:
        tables, names = {"train": read_file(Path(train_file).expanduser())}, None
        sources = {"train": train_file}
    else:
        tables, names = read_dataset(dataset)
        sources = dict.fromkeys(tables, dataset)
    for split, file in (("validation", validation_file), ("test", test_file)):
        if file is not None:
            tables[split] = read_file(Path(file).expanduser())
            sources[split] = file
    return tables, names, sources


def read_dataset(dataset: str) -> tuple[dict[str, pd.DataFrame], list[str] | None]:
    """Read a local file or a Hub dataset into one DataFrame per split, with ClassLabel names if any."""
    path = Path(dataset).expanduser()
    if path.exists():
        return {"train": read_file(path)}, None
    if (
        path.suffix.lower() in FILE_READERS
        or dataset.startswith((".", "/", "~"))
        or os.sep + os.sep in dataset
    ):
        raise UserError(f"Dataset file {dataset} does not exist.")
    return _read_hub(dataset)


def read_file(path: Path) -> pd.DataFrame:
    """Read a .csv, .jsonl/.json or .parquet file; refuse empty or unreadable files by name."""
    reader = FILE_READERS.get(path.suffix.lower())
    if reader is None:
        raise UserError(f"Cannot read {path}: use a .csv, .jsonl, .json or .parquet file.")
    if path.is_dir():
        raise UserError(f"{path} is a folder; pass a data file (.csv, .jsonl, .json or .parquet).")
    if not path.exists():
        raise UserError(f"Data file {path} does not exist.")
    if path.stat().st_size == 0:
        raise UserError(f"Dataset file {path} is empty.")
    try:
        table = reader(path)
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise UserError(f"Cannot read {path} as {path.suffix} data: {err}") from err
    if table.empty:
        raise UserError(f"Dataset file {path} has no rows.")
    return table


def _read_json(path: Path) -> pd.DataFrame:
    # A .json file is either one array of records or JSON Lines (what `datasets` writes).
    with path.open() as f:
        is_array = f.read(4096).lstrip().startswith("[")
    return pd.read_json(path, lines=not is_array)


def _read_hub(dataset: str) -> tuple[dict[str, pd.DataFrame], list[str] | None]:
    import datasets

    reason = hub_unreachable_reason()
    if reason is not None:  # at once, instead of after the Hub client's retries
        raise UserError(
            f"Cannot load dataset {dataset!r}: it is not a local file, and the Hugging Face Hub cannot be "
            f"reached ({reason}). Without network access, pass a local .csv, .jsonl, .json or .parquet file "
            "with --dataset FILE, or your own splits with --train_file (and --validation_file, --test_file)."
        )
    try:
        loaded = datasets.load_dataset(dataset)
    except Exception as err:  # the Hub client raises many types; all mean "cannot get it"
        raise UserError(
            f"Cannot load dataset {dataset!r} from the Hugging Face Hub ({type(err).__name__}: {err}). "
            "Without network access, pass a local .csv, .jsonl, .json or .parquet file with --dataset FILE, "
            "or your own splits with --train_file (and --validation_file, --test_file)."
        ) from err
    names = None
    for feature in next(iter(loaded.values())).features.values():
        if isinstance(feature, ClassLabel):
            names = [re.sub(r"\s+", "_", n.strip()) for n in feature.names]
            break
    return {split: ds.to_pandas() for split, ds in loaded.items()}, names


def _pick_column(
    table: pd.DataFrame, given: str | None, candidates: tuple[str, ...], kind: str, source: str
) -> str:
    columns = [str(c) for c in table.columns]
    if given is not None:
        if given not in columns:
            raise UserError(
                f"{source} has no column {given!r} (--{kind}_column); its columns are: {columns}."
            )
        return given
    for name in candidates:
        if name in columns:
            return name
    raise UserError(
        f"{source} has no {kind} column: looked for {', '.join(candidates)}; its columns are: {columns}. "
        f"Name the right one with --{kind}_column."
    )


def _known_label_names(columns: pd.Index) -> list[str] | None:
    present = set(map(str, columns))
    for signature, names in KNOWN_LABEL_NAMES.items():
        if present.issuperset(signature):
            return list(names)
    return None


def _clean(frame: pd.DataFrame, split: str, source: str) -> pd.DataFrame:
    for column, what in (("label", "no label"), ("text", "no text")):
        missing = frame[column].isna()
        if missing.any():
            # Numbered as in a spreadsheet: 1 is the first row after the header.
            rows = ", ".join(str(i + 1) for i in frame.index[missing][:5])
            raise UserError(
                f"{int(missing.sum())} row(s) of {source} ({split}) have {what} (first data rows: {rows}). "
                "Fix or drop them."
            )
    return frame.assign(text=frame["text"].astype(str)).reset_index(drop=True)


def _label_names(labels: pd.Series, names: list[str] | None, source: str) -> list[str]:
    if pd.api.types.is_numeric_dtype(labels):
        if not (labels == labels.round()).all():
            raise UserError(
                f"Labels of {source} must be whole numbers or strings; found {labels[labels != labels.round()].iloc[0]}."
            )
        numbers = sorted(int(v) for v in labels.unique())
        count = len(names) if names else numbers[-1] + 1
        unknown = [v for v in numbers if not 0 <= v < count]
        if unknown:
            raise UserError(
                f"{source} has labels {unknown} outside 0..{count - 1}"
                + (f" (the {count} names given: {names})" if names else "")
                + ". Labels must be class indices 0..K-1; pass --class_names to name K classes."
            )
        names = names or [str(v) for v in range(count)]
    else:
        strings = sorted(str(v) for v in labels.unique())
        if names:
            missing = [v for v in strings if v not in names]
            if missing:
                raise UserError(
                    f"{source} has labels {missing} that are not among the classes {names} (--class_names, "
                    "or the teacher's)."
                )
        else:
            names = strings
    if len(names) < 2:
        raise UserError(f"{source} has a single class {names}; a classifier needs at least two.")
    return list(names)


def _encode(labels: pd.Series, names: list[str]) -> pd.Series:
    if pd.api.types.is_numeric_dtype(labels):
        return labels.astype(int)
    index = {name: i for i, name in enumerate(names)}
    return labels.astype(str).map(index.__getitem__).astype(int)


# What copies of one tweet differ in: retweet marks and @handles ("RT @user:", a quote retweet's
# '"@user: …"', a reply's "@user"), links (each copy gets its own t.co link; truncated ones end in
# "http:/…"), apostrophes ("don't", "don’t", "dont"), punctuation, quotes and emoji.
HANDLE = re.compile(r"(?:\brt\s*:?\s*)?@\w+")
URL = re.compile(r"\bhttps?:\S*|\bwww\.\S+")
APOSTROPHE = re.compile(r"['\u2018\u2019`]")
NOT_A_WORD = re.compile(r"[\W_]+")


def normalize_text(text: str) -> str:
    """The form in which two texts count as the same: their words, lower-cased and single-spaced.

    HTML entities are decoded (twice: the Davidson corpus holds `&amp;#9773;`), then handles, retweet
    marks, links, apostrophes, punctuation and emoji dropped, so that a retweet, a quote retweet and
    the tweet itself are one text.
    """
    lowered = " ".join(html.unescape(html.unescape(text)).lower().split())
    words = URL.sub(" ", HANDLE.sub(" ", lowered))
    words = NOT_A_WORD.sub(" ", APOSTROPHE.sub("", words))
    # A tweet of nothing but handles, links or emoji has no words left: it stays its own text, or all
    # such tweets would become one group, held in one split.
    return " ".join(words.split()) or lowered


def _training_pool(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The data that train (and any held-out split not given) comes from: the train split, or else
    every split that is not validation or test."""
    if set(frames) - set(SPLITS):
        logger.info("Ignoring splits %s", sorted(set(frames) - set(SPLITS)))
    rest = [f for s, f in frames.items() if s not in HELD_OUT]
    if not rest:
        raise UserError(f"The data has only {' and '.join(frames)} splits: give training data too.")
    return frames["train"] if "train" in frames else pd.concat(rest, ignore_index=True)


def _without_held_out_texts(train: pd.DataFrame, given: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, int]:
    """`train` less its rows whose text is in a given held-out split, and how many rows that was.

    A given test split is a benchmark: a score on part of it compares with no published score on it,
    so the leak is closed from train's side, and a given validation split is treated the same way.
    """
    texts = train["text"].map(normalize_text)
    leaked = pd.Series(False, index=train.index)
    for split in ("test", "validation"):
        if split in given:
            repeats = texts.isin(set(given[split]["text"].map(normalize_text))) & ~leaked
            if repeats.any():
                logger.warning(
                    "Dropped %d of %d training rows whose text is also in the given %s data.",
                    int(repeats.sum()),
                    len(train),
                    split,
                )
            leaked |= repeats
    return train[~leaked].reset_index(drop=True), int(leaked.sum())


def _validation_also_in_test(given: dict[str, pd.DataFrame]) -> int:
    """How many rows of a given validation split repeat a text of the given test split.

    Both stay whole: each may be a split that others report on, and cutting either would make it
    another split. The overlap leaks only through which checkpoint validation picks, so it is counted
    and warned about instead.
    """
    if len(given) < len(HELD_OUT):
        return 0
    test_texts = set(given["test"]["text"].map(normalize_text))
    shared = int(given["validation"]["text"].map(normalize_text).isin(test_texts).sum())
    if shared:
        logger.warning(
            "%d of %d validation rows repeat a text of the given test data; both are kept whole.",
            shared,
            len(given["validation"]),
        )
    return shared


def _split(
    train: pd.DataFrame,
    given: dict[str, pd.DataFrame],
    validation_size: float,
    test_size: float,
    seed: int,
) -> tuple[dict[str, pd.DataFrame], int]:
    """Carve the held-out splits not `given` out of `train`, stratified, with duplicate groups kept
    together; keep the given ones whole, shuffled. Also return the duplicate count within `train`."""
    groups = train["text"].map(normalize_text)
    num_duplicates = int(groups.duplicated().sum())
    # One row per distinct text; a group takes the label of its first occurrence for stratification.
    first = train.assign(group=groups).drop_duplicates("group")
    keys, labels = first["group"].to_numpy(), first["label"].to_numpy()

    out = {s: f.sample(frac=1.0, random_state=seed).reset_index(drop=True) for s, f in given.items()}
    remaining = 1.0
    for split, size in (("test", test_size), ("validation", validation_size)):
        if split not in given:
            keys, held, labels, _ = _stratified(keys, labels, size / remaining, seed)
            out[split] = _rows(train, groups, held, seed)
            remaining -= size
    out["train"] = _rows(train, groups, keys, seed)
    return {s: out[s] for s in SPLITS}, num_duplicates


def _stratified(keys: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> list[np.ndarray]:
    n_held = max(1, math.ceil(fraction * len(keys))) if len(keys) > 1 else 0
    if n_held == 0 or n_held >= len(keys):
        raise UserError(f"Too little data to split ({len(keys)} distinct texts): use a larger dataset.")
    try:
        return train_test_split(keys, labels, test_size=n_held, random_state=seed, stratify=labels)
    except ValueError:
        # A class with a single example cannot be stratified; a random split is the honest fallback.
        logger.warning("Some class has too few examples to stratify the split; splitting at random.")
        return train_test_split(keys, labels, test_size=n_held, random_state=seed)


def _rows(table: pd.DataFrame, groups: pd.Series, keys: np.ndarray, seed: int) -> pd.DataFrame:
    chosen = table[groups.isin(set(keys))]
    return chosen.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def in_class_order(splits: Splits, class_names: list[str] | None, model: str) -> Splits:
    """`splits` with its labels renumbered into `class_names`, the class order of `model`'s trained head.

    A trained head answers in its own order: a student's KL and CE terms, and the test set's per-class
    F1, are only right when the data's label i is the model's class i. Data whose classes have no names
    (bare class numbers) cannot be matched to a model's named classes, and classes that differ cannot
    be matched at all: both are refused, naming the two orders. `class_names` None (a model with generic
    LABEL_i names) leaves the data as it is.
    """
    ours = splits.label_names
    if class_names is None or ours == class_names:
        return splits
    if sorted(ours) != sorted(class_names):
        unnamed = all(name.isdigit() for name in ours)
        raise UserError(
            f"The data's classes, in label order, are {ours}, but {model} was trained on {class_names}"
            + (
                ": the data's labels are bare class numbers, so they cannot be matched to those names. "
                "Pass --class_names with the data's names in label order."
                if unnamed
                else ": use the data the model was trained on, or the same class names."
            )
        )
    to_model = {i: class_names.index(name) for i, name in enumerate(ours)}
    logger.info("Labels renumbered from the data's class order %s into %s's %s", ours, model, class_names)
    data = splits.data.map(
        lambda batch: {"label": [to_model[label] for label in batch["label"]]},
        batched=True,
        desc="Renumbering labels",
    )
    test_hash = split_hash(data["test"].select_columns(["text", "label"]).to_pandas())
    return replace(splits, data=data, label_names=list(class_names), test_hash=test_hash)


def split_hash(frame: pd.DataFrame) -> str:
    """A short fingerprint of a split's texts and labels, in order: equal hashes mean the same test set."""
    payload = json.dumps(list(zip(frame["text"].tolist(), frame["label"].astype(int).tolist(), strict=True)))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def tokenize(data: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_length: int) -> DatasetDict:
    """Tokenize without padding (the collator pads each batch), name the target `labels`, and record
    each example's token count in a `length` column for length-grouped batches."""

    def encode(batch: dict) -> dict:
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length)
        encoded[LENGTH] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    tokenized = data.map(encode, batched=True, remove_columns=["text"], desc="Tokenizing")
    return tokenized.rename_column("label", "labels")


class PaddingCollator(DataCollatorWithPadding):
    """`DataCollatorWithPadding` that leaves out the `length` column (the sampler reads it, the model
    does not take it), and stacks columns of matrices per example (cached teacher states) through
    NumPy, where the tokenizer's padding would build their tensor from Python lists, four times slower."""

    def __call__(self, features: list[dict]) -> dict:
        first = features[0]
        stacked = [k for k, v in first.items() if isinstance(v, list) and v and isinstance(v[0], list)]
        skip = {LENGTH, *stacked}
        batch = super().__call__([{k: v for k, v in f.items() if k not in skip} for f in features])
        for key in stacked:
            batch[key] = torch.from_numpy(np.asarray([f[key] for f in features], dtype=np.float32))
        return batch
