"""distill.predict: class logits for a list of texts in length-sorted batches, returned in the texts' order;
which values can be classified; how many tokens a trained classifier reads."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from conftest import tiny_config, tiny_model
from transformers import RobertaConfig

from distill.predict import length_sorted_batches, max_input_length, predict_logits, softmax, text_status

# Lengths in mixed order: sorted by length, the batches run in another order than the texts.
TEXTS = [f"comment number {i} " + "blah " * i for i in (7, 2, 9, 0, 5, 1, 8, 3, 6, 4)]


def test_predict_logits_returns_row_i_for_text_i(tokenizer) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model(initializer_range=0.5)  # texts get logits far enough apart that a swap shows
    logits = predict_logits(model, tokenizer, TEXTS, max_length=128, batch_size=3, progress=False)
    assert logits.shape == (len(TEXTS), 3) and logits.dtype == np.float32
    with torch.inference_mode():  # one text at a time: no padding, no order to get wrong
        alone = torch.cat([model(**tokenizer(text, return_tensors="pt")).logits for text in TEXTS])
    np.testing.assert_allclose(logits, alone.numpy(), atol=1e-5, rtol=0)
    assert min(np.abs(logits[i] - logits[i + 1]).max() for i in range(len(TEXTS) - 1)) > 1e-3


def test_predict_logits_truncates_at_max_length(tokenizer) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model(initializer_range=0.5)
    long = "you are awful " * 100
    [cut] = predict_logits(model, tokenizer, [long], max_length=8, progress=False)
    with torch.inference_mode():
        first_8 = model(**tokenizer(long, truncation=True, max_length=8, return_tensors="pt")).logits[0]
    np.testing.assert_allclose(cut, first_8.numpy(), atol=1e-5, rtol=0)


def test_length_sorted_batches_hold_every_index_once_shortest_first() -> None:
    batches = list(length_sorted_batches(TEXTS, 4))
    assert [len(batch) for batch in batches] == [4, 4, 2]
    order = [i for batch in batches for i in batch]
    assert sorted(order) == list(range(len(TEXTS)))
    assert [len(TEXTS[i]) for i in order] == sorted(map(len, TEXTS))
    assert list(length_sorted_batches([], 4)) == []


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("hi", "ok"),
        ("NA", "ok"),
        ("", "empty"),
        (" \n\t", "empty"),
        (None, "empty"),
        (float("nan"), "empty"),
        (5, "not_text"),
        (["a list"], "not_text"),
        ("\ud800", "invalid_unicode"),
    ],
)
def test_text_status(value: object, status: str) -> None:
    assert text_status(value) == status


def test_roberta_style_positions_leave_room_for_the_padding_offset() -> None:
    unset: Any = SimpleNamespace(model_max_length=int(1e30))  # a tokenizer saved without a limit
    limited: Any = SimpleNamespace(model_max_length=64)
    assert max_input_length(unset, RobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    assert max_input_length(unset, tiny_config()) == 128
    assert max_input_length(limited, tiny_config()) == 64


def test_a_given_max_length_replaces_the_tokenizers_but_not_the_models_limit() -> None:
    limited: Any = SimpleNamespace(model_max_length=64)
    assert max_input_length(limited, tiny_config(), override=100) == 100
    assert max_input_length(limited, tiny_config(), override=4096) == 128  # the position table's size
    assert max_input_length(limited, SimpleNamespace()) == 64  # a config without positions
    assert max_input_length(SimpleNamespace(model_max_length=None), SimpleNamespace()) == 512


def test_softmax_gives_the_probabilities_of_each_row() -> None:
    logits = np.array([[0.0, 0.0, 0.0], [2.0, -1.0, 0.5]], dtype=np.float32)
    probabilities = softmax(logits)
    assert probabilities.sum(axis=1) == pytest.approx([1, 1])
    assert probabilities[0] == pytest.approx([1 / 3] * 3)
    assert probabilities[1] == pytest.approx(torch.tensor(logits[1]).softmax(dim=0).numpy())
    assert probabilities[1].argmax() == 0
