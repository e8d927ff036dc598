"""The one place where text becomes class probabilities: load a classifier, tokenize, forward, softmax."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict

import torch
from transformers import (
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from distill.errors import UserError
from distill.explain import WordEvidence, explain
from distill.labels import find_non_toxic_label, recorded_non_toxic_label
from distill.models import load_trained_classifier, looks_like_path, model_label_names
from distill.predict import length_sorted_batches, max_input_length, text_status
from distill.quantize import OnnxInt8Classifier, quantize_int8

logger = logging.getLogger(__name__)


class Prediction(TypedDict):
    label: str
    toxic: bool
    scores: dict[str, float]
    truncated: bool
    latency_ms: float


class ExplainedPrediction(Prediction):
    evidence: list[WordEvidence]  # see distill.explain: one entry per word the model read
    evidence_truncated: bool  # the model read only part of the text; the rest has no evidence


def text_problem(text: object) -> str | None:
    """Why `text` cannot be classified, or None if it can."""
    status = text_status(text)
    if status == "not_text" or (status == "empty" and not isinstance(text, str)):
        return f"text must be a string, not {type(text).__name__}"
    if status == "empty":
        return "text is empty"
    if status == "invalid_unicode":
        return "text is not valid Unicode"
    return None


class Classifier:
    """A sequence classifier in eval mode, safe to call from many threads at once.

    Calls are serialised by a lock: a fast tokenizer's truncation and padding settings live in shared
    Rust state that concurrent calls would change under each other ("Already borrowed"), and on a CPU
    one forward pass already uses every core, so running two at once would not be faster.
    """

    def __init__(
        self,
        name: str,
        model: PreTrainedModel | OnnxInt8Classifier,
        tokenizer: PreTrainedTokenizerBase,
        non_toxic_label: str | None = None,
        source: str | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
    ) -> None:
        self.name = name
        self.precision = "int8" if isinstance(model, OnnxInt8Classifier) else "fp32"
        self.source = source or name
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.labels = model_label_names(model)
        try:
            # The class saved at training time, unless the app was told otherwise.
            self.non_toxic_label = find_non_toxic_label(
                self.labels, non_toxic_label or recorded_non_toxic_label(model.config)
            )
        except UserError as err:
            raise UserError(f"{self.source}: {err}") from err
        self.max_length = max_input_length(tokenizer, model.config, max_length)
        self.batch_size = batch_size
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        name: str,
        name_or_path: str,
        non_toxic_label: str | None = None,
        quantize: str | None = None,
        max_length: int | None = None,
    ) -> Classifier:
        """Load a model folder (safetensors only) or Hub id; never runs code shipped with the model.
        With `quantize="int8"`, serve it int8-quantized through ONNX Runtime (see distill.quantize)."""
        path = Path(name_or_path).expanduser()
        local = path.is_dir()
        if not local and path.exists():
            raise UserError(f"{name_or_path} is a file; pass the model's folder.")
        if not local and looks_like_path(name_or_path):
            raise UserError(f"There is no folder {name_or_path}.")
        try:
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=False)
        except (OSError, ValueError) as err:
            where = "" if local else " (not a local folder, and not fetched from the Hugging Face Hub)"
            raise UserError(f"Cannot load model {name_or_path}{where}: {_first_line(err)}") from err
        model = load_trained_classifier(name_or_path, "Serve a fine-tuned run instead.")
        served: PreTrainedModel | OnnxInt8Classifier = (
            quantize_int8(model, tokenizer.model_input_names) if quantize == "int8" else model
        )
        return cls(name, served, tokenizer, non_toxic_label, source=name_or_path, max_length=max_length)

    def classify(self, texts: Sequence[str]) -> list[Prediction]:
        """Class probabilities and the toxic verdict for each text, in the order given.

        The texts run in batches of `batch_size` sorted by length, so a batch pads little; a random
        mix of tweets pads to about twice its real tokens.
        """
        predictions: list[Prediction | None] = [None] * len(texts)
        for chunk in length_sorted_batches(texts, self.batch_size):
            for i, prediction in zip(chunk, self._classify_batch([texts[i] for i in chunk]), strict=True):
                predictions[i] = prediction
        return [p for p in predictions if p is not None]

    def _classify_batch(self, texts: list[str]) -> list[Prediction]:
        with self._lock:
            started = time.perf_counter()
            batch = self.tokenizer(
                texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
            ).to(self.model.device)
            with torch.inference_mode():
                logits = self.model(**batch).logits
            assert logits is not None  # a sequence classifier always returns logits
            probabilities = logits.float().softmax(dim=-1).tolist()
            lengths = batch["attention_mask"].sum(dim=1).tolist()
            truncated = [
                length >= self.max_length and self._too_long(text)
                for text, length in zip(texts, lengths, strict=True)
            ]
            latency_ms = (time.perf_counter() - started) * 1000
        return [
            self._prediction(probs, cut, latency_ms)
            for probs, cut in zip(probabilities, truncated, strict=True)
        ]

    def explain(self, text: str) -> ExplainedPrediction:
        """The prediction for `text`, exactly as `classify` gives it, with word-level evidence from
        `distill.explain`: the text and one copy per word, that word removed, classified in one batch
        by this classifier's model (fp32 or int8). Costs about as much as classifying the copies."""
        started = time.perf_counter()
        [prediction] = self._classify_batch([text])
        with self._lock:
            non_toxic = self.labels.index(self.non_toxic_label)
            explanation = explain(self.model, self.tokenizer, text, self.max_length, non_toxic)
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        return {
            **prediction,
            "latency_ms": latency_ms,
            "evidence": explanation.evidence,
            "evidence_truncated": explanation.truncated,
        }

    def _prediction(self, probs: list[float], truncated: bool, latency_ms: float) -> Prediction:
        label = self.labels[max(range(len(probs)), key=probs.__getitem__)]
        return {
            "label": label,
            "toxic": label != self.non_toxic_label,
            "scores": dict(zip(self.labels, probs, strict=True)),
            "truncated": truncated,
            "latency_ms": round(latency_ms, 2),
        }

    def _too_long(self, text: str) -> bool:
        # Only texts that filled max_length get here; count their tokens without truncating.
        return len(self.tokenizer(text, truncation=False, verbose=False)["input_ids"]) > self.max_length


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
