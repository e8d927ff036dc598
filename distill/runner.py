"""Train, select on validation, evaluate on test: the steps every run shares, as data in, data out."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
from datasets import Dataset
from transformers import Trainer, TrainingArguments

from distill.data import Splits
from distill.metrics import confusion
from distill.models import count_parameters

logger = logging.getLogger(__name__)


def train_and_evaluate(
    trainer: Trainer, test_dataset: Dataset, resume_from_checkpoint: str | bool | None
) -> dict:
    """Train (resuming if asked), then evaluate the selected model on validation and on test.

    With `load_best_model_at_end` the model left in the trainer is the checkpoint with the best
    validation metric; the test split is touched only here, once, after that choice.
    """
    num_parameters, trainable_parameters = count_parameters(trainer.model)  # type: ignore[arg-type]
    train_output = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    eval_metrics = trainer.evaluate()
    prediction = trainer.predict(test_dataset, metric_key_prefix="test")
    assert prediction.label_ids is not None
    logits = (
        prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    )
    num_labels = int(logits.shape[-1])
    return {
        **train_output.metrics,
        **eval_metrics,
        **(prediction.metrics or {}),
        "test_confusion_matrix": confusion(prediction.label_ids, np.argmax(logits, -1), num_labels),
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "num_parameters": num_parameters,
        "trainable_parameters": trainable_parameters,
        "log_history": trainer.state.log_history,
    }


def run_record(
    *,
    method: str,
    splits: Splits,
    training_args: TrainingArguments,
    arguments: list[Any],
    layers: list[int] | None,
    teacher: str | None,
    dataset: str,
) -> dict:
    """What a results.json says about where a run came from, beside its metrics."""
    return {
        "method": method,
        "layers": layers,
        "teacher": teacher,
        "dataset": dataset,
        "seed": training_args.seed,
        "world_size": training_args.world_size,
        "label_names": splits.label_names,
        "test_split_hash": splits.test_hash,
        "num_duplicates": splits.num_duplicates,
        "split_sizes": {name: len(split) for name, split in splits.data.items()},
        "arguments": {
            **{k: v for a in arguments for k, v in dataclasses.asdict(a).items()},
            "training": training_args.to_dict(),
        },
    }
