"""Teacher outputs, computed once and reused: the logits, and for layer matching the [CLS] states of
the matched teacher layers.

A frozen teacher in eval mode gives the same outputs for the same input every time, so running it
on every batch of every epoch of every student repeats the same work. The logits are computed once
per (teacher weights, tokenized training split, max length, precision), stored as safetensors under a
key that hashes those four, and attached to the training data as a `teacher_logits` column. The [CLS]
states of the layers a student matches (`distill.losses.layer_matching_loss`) are stored beside them
under a key that also names those layers, and attached as a `teacher_cls` column.

They are computed in the precision the student trains in (bf16 or fp16 autocast, or fp32), as the
live teacher of `DistillationTrainer` runs, so a cached run and an uncached one see the same targets.
The states are stored in that precision too (6 layers × 768 values a tweet: 180 MB in bf16 for the
Davidson training split), and in fp32 exactly.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import torch
from datasets import Dataset
from safetensors.torch import load_file, save
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding, PreTrainedModel, PreTrainedTokenizerBase

from distill.data import LENGTH
from distill.results import atomic_write

logger = logging.getLogger(__name__)

COLUMN = "teacher_logits"
STATES = "teacher_cls"  # the matched teacher layers' [CLS] states


def model_fingerprint(model: PreTrainedModel) -> str:
    """A hash of every weight: any change to the teacher gives another cache key."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cache_key(
    teacher: PreTrainedModel,
    dataset: Dataset,
    max_length: int,
    precision: str = "fp32",
    layers: Sequence[int] | None = None,
) -> str:
    """Hash of the teacher's weights, the tokenized split (which fixes texts, order and tokenizer), max
    length, the precision the outputs are computed in, and the teacher layers whose states are kept."""
    digest = hashlib.sha256(model_fingerprint(teacher).encode())
    for ids in dataset["input_ids"]:
        digest.update(torch.tensor(ids, dtype=torch.int32).numpy().tobytes())
        digest.update(b"|")
    digest.update(str(max_length).encode())
    if precision != "fp32":  # fp32 keys stay those of caches written before precision was keyed
        digest.update(precision.encode())
    if layers:  # logits-only keys stay those of caches written before states were kept
        digest.update(f"layers {','.join(map(str, layers))}".encode())
    return digest.hexdigest()[:20]


@torch.inference_mode()
def compute_teacher_outputs(
    teacher: PreTrainedModel,
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int = 64,
    precision: str = "fp32",
    layers: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Teacher logits (float32) for every row of `dataset`, in the dataset's order, on the CPU; with
    `layers` (1-based) also the [CLS] state of each of those layers, `(rows, layers, hidden)`, in the
    dtype of `precision`.

    The rows run in batches sorted by length, so batches hold little padding, and each row's outputs
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
    dtype = AUTOCAST_DTYPES.get(precision)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    logits, states = [], []
    with autocast:
        for batch in tqdm(loader, desc="Teacher outputs", unit="batch"):
            out = teacher(**{k: v.to(device) for k, v in batch.items()}, output_hidden_states=bool(layers))
            logits.append(out.logits.float().cpu())
            if layers:
                # hidden_states[0] is the embeddings, so layer t's output is hidden_states[t].
                cls = torch.stack([out.hidden_states[t][:, 0] for t in layers], dim=1)
                states.append(cls.to(dtype or torch.float32).cpu())
    teacher.train(was_training)
    back = torch.argsort(order)
    return torch.cat(logits)[back], torch.cat(states)[back] if layers else None


def with_teacher_logits(
    dataset: Dataset,
    teacher: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    cache_dir: str | Path,
    batch_size: int = 64,
    precision: str = "fp32",
    layers: Sequence[int] | None = None,
) -> Dataset:
    """`dataset` plus a `teacher_logits` column, and with `layers` a `teacher_cls` column of those
    layers' [CLS] states: read from the cache, or computed (in one pass) and stored there."""
    paths = {
        "logits": Path(cache_dir)
        / f"teacher-logits-{cache_key(teacher, dataset, max_length, precision)}.safetensors"
    }
    if layers:
        key = cache_key(teacher, dataset, max_length, precision, layers)
        paths["states"] = Path(cache_dir) / f"teacher-cls-{key}.safetensors"
    if all(path.exists() for path in paths.values()):
        found = {name: load_file(str(path))[name] for name, path in paths.items()}
        logger.info("Teacher outputs (%s) for %d examples read from %s", precision, len(dataset), cache_dir)
    else:
        logits, states = compute_teacher_outputs(teacher, dataset, tokenizer, batch_size, precision, layers)
        found = {"logits": logits} if states is None else {"logits": logits, "states": states}
        for name, path in paths.items():
            # Through a temporary file of its own: a killed run leaves no half cache, and two students
            # of one teacher started together each write whole files instead of renaming one shared name.
            atomic_write(path, save({name: found[name]}))
        logger.info("Teacher outputs (%s) for %d examples cached in %s", precision, len(dataset), cache_dir)
    for name, tensor in found.items():
        if len(tensor) != len(dataset):
            raise RuntimeError(
                f"{paths[name]} holds {len(tensor)} rows for {len(dataset)} examples; delete it to rebuild."
            )
    dataset = dataset.add_column(COLUMN, _arrow_rows(found["logits"]))
    if "states" in found:
        dataset = dataset.add_column(STATES, _arrow_rows(found["states"]))
    return dataset


def _arrow_rows(rows: torch.Tensor) -> pa.Array:
    """One Arrow value per row of `rows` (float32, fixed-size lists): built from the buffer in one go,
    where `tolist()` would make a Python float of each of the ~10^8 states of a full corpus."""
    array: pa.Array = pa.array(rows.float().numpy().ravel())
    for size in reversed(rows.shape[1:]):
        array = pa.FixedSizeListArray.from_arrays(array, size)
    return array
