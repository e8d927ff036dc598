"""app/inference.py: what the app answers for a text, from a tiny model, fp32 or int8."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import LABELS, tiny_model

from app.config import AppConfig
from app.inference import Classifier, text_problem
from app.registry import load_registry
from distill.errors import UserError


def test_scores_are_probabilities_and_the_verdict_follows_the_top_class(tokenizer) -> None:  # type: ignore[no-untyped-def]
    classifier = Classifier("tiny", tiny_model(), tokenizer)
    [result] = classifier.classify(["I hate you"])
    assert list(result["scores"]) == LABELS
    assert sum(result["scores"].values()) == pytest.approx(1, abs=1e-6)
    assert result["label"] == max(result["scores"], key=result["scores"].__getitem__)
    assert result["toxic"] == (result["label"] != "neither")
    assert result["truncated"] is False
    assert result["latency_ms"] > 0
    assert not classifier.model.training


@pytest.mark.parametrize(
    ("winner", "toxic"), [("neither", False), ("hate_speech", True), ("offensive_language", True)]
)
def test_every_class_but_the_non_toxic_one_is_toxic(tokenizer, winner: str, toxic: bool) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model()
    with torch.no_grad():  # a head that always predicts `winner`
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([5.0 if label == winner else 0.0 for label in LABELS]))
    [result] = Classifier("tiny", model, tokenizer).classify(["whatever"])
    assert (result["label"], result["toxic"]) == (winner, toxic)
    assert result["scores"][winner] > 0.98


def test_long_text_is_truncated_at_the_models_position_limit(tokenizer) -> None:  # type: ignore[no-untyped-def]
    classifier = Classifier("tiny", tiny_model(), tokenizer)
    assert tokenizer.model_max_length > 10**6  # this tokenizer states no limit; the model has 128 positions
    assert classifier.max_length == 128
    long, short = classifier.classify(["word " * 20_000, "short"])
    assert long["truncated"] is True
    assert short["truncated"] is False


def test_a_text_that_exactly_fills_the_limit_is_not_truncated(tokenizer) -> None:  # type: ignore[no-untyped-def]
    classifier = Classifier("tiny", tiny_model(), tokenizer)
    exact = " ".join(["word"] * (classifier.max_length - 2))  # plus [CLS] and [SEP]
    assert len(tokenizer(exact)["input_ids"]) == classifier.max_length
    assert classifier.classify([exact, exact + " word"])[0]["truncated"] is False
    assert classifier.classify([exact + " word"])[0]["truncated"] is True


def test_batches_give_the_same_answers_as_single_texts(tokenizer) -> None:  # type: ignore[no-untyped-def]
    classifier = Classifier("tiny", tiny_model(), tokenizer, batch_size=4)
    # Different lengths in mixed order: batches are sorted by length, answers must come back in order.
    texts = [f"comment number {i} " + "blah " * i for i in (7, 2, 9, 0, 5, 1, 8, 3, 6, 4)]
    batched = classifier.classify(texts)
    assert len(batched) == len(texts)
    for text, result in zip(texts, batched, strict=True):
        [alone] = classifier.classify([text])
        assert result["label"] == alone["label"]
        for label in LABELS:
            assert result["scores"][label] == pytest.approx(alone["scores"][label], abs=1e-5)


def test_a_model_with_unknown_classes_is_refused_naming_it(tokenizer) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model(id2label={0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, label2id=None)
    with pytest.raises(UserError, match=r"some/model: .*--non_toxic_label"):
        Classifier("x", model, tokenizer, source="some/model")


@pytest.mark.parametrize(
    ("text", "problem"),
    [("hi", None), ("", "empty"), (" \n\t", "empty"), (None, "string"), (3, "string"), ("\ud800", "Unicode")],
)
def test_text_problem(text: object, problem: str | None) -> None:
    found = text_problem(text)
    assert found is None if problem is None else problem in str(found)


def test_int8_models_answer_like_fp32_and_say_they_are_int8(runs: Path) -> None:
    fp32 = load_registry(AppConfig(runs=runs))
    int8 = load_registry(AppConfig(runs=runs, quantize="int8"))
    assert {m["precision"] for m in int8.describe()} == {"int8"}
    assert {m["precision"] for m in fp32.describe()} == {"fp32"}
    texts = ["you people are vermin", "lovely weather at the beach", "short", "this is damn stupid lol " * 3]
    for name in fp32.names:
        exact, quantized = fp32.get(name).classify(texts), int8.get(name).classify(texts)  # type: ignore[union-attr]
        for a, b in zip(exact, quantized, strict=True):
            for label in LABELS:
                assert b["scores"][label] == pytest.approx(a["scores"][label], abs=0.02)
