"""Speed measurements: where distillation's training speed comes from, one source at a time, and how
fast the teacher, the student and the int8 student serve. Each measurement runs in a fresh process,
so its peak memory is its own, and every training variant reads the same examples once."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from datasets import Dataset, DatasetDict
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    TrainerCallback,
    TrainingArguments,
)

from distill.data import PaddingCollator, tokenize
from distill.quantize import quantize_int8
from distill.students import make_student
from distill.teacher_cache import COLUMN, STATES, with_teacher_logits
from distill.trainer import DistillationTrainer


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def course_recipe_training(
    teacher_dir: str, layers: list[int], texts: list[str], labels: list[int], batch_size: int
) -> dict:
    """The course notebook's loop, faithfully: the teacher runs on every batch, fp32, every text
    padded to 128 tokens, loss = (CE + KL at T=1 + cosine on logits) / 3, Adam at 5e-5."""
    device = _device()
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir).to(device).eval()
    student = make_student(teacher, layers).to(device).train()  # type: ignore[arg-type]
    optimizer = torch.optim.Adam(student.parameters(), lr=5e-5)
    cosine = torch.nn.CosineEmbeddingLoss()

    def step(start: int) -> None:
        batch = tokenizer(
            texts[start : start + batch_size],
            padding="max_length",
            max_length=128,
            truncation=True,
            return_tensors="pt",
        ).to(device)
        y = torch.tensor(labels[start : start + batch_size], device=device)
        s_logits = student(**batch).logits
        with torch.no_grad():
            t_logits = teacher(**batch).logits
        ce = F.cross_entropy(s_logits, y)
        kl = F.kl_div(F.log_softmax(s_logits, -1), F.softmax(t_logits, -1), reduction="batchmean")
        cos = cosine(s_logits, t_logits, torch.ones(len(y), device=device))
        loss = (ce + kl + cos) / 3
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step(0)  # warm-up, not timed
    times = []
    for start in range(0, len(texts), batch_size):
        _sync()
        began = time.perf_counter()
        step(start)
        _sync()
        times.append(time.perf_counter() - began)
    return {"samples_per_second": len(texts) / sum(times)}


class _StepTimer(TrainerCallback):
    def __init__(self) -> None:
        self.times: list[float] = []
        self._began = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        _sync()
        self._began = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        _sync()
        self.times.append(time.perf_counter() - self._began)


@dataclass(frozen=True)
class TrainingVariant:
    """One way to run DistillationTrainer: each source of speed switched on or off."""

    name: str
    group_by_length: bool
    cached_teacher_logits: bool
    bf16: bool = False
    layer_matching: bool = False  # with --pkd_weight > 0: the cost of the term, with its states cached


# Cumulative, in the order the speed table of docs/speed.md adds them; the last is the previous default.
TRAINING_VARIANTS = (
    TrainingVariant("+ dynamic padding", group_by_length=False, cached_teacher_logits=False),
    TrainingVariant("+ length grouping", group_by_length=True, cached_teacher_logits=False),
    TrainingVariant("+ cached teacher logits", group_by_length=True, cached_teacher_logits=True),
    TrainingVariant("+ bf16", group_by_length=True, cached_teacher_logits=True, bf16=True),
)
# Not a source of speed but a cost: the default (+ bf16) with layer matching on, states cached.
LAYER_MATCHING = TrainingVariant(
    "+ bf16, with layer matching",
    group_by_length=True,
    cached_teacher_logits=True,
    bf16=True,
    layer_matching=True,
)
PREVIOUS_DEFAULT = TrainingVariant(
    "previous default (dynamic padding, cached logits, random batches)",
    group_by_length=False,
    cached_teacher_logits=True,
)


def project_training(
    teacher_dir: str,
    layers: list[int],
    texts: list[str],
    labels: list[int],
    batch_size: int,
    output_dir: str,
    variant: TrainingVariant,
) -> dict:
    """distill.py's path, DistillationTrainer with dynamic padding, over `texts` once, as `variant` says."""
    teacher, tokenizer = _load(teacher_dir)
    teacher = teacher.to(_device())  # type: ignore[arg-type]
    raw = DatasetDict({"train": Dataset.from_dict({"text": texts, "label": labels})})
    data = tokenize(raw, tokenizer, max_length=128)["train"]
    cache_seconds = None
    if variant.cached_teacher_logits:
        began = time.perf_counter()
        precision = "bf16" if variant.bf16 else "fp32"  # as distill.py caches them for a bf16 student
        data = with_teacher_logits(
            data,
            teacher,
            tokenizer,
            128,
            f"{output_dir}/cache",
            64,
            precision,
            layers if variant.layer_matching else None,
        )
        cache_seconds = time.perf_counter() - began
    args = TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=batch_size, num_train_epochs=1, learning_rate=5e-5,
        save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True, logging_strategy="no",
        train_sampling_strategy="group_by_length" if variant.group_by_length else "random",
        remove_unused_columns=False, bf16=variant.bf16, seed=0,
        use_cpu=not torch.cuda.is_available(),  # the Trainer takes bf16 on a CPU only when told so
    )  # fmt: skip
    timer = _StepTimer()
    collator = PaddingCollator(tokenizer)
    student = make_student(teacher, layers)
    trainer = DistillationTrainer(
        model=student,
        teacher=teacher,
        args=args,
        train_dataset=data,
        data_collator=collator,
        callbacks=[timer],
        pkd_weight=100.0 if variant.layer_matching else 0.0,  # any weight above 0 costs the same
        pkd_targets=layers,
    )
    _warm_up(student, collator([data[i] for i in range(min(batch_size, len(data)))]))
    trainer.train()
    return {"samples_per_second": len(texts) / sum(timer.times), "cache_seconds": cache_seconds}


def _warm_up(model: PreTrainedModel, batch: dict) -> None:
    """One untimed forward and backward pass, so no variant pays for first-call set-up in its timing."""
    inputs = {k: v.to(_device()) for k, v in batch.items() if k not in ("labels", COLUMN, STATES)}
    model.to(_device())  # type: ignore[arg-type]
    model(**inputs).logits.sum().backward()
    model.zero_grad(set_to_none=True)


def save_student(teacher_dir: str, layers: list[int], output_dir: str) -> dict:
    """Save the student built from `layers` of the teacher, so that it can be measured on its own."""
    teacher, tokenizer = _load(teacher_dir)
    make_student(teacher, layers).save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return {}


# Batch 1 is one text at a time; 32, a request of many texts. Each is timed after untimed warm-up batches.
INFERENCE_BATCH_SIZES = (1, 32)
WARM_UP_BATCHES = 2


def inference_texts_needed(repeats: int) -> int:
    """How many distinct texts `inference` reads at the largest batch size, for `repeats` timed batches."""
    return max(INFERENCE_BATCH_SIZES) * (WARM_UP_BATCHES + repeats)


@torch.inference_mode()
def inference(
    model_dir: str, texts: list[str], batch_size: int, repeats: int, quantize: str | None = None
) -> dict:
    """Latency per batch and throughput of one model loaded alone, fp32 or int8, in eval mode.

    Batch 1 classifies one text at a time. Larger batches are cut from the texts sorted by length,
    as the app batches a request of many texts, so a batch pads only to its own longest text.
    """
    model, tokenizer = _load(model_dir)
    served: Any = (
        quantize_int8(model, tokenizer.model_input_names) if quantize else model.to(_device()).eval()  # type: ignore[arg-type]
    )
    device = torch.device("cpu") if quantize else _device()
    needed = texts[: batch_size * (WARM_UP_BATCHES + repeats)]
    if batch_size > 1:
        needed = sorted(needed, key=len)
    batches = [needed[i : i + batch_size] for i in range(0, len(needed), batch_size)]

    def classify(batch: list[str]) -> None:
        served(
            **tokenizer(batch, padding=True, truncation=True, max_length=128, return_tensors="pt").to(device)
        )

    for batch in batches[:WARM_UP_BATCHES]:
        classify(batch)
    latencies = []
    timed = batches[WARM_UP_BATCHES:]
    for batch in timed:
        _sync()
        began = time.perf_counter()
        classify(batch)
        _sync()
        latencies.append(time.perf_counter() - began)
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "samples_per_second": sum(map(len, timed)) / sum(latencies),
    }


def _load(model_dir: str) -> tuple[PreTrainedModel, Any]:
    return AutoModelForSequenceClassification.from_pretrained(model_dir), AutoTokenizer.from_pretrained(
        model_dir
    )


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
