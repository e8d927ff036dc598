"""Class logits for a list of texts, in length-sorted batches, returned in the texts' order; which
values can be classified, and how many tokens a trained classifier reads."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

# Embeddings that number positions from padding_idx + 1, so the first pad_token_id + 1 rows of the
# position table are never used for real tokens: RoBERTa-style models with 514 positions take 512 tokens.
_PADDING_OFFSET_POSITIONS = {
    "roberta",
    "roberta-prelayernorm",
    "xlm-roberta",
    "xlm-roberta-xl",
    "camembert",
    "mpnet",
    "longformer",
    "data2vec-text",
    "ibert",
}
_FALLBACK_MAX_LENGTH = 512  # when neither the tokenizer nor the config states a limit


def text_status(value: object) -> str:
    """Whether `value` can be classified: "ok", or why not ("empty" for a blank string or a missing
    value, "not_text" for any other non-string, "invalid_unicode" for a string with lone surrogates)."""
    if value is None or (isinstance(value, float) and value != value):  # None or NaN: a missing cell
        return "empty"
    if not isinstance(value, str):
        return "not_text"
    if not value.strip():
        return "empty"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. "\ud800" in JSON: the tokenizer would choke on them
        return "invalid_unicode"
    return "ok"


def max_input_length(tokenizer: PreTrainedTokenizerBase, config: object, override: int | None = None) -> int:
    """Tokens to read: `override`, or else the tokenizer's limit (which training sets to its
    --max_length), capped by the position table the model has."""
    limits = []
    if override is not None:
        limits.append(override)
    elif tokenizer.model_max_length and tokenizer.model_max_length < 1_000_000:  # unset reads as 1e30
        limits.append(int(tokenizer.model_max_length))
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        offset = 0
        if getattr(config, "model_type", None) in _PADDING_OFFSET_POSITIONS:
            offset = (getattr(config, "pad_token_id", None) or 0) + 1
        limits.append(int(positions) - offset)
    return min(limits) if limits else _FALLBACK_MAX_LENGTH


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
    progress: bool = True,
) -> np.ndarray:
    """Logits of `model` (a transformers classifier, or `distill.quantize.OnnxInt8Classifier`) for every
    text, row i for texts[i]. The texts run sorted by length, so each batch pads only to its own longest.
    `progress` shows a progress bar of the batches."""
    logits = np.empty((len(texts), model.config.num_labels), dtype=np.float32)
    batches = length_sorted_batches(texts, batch_size)
    total = -(-len(texts) // batch_size)
    for chunk in tqdm(batches, total=total, desc="Classifying", unit="batch", disable=not progress):
        batch = tokenizer(
            [texts[i] for i in chunk],
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(model.device)
        logits[chunk] = model(**batch).logits.float().cpu().numpy()
    return logits


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits, row by row, computed as the app computes its scores."""
    return torch.from_numpy(np.asarray(logits, dtype=np.float32)).softmax(dim=-1).numpy()
