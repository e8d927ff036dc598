"""Speed measurements: this project's distillation training against the course recipe, and student
against teacher inference. Each measurement runs in a fresh process so its peak memory is its own."""

from __future__ import annotations

import multiprocessing as mp
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    PreTrainedModel,
    TrainerCallback,
    TrainingArguments,
)

from distill.students import make_student
from distill.teacher_cache import with_teacher_logits
from distill.trainer import DistillationTrainer


def in_fresh_process(fn: Callable[..., dict], *args: Any) -> dict:
    """Run `fn(*args)` in a new process; add its peak resident memory (and GPU peak, if any)."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_measured, (fn, *args))


def _measured(fn: Callable[..., dict], *args: Any) -> dict:
    result = fn(*args)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if torch.cuda.is_available():
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _load(teacher_dir: str, layers: list[int] | None) -> tuple[PreTrainedModel, Any]:
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir)
    return (make_student(teacher, layers) if layers else teacher), tokenizer


def course_recipe_training(
    teacher_dir: str, layers: list[int], texts: list[str], labels: list[int], batch_size: int, steps: int
) -> dict:
    """The course notebook's loop, faithfully: the teacher runs on every batch, fp32, every text
    padded to 128 tokens, loss = (CE + KL at T=1 + cosine on logits) / 3, Adam at 5e-5."""
    device = _device()
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir).to(device).eval()
    student = make_student(teacher, layers).to(device).train()  # type: ignore[arg-type]
    optimizer = torch.optim.Adam(student.parameters(), lr=5e-5)
    cosine = torch.nn.CosineEmbeddingLoss()
    times = []
    for step in range(steps + 1):  # the first step warms up and is not timed
        start = step * batch_size % len(texts)
        batch = tokenizer(
            texts[start : start + batch_size],
            padding="max_length",
            max_length=128,
            truncation=True,
            return_tensors="pt",
        ).to(device)
        y = torch.tensor(labels[start : start + batch_size], device=device)
        _sync()
        began = time.perf_counter()
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
        _sync()
        if step:
            times.append(time.perf_counter() - began)
    return {"samples_per_second": batch_size * len(times) / sum(times)}


class _StepTimer(TrainerCallback):
    def __init__(self) -> None:
        self.times: list[float] = []
        self._began = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        _sync()
        self._began = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        _sync()
        if state.global_step > 1:  # the first step warms up
            self.times.append(time.perf_counter() - self._began)


def project_training(
    teacher_dir: str,
    layers: list[int],
    texts: list[str],
    labels: list[int],
    batch_size: int,
    steps: int,
    output_dir: str,
) -> dict:
    """distill.py's path: DistillationTrainer, cached teacher logits, dynamic padding, bf16 on GPUs."""
    teacher, tokenizer = _load(teacher_dir, None)
    data = Dataset.from_dict({"text": texts, "labels": labels})
    data = data.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=128), batched=True, remove_columns=["text"]
    )
    cache_began = time.perf_counter()
    data = with_teacher_logits(
        data,
        teacher.to(_device()),  # type: ignore[arg-type]
        tokenizer,
        128,
        f"{output_dir}/cache",
        batch_size=64,
    )
    cache_seconds = time.perf_counter() - cache_began
    args = TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=batch_size, max_steps=steps + 1, learning_rate=5e-5,
        save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True, logging_strategy="no",
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
    )  # fmt: skip
    timer = _StepTimer()
    trainer = DistillationTrainer(
        model=make_student(teacher, layers), teacher=teacher, args=args, train_dataset=data,
        data_collator=DataCollatorWithPadding(tokenizer), callbacks=[timer],
    )  # fmt: skip
    trainer.train()
    return {
        "samples_per_second": batch_size * len(timer.times) / sum(timer.times),
        "cache_seconds": cache_seconds,
        "cache_examples": len(texts),
    }


@torch.inference_mode()
def inference(
    teacher_dir: str, layers: list[int] | None, texts: list[str], batch_size: int, repeats: int
) -> dict:
    """Latency per batch and throughput, on short texts, dynamic padding, eval mode."""
    model, tokenizer = _load(teacher_dir, layers)
    model = model.to(_device()).eval()  # type: ignore[arg-type]
    batches = [texts[i : i + batch_size] for i in range(0, batch_size * repeats, batch_size)]

    def classify(batch: list[str]) -> None:
        model(
            **tokenizer(batch, padding=True, truncation=True, max_length=128, return_tensors="pt").to(
                _device()
            )
        )

    for batch in batches[:2]:  # warm-up
        classify(batch)
    latencies = []
    for batch in batches:
        _sync()
        began = time.perf_counter()
        classify(batch)
        _sync()
        latencies.append(time.perf_counter() - began)
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "samples_per_second": batch_size * len(latencies) / sum(latencies),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
