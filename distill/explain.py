"""Word-level evidence by occlusion: how much the probability of "toxic" drops when one word is removed.

The evidence is measured on P(toxic) = 1 − P(non-toxic class), not on the predicted class: its sign
then means the same for every verdict (positive pushes toward toxic, negative toward not toxic), and
the toxic classes of a three-class model count as one, as the verdict does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple, TypedDict

from transformers import PreTrainedTokenizerBase

from distill.predict import predict_logits, softmax

_WORD = re.compile(r"\S+")
# Padded tokens per forward pass: enough for a 128-token text and all its copies (127 rows) in one
# batch; no more than the app's batches of 32 texts at 512 tokens.
MAX_BATCH_TOKENS = 32 * 512


class WordEvidence(TypedDict):
    word: str
    start: int  # character offsets into the original text: text[start:end] == word
    end: int
    delta: float  # P(toxic | text) − P(toxic | text without this word)


@dataclass(frozen=True)
class Explanation:
    evidence: list[WordEvidence]  # the words the model read, in text order
    truncated: bool  # the text was cut at max_length: words after the cut have no evidence


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each word: what a reader sees as a word, a run of non-whitespace with its
    punctuation and emoji, not a tokenizer's subword pieces."""
    return [match.span() for match in _WORD.finditer(text)]


def without_span(text: str, start: int, end: int) -> str:
    """`text` without text[start:end] and the whitespace after it (before it, for the last word), so
    the words either side keep one separator and no empty token appears where the word was."""
    after = len(text) - len(text[end:].lstrip())
    if after < len(text) or start == 0:
        return text[:start] + text[after:]
    before = len(text[:start].rstrip())
    return text[:before] + text[end:]


class Reading(NamedTuple):
    spans: list[tuple[int, int]]  # (start, end) of each word the model reads whole
    read_until: int  # the character where the model's reading stops
    cut: bool  # the text is longer than max_length tokens, so the model stops before its end
    tokens: int  # tokens the model reads, special tokens included


def read_spans(tokenizer: PreTrainedTokenizerBase, text: str, max_length: int) -> Reading:
    """Which words of `text` the model reads whole within `max_length` tokens. A word with no token
    (a zero-width space) is left out: the model never sees it. Needs a fast tokenizer (offsets)."""
    encoded = tokenizer(text, truncation=True, max_length=max_length, return_offsets_mapping=True)
    offsets = [(s, e) for s, e in encoded["offset_mapping"] if e > s]  # special tokens are (0, 0)
    tokens = len(encoded["input_ids"])
    cut = (
        tokens >= max_length
        and len(tokenizer(text, truncation=False, verbose=False)["input_ids"]) > max_length
    )
    read_until = max((e for _, e in offsets), default=0) if cut else len(text)
    spans = []
    token = 0
    for start, end in word_spans(text):
        if end > read_until:  # this word's last pieces, and everything after, fell beyond the cut
            break
        while token < len(offsets) and offsets[token][1] <= start:
            token += 1
        if token < len(offsets) and offsets[token][0] < end:  # a token overlaps the word
            spans.append((start, end))
    return Reading(spans, read_until, cut, tokens)


def explain(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    text: str,
    max_length: int,
    non_toxic_index: int,
    max_batch_tokens: int = MAX_BATCH_TOKENS,
) -> Explanation:
    """Occlusion evidence for each word of `text` that `model` reads: the text and one copy per word
    with that word removed, classified together by `predict_logits` (length-sorted).

    They run as one batch unless it would exceed `max_batch_tokens` (padded), which only a text
    longer than 128 tokens can reach. One batch matters for int8 (`OnnxInt8Classifier`): its
    activations are quantized with one scale per batch, so the text and its copies must share it, or
    the deltas would carry the difference in scales. For a text longer than `max_length` tokens, the
    copies are made of the part the model read, so removing a word pulls no unread word in.
    """
    reading = read_spans(tokenizer, text, max_length)
    read = text[: reading.read_until]
    variants = [without_span(read, start, end) for start, end in reading.spans]
    batch_size = max(1, max_batch_tokens // reading.tokens)
    logits = predict_logits(model, tokenizer, [text, *variants], max_length, batch_size, progress=False)
    toxic = (1.0 - softmax(logits)[:, non_toxic_index]).tolist()
    evidence: list[WordEvidence] = [
        {"word": text[start:end], "start": start, "end": end, "delta": toxic[0] - toxic[i]}
        for i, (start, end) in enumerate(reading.spans, start=1)
    ]
    return Explanation(evidence=evidence, truncated=reading.cut)
