"""The data's labels follow the class order of the trained head they meet: a student's teacher, or the
run a finished model was saved from. A mismatch is renumbered or refused, never passed on silently."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import LABELS, TINY_RUN, run_script, toxic_rows

from distill.args import DataArguments
from distill.data import in_class_order, load_splits, split_hash
from distill.errors import UserError
from distill.runner import prepare_student_run

# The tiny teacher's head answers hate_speech, offensive_language, neither (conftest.LABELS); this data
# numbers the same classes the other way round.
REVERSED = ["neither", "offensive_language", "hate_speech"]


@pytest.fixture
def unnamed_csv(tmp_path) -> Path:
    """Integer classes and no names: the data alone cannot say what class 0 is."""
    path = tmp_path / "numbers.csv"
    toxic_rows()[["tweet", "class"]].to_csv(path, index=False)
    return path


def vermin_labels(data) -> set[int]:  # type: ignore[no-untyped-def]
    """The labels of the rows the CSV numbers 0 (conftest's hate-speech texts)."""
    return {label for text, label in zip(data["text"], data["label"], strict=True) if "vermin" in text}


def test_the_datas_labels_are_renumbered_into_the_teachers_class_order(teacher_dir, unnamed_csv):
    # The user says CSV class 0 is `neither`; for the teacher, `neither` is class 2.
    setup = prepare_student_run(
        str(teacher_dir), "even", DataArguments(dataset=str(unnamed_csv), class_names=REVERSED)
    )
    assert setup.splits.label_names == LABELS
    assert setup.teacher.config.id2label == dict(enumerate(LABELS))
    for split in ("train", "validation", "test"):
        assert vermin_labels(setup.splits.data[split]) == {2}, split


def test_renumbering_keeps_texts_and_rehashes_the_test_split(unnamed_csv):
    given = load_splits(str(unnamed_csv), class_names=REVERSED)
    ordered = in_class_order(given, LABELS, "the teacher")
    assert ordered.data["test"]["text"] == given.data["test"]["text"]
    assert [LABELS[i] for i in ordered.data["test"]["label"]] == [
        REVERSED[i] for i in given.data["test"]["label"]
    ]
    assert ordered.test_hash == split_hash(ordered.data["test"].to_pandas()) != given.test_hash
    assert in_class_order(given, None, "a model with generic names") is given


def test_bare_class_numbers_are_refused_for_a_teacher_with_named_classes(teacher_dir, unnamed_csv):
    with pytest.raises(UserError) as err:
        prepare_student_run(str(teacher_dir), "even", DataArguments(dataset=str(unnamed_csv)))
    message = str(err.value)
    assert "['0', '1', '2']" in message and str(LABELS) in message and "--class_names" in message


def test_classes_that_differ_from_the_teachers_are_refused(teacher_dir, tmp_path):
    path = tmp_path / "other.jsonl"
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(30)], "label": ["spam", "ham", "eggs"] * 10})
    frame.to_json(path, orient="records", lines=True)
    with pytest.raises(UserError, match=r"\['eggs', 'ham', 'spam'\].*trained on \['hate_speech'"):
        prepare_student_run(str(teacher_dir), "even", DataArguments(dataset=str(path)))


@pytest.mark.slow
def test_a_students_test_scores_name_the_teachers_classes(teacher_dir, unnamed_csv, tmp_path):
    out = tmp_path / "student"
    run_script(
        "distill", "--teacher", teacher_dir, "--dataset", unnamed_csv, "--class_names", *REVERSED,
        "--output_dir", out, *TINY_RUN,
    )  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert results["label_names"] == LABELS
    # Row i of the confusion matrix counts the test texts of the teacher's class i.
    test = load_splits(str(unnamed_csv), class_names=REVERSED, max_test_samples=8).data["test"]
    truth = [LABELS.index(REVERSED[label]) for label in test["label"]]
    assert [sum(row) for row in results["test_confusion_matrix"]] == [truth.count(i) for i in range(3)]
