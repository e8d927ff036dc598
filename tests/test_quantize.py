"""distill.quantize: a trained classifier as an int8 ONNX Runtime model that answers like the fp32 one."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_model

from distill.quantize import QUANTIZATIONS, OnnxInt8Classifier, quantize_int8

TEXTS = ["you people are vermin", "lovely weather at the beach lol", "short", "this is damn stupid " * 6]


@pytest.fixture(scope="module")
def models(tokenizer):  # type: ignore[no-untyped-def]
    """A tiny fp32 classifier whose logits differ from text to text, and its int8 copy."""
    fp32 = tiny_model(initializer_range=0.2)
    return fp32, quantize_int8(fp32, tokenizer.model_input_names)


def test_int8_logits_are_close_to_fp32_and_not_the_same(models, tokenizer) -> None:  # type: ignore[no-untyped-def]
    fp32, int8 = models
    assert QUANTIZATIONS == ("int8",) and isinstance(int8, OnnxInt8Classifier)
    assert int8.eval() is int8 and int8.config is fp32.config and int8.device == torch.device("cpu")
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        exact = fp32(**batch).logits
    quantized = int8(**batch).logits
    assert quantized.shape == exact.shape == (len(TEXTS), 3) and quantized.dtype == torch.float32
    spread = (exact.max(dim=0).values - exact.min(dim=0).values).max().item()
    assert spread > 0.1  # the texts get different answers, so answering them all alike would show
    error = (quantized - exact).abs().max().item()
    assert 0 < error < 0.1 * spread  # int8 arithmetic: close, but not the fp32 model run again
    torch.testing.assert_close(quantized.softmax(-1), exact.softmax(-1), atol=0.02, rtol=0)


def test_int8_takes_any_batch_size_and_length(models, tokenizer) -> None:  # type: ignore[no-untyped-def]
    fp32, int8 = models
    for texts in (TEXTS[:1], TEXTS[1:], ["word " * 100] * 5):  # the export traced a batch of 2 × 8 tokens
        batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.inference_mode():
            exact = fp32(**batch).logits.softmax(-1)
        torch.testing.assert_close(int8(**batch).logits.softmax(-1), exact, atol=0.02, rtol=0)
