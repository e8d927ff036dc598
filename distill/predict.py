"""Class logits for a list of texts, in length-sorted batches, returned in the texts' order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase


def length_sorted_batches(texts: Sequence[str], batch_size: int) -> Iterator[list[int]]:
    """Indices of `texts` in batches of `batch_size`, shortest texts first, so each batch pads only to
    its own longest text; the caller puts each result back at its index."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


@torch.inference_mode()
def predict_logits(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    batch_size: int = 64,
) -> np.ndarray:
    """Logits of `model` (a transformers classifier, or `distill.quantize.OnnxInt8Classifier`) for every
    text, row i for texts[i]. The texts run sorted by length, so each batch pads only to its own longest."""
    logits = np.empty((len(texts), model.config.num_labels), dtype=np.float32)
    batches = length_sorted_batches(texts, batch_size)
    for chunk in tqdm(batches, total=-(-len(texts) // batch_size), desc="Classifying", unit="batch"):
        batch = tokenizer(
            [texts[i] for i in chunk],
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(model.device)
        logits[chunk] = model(**batch).logits.float().cpu().numpy()
    return logits
