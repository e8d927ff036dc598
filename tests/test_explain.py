"""Word-level evidence by occlusion (distill.explain), checked against the model run directly."""

from __future__ import annotations

import pytest
import torch
from conftest import LABELS, tiny_config
from transformers import BertForSequenceClassification

from distill.explain import explain, read_spans, without_span, word_spans
from distill.quantize import quantize_int8

NEITHER = LABELS.index("neither")


@pytest.fixture(scope="session")
def sharp_model() -> BertForSequenceClassification:
    """A tiny random classifier whose answers move with single words (the default initialisation
    gives every text nearly the same probabilities, and every word a delta near 0)."""
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_config(layers=2, initializer_range=0.5)).eval()


def p_toxic(model, tokenizer, texts: list[str], max_length: int = 128) -> list[float]:  # type: ignore[no-untyped-def]
    """1 − P(neither) for each text, one text per forward pass."""
    found = []
    for text in texts:
        batch = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
        with torch.inference_mode():
            probabilities = model(**batch).logits.float().softmax(dim=-1)[0]
        found.append(1 - probabilities[NEITHER].item())
    return found


def test_words_are_whitespace_tokens_with_their_punctuation() -> None:
    text = "  Hey,  <b>you</b>\tidiot!!\n😡 don't-go "
    assert [text[s:e] for s, e in word_spans(text)] == ["Hey,", "<b>you</b>", "idiot!!", "😡", "don't-go"]
    assert word_spans("") == [] and word_spans(" \n ") == []


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(0, 1, "hate you"), (2, 6, "I you"), (7, 10, "I hate"), (0, 10, "")],
)
def test_a_word_goes_with_one_separator(start: int, end: int, expected: str) -> None:
    assert without_span("I hate you", start, end) == expected


def test_delta_is_the_drop_in_p_toxic_when_the_word_is_removed(sharp_model, tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = "you people are vermin, go away"
    explanation = explain(sharp_model, tokenizer, text, 128, NEITHER)
    assert [e["word"] for e in explanation.evidence] == text.split()
    # The texts without each word, written out by hand.
    without = [
        "people are vermin, go away",
        "you are vermin, go away",
        "you people vermin, go away",
        "you people are go away",
        "you people are vermin, away",
        "you people are vermin, go",
    ]
    base, *rest = p_toxic(sharp_model, tokenizer, [text, *without])
    for item, p_without in zip(explanation.evidence, rest, strict=True):
        assert item["delta"] == pytest.approx(base - p_without, abs=1e-5)
    assert max(abs(item["delta"]) for item in explanation.evidence) > 0.05  # a test that could fail
    assert not explanation.truncated


def test_offsets_cut_each_word_out_of_the_original_text(sharp_model, tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = "\tOMG <script>alert('x')</script>  you 🤬🤬 are\n\nso   dumb!!! café "
    evidence = explain(sharp_model, tokenizer, text, 128, NEITHER).evidence
    assert [text[e["start"] : e["end"]] for e in evidence] == [e["word"] for e in evidence] == text.split()


def test_a_word_the_model_gets_no_token_of_gets_no_evidence(sharp_model, tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = "you \u200b idiot"  # a zero-width space: the tokenizer drops it
    evidence = explain(sharp_model, tokenizer, text, 128, NEITHER).evidence
    assert [e["word"] for e in evidence] == ["you", "idiot"]
    assert [text[e["start"] : e["end"]] for e in evidence] == ["you", "idiot"]


def test_a_long_text_explains_only_what_the_model_read(sharp_model, tokenizer) -> None:  # type: ignore[no-untyped-def]
    max_length = 10  # [CLS] + 8 tokens + [SEP]: the cut falls inside "vermin" (ve ##rmin)
    words = ["you", "stupid", "xenophobic", "people", "are", "vermin", "go", "away", "now", "please"] * 3
    text = " ".join(words)
    explanation = explain(sharp_model, tokenizer, text, max_length, NEITHER)
    assert explanation.truncated
    # The words whose every token is among the 8 read: counted here one prefix at a time.
    whole = max(
        k for k in range(len(words)) if len(tokenizer(" ".join(words[:k]))["input_ids"]) <= max_length
    )
    assert whole == 5  # you stupid xenophobic people are: "xenophobic" takes 3 tokens
    assert [e["word"] for e in explanation.evidence] == words[:whole]
    # Removing a word does not pull unread words into the model's view: each copy is the read part
    # without that word, and the base is the text as the model read it.
    read_until = read_spans(tokenizer, text, max_length).read_until
    first = explanation.evidence[0]
    base, p_without = p_toxic(
        sharp_model,
        tokenizer,
        [text, without_span(text[:read_until], first["start"], first["end"])],
        max_length,
    )
    assert first["delta"] == pytest.approx(base - p_without, abs=1e-5)


def test_a_text_that_exactly_fills_max_length_is_explained_whole(sharp_model, tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = " ".join(["you", "are", "vermin"] * 3)
    explanation = explain(sharp_model, tokenizer, text, len(tokenizer(text)["input_ids"]), NEITHER)
    assert not explanation.truncated
    assert len(explanation.evidence) == 9


def test_int8_evidence_comes_from_the_int8_model_in_one_batch(sharp_model, tokenizer) -> None:  # type: ignore[no-untyped-def]
    int8 = quantize_int8(sharp_model, tokenizer.model_input_names)
    text = "you people are vermin, go away"
    variants = [without_span(text, start, end) for start, end in word_spans(text)]
    # int8 activations are quantized with one scale per batch: the reference is one padded batch too.
    batch = tokenizer([text, *variants], padding=True, return_tensors="pt")
    toxic = 1 - int8(**batch).logits.softmax(dim=-1)[:, NEITHER]
    quantized = explain(int8, tokenizer, text, 128, NEITHER).evidence
    exact = explain(sharp_model, tokenizer, text, 128, NEITHER).evidence
    for i, item in enumerate(quantized, start=1):
        assert item["delta"] == pytest.approx((toxic[0] - toxic[i]).item(), abs=1e-5)
    assert max(abs(a["delta"] - b["delta"]) for a, b in zip(quantized, exact, strict=True)) > 1e-3


def test_copies_that_need_several_batches_give_the_same_evidence_in_fp32(sharp_model, tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = " ".join(f"word{i}" for i in range(20))
    one = explain(sharp_model, tokenizer, text, 128, NEITHER).evidence
    many = explain(sharp_model, tokenizer, text, 128, NEITHER, max_batch_tokens=200).evidence
    assert len(one) == len(many) == 20
    for a, b in zip(one, many, strict=True):
        assert (a["word"], a["start"]) == (b["word"], b["start"])
        assert a["delta"] == pytest.approx(b["delta"], abs=1e-5)
