"""Which class means "not toxic": found from the class names, or named, and refused when neither works."""

from __future__ import annotations

import pytest
from conftest import LABELS

from distill.errors import UserError
from distill.labels import find_non_toxic_label


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (LABELS, "neither"),
        (["toxic", "Non-Toxic"], "Non-Toxic"),
        (["hateful", "offensive", "NORMAL"], "NORMAL"),
        (["Clean", "toxic"], "Clean"),
        (["not hate", "hate"], "not hate"),
        (["not-offensive", "offensive"], "not-offensive"),
        (["hateful", "Non_Hateful"], "Non_Hateful"),
        (["no hate", "hate", "abuse"], "no hate"),
    ],
)
def test_non_toxic_label_is_found_case_insensitively(labels: list[str], expected: str) -> None:
    assert find_non_toxic_label(labels) == expected


def test_non_toxic_label_can_be_named_and_must_exist() -> None:
    assert find_non_toxic_label(["LABEL_0", "LABEL_1"], "LABEL_1") == "LABEL_1"
    with pytest.raises(UserError, match="--non_toxic_label"):
        find_non_toxic_label(["LABEL_0", "LABEL_1"])
    with pytest.raises(UserError, match=r"'benign' is not a class.*hate_speech"):
        find_non_toxic_label(LABELS, "benign")


def test_two_negated_classes_are_ambiguous() -> None:
    with pytest.raises(UserError, match="Cannot tell which class"):
        find_non_toxic_label(["not-offensive", "not-hateful", "hateful"])
