"""distill.data: reading CSV, JSONL, JSON and Parquet files, the split (stratified, near-duplicates kept in one
split, reproducible), subsampling after the split, tokenizing and padding."""

import json
from typing import Any

import pandas as pd
import pytest
from conftest import LABELS, SHARED, TINY_RUN, run_script, toxic_rows

from distill.args import DataArguments
from distill.data import PaddingCollator, load_splits, normalize_text, tokenize
from distill.errors import UserError


def test_csv_with_davidson_columns(csv_data, tmp_path):
    splits = load_splits(str(csv_data), validation_size=0.2, test_size=0.2)
    assert {k: len(v) for k, v in splits.data.items()} == {"train": 36, "validation": 12, "test": 12}
    assert splits.label_names == LABELS  # named by the annotators' vote columns
    unnamed = tmp_path / "unnamed.csv"
    toxic_rows()[["tweet", "class"]].to_csv(unnamed, index=False)
    assert load_splits(str(unnamed)).label_names == [
        "0",
        "1",
        "2",
    ]  # integer labels without names stay numbered


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
def test_other_formats_with_text_and_string_labels(tmp_path, fmt):
    frame = toxic_rows().rename(columns={"tweet": "text", "class": "label"})
    frame["label"] = frame["label"].map(dict(enumerate(LABELS)))
    path = tmp_path / f"data.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=fmt == "jsonl")
    splits = load_splits(str(path), class_names=LABELS)
    assert splits.label_names == LABELS
    assert set(splits.data["train"]["label"]) == {0, 1, 2}


def test_string_labels_without_names_are_sorted(jsonl_data):
    assert load_splits(str(jsonl_data)).label_names == sorted(LABELS)


def test_davidson_csv_gets_its_real_label_names():
    path = SHARED / "data" / "davidson" / "labeled_data.csv"
    splits = load_splits(str(path), max_train_samples=10, max_eval_samples=10, max_test_samples=10)
    assert splits.label_names == ["hate_speech", "offensive_language", "neither"]
    assert len(splits.data["train"]) == 10


def test_split_is_disjoint_stratified_and_reproducible(csv_data):
    a = load_splits(str(csv_data), validation_size=0.2, test_size=0.2, split_seed=7)
    b = load_splits(str(csv_data), validation_size=0.2, test_size=0.2, split_seed=7)
    c = load_splits(str(csv_data), validation_size=0.2, test_size=0.2, split_seed=8)
    texts = {name: set(split["text"]) for name, split in a.data.items()}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["validation"]
    assert not texts["validation"] & texts["test"]
    assert sorted(a.data["test"]["label"]) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]  # stratified
    assert a.test_hash == b.test_hash != c.test_hash
    assert a.data["train"]["text"] == b.data["train"]["text"]


def test_subsampling_happens_after_the_split(csv_data):
    full = load_splits(str(csv_data))
    small = load_splits(str(csv_data), max_train_samples=5)
    assert full.test_hash == small.test_hash
    assert small.data["train"]["text"] == full.data["train"]["text"][:5]


def test_duplicates_and_retweets_never_cross_splits(tmp_path):
    rows = []
    for i in range(40):
        text = f"Message number {i} about things"
        rows += [(text, i % 2), (f"RT @someone: {text.upper()}", i % 2), (f"  {text}  ", i % 2)]
    path = tmp_path / "dups.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    splits = load_splits(str(path), validation_size=0.2, test_size=0.2)
    seen = {name: {normalize_text(t) for t in split["text"]} for name, split in splits.data.items()}
    assert not seen["train"] & seen["validation"]
    assert not seen["train"] & seen["test"]
    assert not seen["validation"] & seen["test"]
    assert splits.num_duplicates == 80
    assert sum(len(s) for s in splits.data.values()) == 120


# Spellings of one tweet seen in the Davidson corpus: a retweet and a quote retweet of it, each with
# its own shortened URL, entities for quotes and emoji, and trailing emoji.
TWINS = [
    (
        "RT @TreLeKidd: Yo bitch is Gucci Mane RT @JabariTheGreat : My bitch a stoner &#128175;&#128175; http://t.co/4UVjjbeqDD",
        '"@TreLeKidd: Yo bitch is Gucci Mane RT @JabariTheGreat : My bitch a stoner &#128175;&#128175; http://t.co/lt9LIJjpg9"&#128514;&#128514;',
    ),
    ("&#8220;@someone: I don&#8217;t care &amp; never will!!&#8221;", "RT @other: i dont care & never will"),
    ("Commie &amp;#9773; Mints https://t.co/x1 #tbt", "commie mints... #TBT www.example.com/page"),
    ("@bob you are a bitch", "@alice_2 you are a  BITCH ."),
]


@pytest.mark.parametrize(("a", "b"), TWINS)
def test_retweets_quotes_urls_entities_mentions_and_punctuation_do_not_make_a_new_text(a, b):
    assert normalize_text(a) == normalize_text(b) != ""


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("@bob", "@alice"),  # nothing but a mention, a URL or emoji: must not all become one text
        ("http://t.co/abc", "http://t.co/xyz"),
        ("&#128514;", "&#128514;&#128514;"),
        ("you are a bitch", "you are a witch"),
        ("rt this if you agree", "this if you agree"),  # "rt" without a handle is a word
    ],
)
def test_texts_that_differ_in_words_or_are_nothing_but_handles_and_links_stay_apart(a, b):
    assert normalize_text(a) != normalize_text(b)


def test_near_duplicate_tweets_never_cross_splits(tmp_path):
    rows = [
        (text.replace("Gucci Mane", f"Gucci Mane {i}").replace("care", f"care {i}"), i % 3)
        for i in range(30)
        for pair in TWINS[:2]
        for text in pair
    ]
    path = tmp_path / "twins.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    splits = load_splits(str(path), validation_size=0.2, test_size=0.2)
    where = {text: name for name, split in splits.data.items() for text in split["text"]}
    for a, b in zip(rows[::2], rows[1::2], strict=True):
        assert where[a[0]] == where[b[0]], f"{a[0]!r} in {where[a[0]]}, its twin {b[0]!r} in {where[b[0]]}"
    assert splits.num_duplicates == 60


def test_tokenize_names_labels_and_does_not_pad(csv_data, tokenizer):
    data = tokenize(load_splits(str(csv_data)).data, tokenizer, max_length=6)
    row = data["train"][0]
    assert set(data["train"].column_names) == {
        "input_ids",
        "token_type_ids",
        "attention_mask",
        "labels",
        "length",
    }
    assert len(row["input_ids"]) <= 6
    assert data["train"]["length"] == [len(ids) for ids in data["train"]["input_ids"]]


def test_padding_collator_pads_and_keeps_length_from_the_model(csv_data, tokenizer):
    rows = tokenize(load_splits(str(csv_data)).data, tokenizer, max_length=16)["train"]
    batch = PaddingCollator(tokenizer)([rows[0], rows[1]])
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert batch["input_ids"].shape[1] == max(rows[0]["length"], rows[1]["length"])


# -- bad input: each names the problem ------------------------------------------------------------


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_missing_text_column_lists_the_columns(tmp_path):
    path = write(tmp_path, "d.csv", "body,class\nhello,1\n")
    with pytest.raises(UserError, match=r"no text column.*\['body', 'class'\].*--text_column"):
        load_splits(path)


def test_missing_label_column(tmp_path):
    path = write(tmp_path, "d.csv", "tweet,target\nhello,1\n")
    with pytest.raises(UserError, match=r"no label column.*'target'"):
        load_splits(path)


def test_named_column_that_does_not_exist(csv_data):
    with pytest.raises(UserError, match=r"no column 'body' \(--text_column\)"):
        load_splits(str(csv_data), text_column="body")


@pytest.mark.parametrize("content", ["", "tweet,class\n"])
def test_empty_file(tmp_path, content):
    with pytest.raises(UserError, match=r"empty|no rows"):
        load_splits(write(tmp_path, "d.csv", content))


def test_path_that_does_not_exist(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_splits(str(tmp_path / "nope.csv"))


def test_unsupported_file_type(tmp_path):
    with pytest.raises(UserError, match=r"use a \.csv"):
        load_splits(write(tmp_path, "d.txt", "hello"))


def test_missing_and_nan_labels(tmp_path):
    path = write(tmp_path, "d.csv", "tweet,class\na,0\nb,\nc,1\nd,NaN\n")
    with pytest.raises(UserError, match=r"2 row\(s\).*have no label \(first data rows: 2, 4\)"):
        load_splits(path)


def test_integer_labels_outside_the_named_classes(csv_data):
    with pytest.raises(UserError, match=r"labels \[2\] outside 0..1"):
        load_splits(str(csv_data), class_names=["ok", "toxic"])


def test_string_labels_not_among_the_names(jsonl_data):
    with pytest.raises(UserError, match=r"\['neither'\] that are not among the classes"):
        load_splits(str(jsonl_data), class_names=["hate_speech", "offensive_language"])


def test_hub_id_that_cannot_be_fetched_names_the_flags_for_local_data():
    with pytest.raises(UserError, match=r"--dataset FILE, or your own splits with --train_file") as err:
        load_splits("no-such-user/no-such-dataset")
    assert "\n" not in str(err.value)


def own_splits(tmp_path, leaked: int = 0):  # type: ignore[no-untyped-def]
    """train.csv, validation.jsonl and test.parquet of 60, 15 and 21 rows; `leaked` test rows repeat
    training texts (one in another case and spacing, as duplicates usually are)."""
    rows = toxic_rows(96)
    train, validation, test = rows.iloc[:60], rows.iloc[60:75], rows.iloc[75:]
    if leaked:
        copies = train.iloc[:leaked].assign(tweet=lambda f: f["tweet"].str.upper() + "  ")
        test = pd.concat([test.iloc[leaked:], copies])
    paths = tmp_path / "train.csv", tmp_path / "validation.jsonl", tmp_path / "test.parquet"
    train.to_csv(paths[0], index=False)
    validation.to_json(paths[1], orient="records", lines=True)
    test.to_parquet(paths[2])
    return [str(p) for p in paths]


def test_own_split_files_are_used_as_given(tmp_path):
    train, validation, test = own_splits(tmp_path)
    splits = load_splits("ignored", train_file=train, validation_file=validation, test_file=test)
    assert {k: len(v) for k, v in splits.data.items()} == {"train": 60, "validation": 15, "test": 21}
    assert splits.held_out_duplicates == {"train": 0, "validation": 0, "test": 0}
    # Every row, shuffled by the split seed, so --max_test_samples takes a random subset of a sorted file.
    assert sorted(splits.data["test"]["text"]) == sorted(pd.read_parquet(test)["tweet"])
    assert splits.data["test"]["text"] != pd.read_parquet(test)["tweet"].tolist()


def test_given_validation_and_test_files_that_share_texts_are_both_kept_whole(tmp_path, caplog):
    train, validation, test = own_splits(tmp_path)
    copies = pd.read_parquet(test).iloc[:5]
    pd.concat([pd.read_json(validation, lines=True), copies]).to_json(
        validation, orient="records", lines=True
    )
    with caplog.at_level("WARNING"):
        splits = load_splits("ignored", train_file=train, validation_file=validation, test_file=test)
    assert splits.held_out_duplicates == {"train": 0, "validation": 0, "test": 0}
    assert splits.validation_also_in_test == 5
    assert len(splits.data["validation"]) == 20 and len(splits.data["test"]) == 21
    assert "5 of 20 validation rows" in caplog.text


def test_labels_of_different_kinds_across_files_are_refused(tmp_path):
    train, validation, _ = own_splits(tmp_path)
    frame = pd.read_json(validation, lines=True)
    frame["class"] = frame["class"].map(dict(enumerate(LABELS)))
    frame.to_json(validation, orient="records", lines=True)
    with pytest.raises(UserError, match=r"different kinds .*train .*: numbers, validation .*: strings"):
        load_splits("ignored", train_file=train, validation_file=validation)


def test_training_data_left_empty_by_the_held_out_files_is_named(tmp_path):
    train, validation, test = own_splits(tmp_path)
    pd.concat([pd.read_csv(train).iloc[:30], pd.read_json(validation, lines=True)]).to_json(
        validation, orient="records", lines=True
    )
    pd.concat([pd.read_csv(train).iloc[30:], pd.read_parquet(test)]).to_parquet(test)
    with pytest.raises(UserError, match=r"All 60 rows of the training data \(.*train\.csv\) also occur"):
        load_splits("ignored", train_file=train, validation_file=validation, test_file=test)


def test_given_held_out_files_stay_whole_and_train_loses_their_texts(tmp_path):
    train, validation, test = own_splits(tmp_path, leaked=4)
    pd.concat([pd.read_json(validation, lines=True), pd.read_csv(train).iloc[10:13]]).to_json(
        validation, orient="records", lines=True
    )
    splits = load_splits("ignored", train_file=train, validation_file=validation, test_file=test)
    # A given test file is a benchmark: its score compares with others' only on every one of its rows.
    assert {k: len(v) for k, v in splits.data.items()} == {"train": 53, "validation": 18, "test": 21}
    assert sorted(splits.data["test"]["text"]) == sorted(pd.read_parquet(test)["tweet"])
    assert splits.held_out_duplicates == {"train": 7, "validation": 0, "test": 0}
    seen = {name: {normalize_text(t) for t in split["text"]} for name, split in splits.data.items()}
    assert not seen["train"] & seen["test"] and not seen["train"] & seen["validation"]


def test_a_missing_split_is_carved_out_of_train(tmp_path):
    train, _, test = own_splits(tmp_path)
    splits = load_splits("ignored", train_file=train, test_file=test, validation_size=0.25)
    assert {k: len(v) for k, v in splits.data.items()} == {"train": 45, "validation": 15, "test": 21}


def test_a_split_carved_out_of_train_holds_no_text_of_a_given_test_file(tmp_path):
    train, _, test = own_splits(tmp_path, leaked=4)
    splits = load_splits("ignored", train_file=train, test_file=test, validation_size=0.25)
    # The 4 training rows that the test file repeats are dropped before validation is carved out.
    assert {k: len(v) for k, v in splits.data.items()} == {"train": 42, "validation": 14, "test": 21}
    seen = {name: {normalize_text(t) for t in split["text"]} for name, split in splits.data.items()}
    assert not seen["validation"] & seen["test"] and not seen["train"] & seen["test"]


def test_a_split_file_that_does_not_exist(tmp_path):
    train, _, _ = own_splits(tmp_path)
    with pytest.raises(UserError, match=r"Data file .*nope\.csv does not exist"):
        load_splits("ignored", train_file=train, test_file=str(tmp_path / "nope.csv"))


def test_dataset_and_train_file_together_are_refused(tmp_path):
    with pytest.raises(UserError, match="give the training data one way"):
        DataArguments(dataset="my.csv", train_file="train.csv")


def test_bad_split_sizes(csv_data):
    with pytest.raises(UserError, match="--test_size"):
        load_splits(str(csv_data), test_size=1.5)


# --- the split keeps duplicates, retweets and their variants inside one split --------------------------------

DAVIDSON = SHARED / "data" / "davidson" / "labeled_data.csv"


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
