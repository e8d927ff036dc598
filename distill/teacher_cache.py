"""Teacher logits, computed once and reused.

A frozen teacher in eval mode gives the same logits for the same input every time, so running it
on every batch of every epoch of every student repeats the same work. The logits are computed once
per (teacher weights, tokenized training split, max length, precision), stored as safetensors under a
key that hashes those four, and attached to the training data as a `teacher_logits` column.

They are computed in the precision the student trains in (bf16 or fp16 autocast, or fp32), as the
live teacher of `DistillationTrainer` runs, so a cached run and an uncached one see the same targets.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path

import torch
from datasets import Dataset
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding, PreTrainedModel, PreTrainedTokenizerBase

from distill.data import LENGTH

logger = logging.getLogger(__name__)

COLUMN = "teacher_logits"


def model_fingerprint(model: PreTrainedModel) -> str:
    """A hash of every weight: any change to the teacher gives another cache key."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cache_key(teacher: PreTrainedModel, dataset: Dataset, max_length: int, precision: str = "fp32") -> str:
    """Hash of the teacher's weights, the tokenized split (which fixes texts, order and tokenizer), max
    length and the precision the logits are computed in."""
    digest = hashlib.sha256(model_fingerprint(teacher).encode())
    for ids in dataset["input_ids"]:
        digest.update(torch.tensor(ids, dtype=torch.int32).numpy().tobytes())
        digest.update(b"|")
    digest.update(str(max_length).encode())
    if precision != "fp32":  # fp32 keys stay those of caches written before precision was keyed
        digest.update(precision.encode())
    return digest.hexdigest()[:20]


@torch.inference_mode()
def compute_teacher_logits(
    teacher: PreTrainedModel,
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int = 64,
    precision: str = "fp32",
) -> torch.Tensor:
    """Teacher logits for every row of `dataset`, in the dataset's order, as float32 on the CPU.

    The rows run in batches sorted by length, so batches hold little padding, and each row's logits
    are put back at its own index. Under bf16/fp16 autocast when `precision` says so.
    """
    columns = [c for c in ("input_ids", "token_type_ids", "attention_mask") if c in dataset.column_names]
    lengths = (
        dataset[LENGTH] if LENGTH in dataset.column_names else [len(ids) for ids in dataset["input_ids"]]
    )
    order = torch.argsort(torch.tensor(lengths), stable=True)
    loader = DataLoader(
        dataset.select_columns(columns).select(order.tolist()),
        batch_size=batch_size,
        collate_fn=DataCollatorWithPadding(tokenizer),
    )
    was_training = teacher.training
    teacher.eval()
    device = next(teacher.parameters()).device
    autocast = (
        torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])
        if precision in AUTOCAST_DTYPES
        else contextlib.nullcontext()
    )
    with autocast:
        sorted_logits = torch.cat(
            [
                teacher(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu()
                for batch in tqdm(loader, desc="Teacher logits", unit="batch")
            ]
        )
    teacher.train(was_training)
    logits = torch.empty_like(sorted_logits)
    logits[order] = sorted_logits
    return logits


def with_teacher_logits(
    dataset: Dataset,
    teacher: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    cache_dir: str | Path,
    batch_size: int = 64,
    precision: str = "fp32",
) -> Dataset:
    """`dataset` plus a `teacher_logits` column, read from the cache or computed and stored there."""
    key = cache_key(teacher, dataset, max_length, precision)
    path = Path(cache_dir) / f"teacher-logits-{key}.safetensors"
    if path.exists():
        logits = load_file(str(path))["logits"]
        logger.info("Teacher logits (%s) for %d examples read from %s", precision, len(logits), path)
    else:
        logits = compute_teacher_logits(teacher, dataset, tokenizer, batch_size, precision)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".partial")  # renamed when complete: a killed run leaves no half cache
        save_file({"logits": logits}, str(tmp))
        os.replace(tmp, path)
        logger.info("Teacher logits (%s) for %d examples cached in %s", precision, len(logits), path)
    if len(logits) != len(dataset):
        raise RuntimeError(
            f"{path} holds {len(logits)} rows for {len(dataset)} examples; delete it to rebuild."
        )
    return dataset.add_column(COLUMN, logits.tolist())
