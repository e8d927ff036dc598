"""The steps every run shares, as data in, data out: prepare data and models, train, select on
validation, evaluate on test once, and describe the run for results.json."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict
from transformers import (
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
    enable_full_determinism,
    set_seed,
)
from transformers.trainer_utils import PredictionOutput

from distill.args import DEFAULT_TEACHER, DataArguments
from distill.data import LENGTH, PaddingCollator, Splits, in_class_order, load_splits, tokenize
from distill.errors import UserError
from distill.hardware import device_facts
from distill.layers import parse_layers, parse_targets
from distill.metrics import confusion, make_compute_metrics
from distill.models import (
    check_teacher_classes,
    count_parameters,
    load_teacher,
    load_teacher_config,
    load_tokenizer,
    trained_class_names,
    weights_fingerprint,
)
from distill.precision import precision_name
from distill.results import RESULTS_FILE, write_results
from distill.resume import LogAtCheckpoints, RunClock, whole_run_metrics
from distill.teacher_cache import with_teacher_logits

logger = logging.getLogger(__name__)


def seed_run(training_args: TrainingArguments) -> None:
    """Seed Python, NumPy and torch before any model is built, as run_glue.py does: a new
    classification head and LoRA's adapters draw their initial weights from it, and the Trainer
    seeds only later. With --full_determinism, also make torch's kernels deterministic."""
    if training_args.full_determinism:
        enable_full_determinism(training_args.seed)
    else:
        set_seed(training_args.seed)


@dataclasses.dataclass
class StudentSetup:
    """What a student run (distilled or LoRA) starts from."""

    splits: Splits
    data: DatasetDict  # tokenized
    tokenizer: PreTrainedTokenizerBase
    teacher: PreTrainedModel
    layers: list[int]  # 1-based teacher layers
    pkd_targets: list[int]  # the teacher layer each student layer matches (layer matching), 1-based
    teacher_fingerprint: str  # the teacher's weights as loaded (`weights_fingerprint`), before training


def prepare_student_run(
    teacher: str, layers: str, data_args: DataArguments, pkd_targets: str | None = None
) -> StudentSetup:
    """Load and check data, teacher, layer choice and layer-matching targets before anything is
    written; the layers first, from the teacher's config alone, before the data and the weights load."""
    config = load_teacher_config(teacher, DEFAULT_TEACHER)
    chosen = parse_layers(layers, int(config.num_hidden_layers))
    targets = parse_targets(pkd_targets, chosen, int(config.num_hidden_layers))
    splits = splits_for_teacher(teacher, config, data_args.split_options())
    model = load_teacher(teacher, splits.label_names, data_args.non_toxic_label)
    tokenizer = load_tokenizer(teacher, data_args.max_length)
    return StudentSetup(
        splits,
        tokenize(splits.data, tokenizer, data_args.max_length),
        tokenizer,
        model,
        chosen,
        targets,
        weights_fingerprint(model),
    )


def splits_for_teacher(teacher: str, config: PretrainedConfig, split_options: dict[str, Any]) -> Splits:
    """The data (`distill.data.load_splits` options) with its labels in the teacher's class order,
    which its head and soft labels answer in; refused when the classes differ."""
    splits = load_splits(**split_options)
    check_teacher_classes(teacher, config, splits.label_names)
    return in_class_order(splits, trained_class_names(config), f"the teacher {teacher!r}")


def attach_teacher_logits(
    setup: StudentSetup,
    teacher: str,
    training_args: TrainingArguments,
    max_length: int,
    cache_dir: str | None = None,
    states: bool = False,
) -> None:
    """Give the training split the teacher's cached logits, and with `states` the [CLS] states of the
    layers the student matches (computed by the main process first).

    The cache lives in the teacher's folder by default, so every student of one teacher shares it.
    """
    if cache_dir is None:
        home = Path(teacher) if Path(teacher).is_dir() else Path(str(training_args.output_dir)).parent
        cache_dir = str(home / ".logit-cache")
    with training_args.main_process_first(desc="teacher logits"):
        setup.data["train"] = with_teacher_logits(
            setup.data["train"],
            setup.teacher.to(training_args.device),  # type: ignore[arg-type]
            setup.tokenizer,
            max_length,
            cache_dir,
            batch_size=training_args.per_device_eval_batch_size,
            precision=precision_name(training_args.mixed_precision),
            layers=setup.pkd_targets if states else None,
        )


def trainer_inputs(data: DatasetDict, tokenizer: PreTrainedTokenizerBase, label_names: list[str]) -> dict:
    """The Trainer arguments every run shares: data, dynamic padding and metrics."""
    return {
        "train_dataset": data["train"],
        "eval_dataset": data["validation"],
        "processing_class": tokenizer,
        "data_collator": PaddingCollator(tokenizer),
        "compute_metrics": make_compute_metrics(label_names),
    }


def train_and_evaluate(
    trainer: Trainer, test_dataset: Dataset, resume_from_checkpoint: str | bool | None
) -> dict:
    """Train (resuming if asked), then evaluate the selected model on validation and on test.

    With `load_best_model_at_end` the model left in the trainer is the checkpoint with the best
    validation metric; the test split is touched only here, once, after that choice.
    """
    num_parameters, trainable_parameters = count_parameters(trainer.model)  # type: ignore[arg-type]
    clock = RunClock()
    trainer.add_callback(clock)
    trainer.add_callback(LogAtCheckpoints())
    train_output = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    # After a resume the Trainer's figures cover only this attempt; results.json holds the whole run's.
    train_metrics = whole_run_metrics(
        train_output.metrics, trainer.state.log_history, clock, trainer.state.global_step
    )
    eval_metrics = trainer.evaluate()
    prediction = predict_in_order(trainer, test_dataset, metric_key_prefix="test")
    assert prediction.label_ids is not None
    logits = np.asarray(
        prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    )
    return {
        **train_metrics,
        **eval_metrics,
        **(prediction.metrics or {}),
        "test_confusion_matrix": confusion(
            np.asarray(prediction.label_ids), np.argmax(logits, -1), logits.shape[-1]
        ),
        "best_checkpoint": trainer.state.best_model_checkpoint,
        # What ran, read from the accelerator: flags, accelerate config and environment all end there.
        "precision": precision_name(trainer.accelerator.mixed_precision),
        "device": device_facts(trainer.args.device),
        "num_parameters": num_parameters,
        "trainable_parameters": trainable_parameters,
        "log_history": trainer.state.log_history,
    }


def predict_in_order(trainer: Trainer, dataset: Dataset, metric_key_prefix: str = "test") -> PredictionOutput:
    """`trainer.predict` in length-sorted batches, with row i of the output for row i of `dataset`.

    transformers 5 applies `train_sampling_strategy` to evaluation too, so with length grouping (our
    default) `Trainer.predict` returns rows in its own shuffled order. Here the data is sorted once by
    its `length` column, read in that order, and each row put back where it came from.
    """
    if LENGTH not in dataset.column_names or trainer.args.dataloader_drop_last:
        # No lengths to sort by; or rows would be dropped, so no output row could be matched to its own.
        return trainer.predict(dataset, metric_key_prefix=metric_key_prefix)
    order = np.argsort(np.asarray(dataset[LENGTH]), kind="stable")
    strategy = trainer.args.train_sampling_strategy
    trainer.args.train_sampling_strategy = "sequential"
    try:
        output = trainer.predict(dataset.select(order), metric_key_prefix=metric_key_prefix)
    finally:
        trainer.args.train_sampling_strategy = strategy
    back = np.argsort(order)
    return PredictionOutput(
        predictions=_rows_in(output.predictions, back),
        label_ids=_rows_in(output.label_ids, back),
        metrics=output.metrics,
    )


def _rows_in(value: Any, order: np.ndarray) -> Any:
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(_rows_in(v, order) for v in value)
    return np.asarray(value)[order]


def check_output_dir(training_args: TrainingArguments) -> None:
    """Refuse to train into a folder that holds a finished run, unless asked to overwrite it."""
    finished = Path(str(training_args.output_dir)) / RESULTS_FILE
    if finished.exists() and not getattr(training_args, "overwrite_output_dir", False):
        raise UserError(
            f"{training_args.output_dir} already holds a finished run ({RESULTS_FILE}). Pass "
            "--overwrite_output_dir to replace it, or choose another --output_dir."
        )


# What only resuming reads; a checkpoint of a finished run keeps its weights and trainer state.
RESUME_ONLY = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state*.pth")


def drop_resume_state(output_dir: str | Path) -> int:
    """Delete the optimizer, scheduler, scaler and RNG states of a finished run's checkpoints, which
    only resuming needs (AdamW's state alone is twice the weights); return the bytes freed."""
    freed = 0
    for checkpoint in Path(output_dir).glob("checkpoint-*"):
        for pattern in RESUME_ONLY:
            for path in checkpoint.glob(pattern):
                freed += path.stat().st_size
                path.unlink()
    return freed


def save_run(output_dir: str, results: dict, training_args: TrainingArguments) -> Path:
    """Write results.json, drop the checkpoints' resume-only state, and with --push_to_hub publish the
    run with this project's model card: the one upload of the run (RunArguments keeps the Trainer
    from pushing on its own)."""
    path = write_results(output_dir, results)
    if freed := drop_resume_state(output_dir):
        logger.info(
            "Run finished: freed %.0f MB of optimizer and scheduler states in checkpoints", freed / 2**20
        )
    if getattr(training_args, "publish_to_hub", False):
        from distill.hub import publish

        repo_id = training_args.hub_model_id or ""
        publish(
            output_dir, repo_id, token=training_args.hub_token, private=bool(training_args.hub_private_repo)
        )
        logger.info("Published %s to https://huggingface.co/%s", output_dir, repo_id)
    return path


def closing_line(what: str, results: dict, saved_to: Path) -> str:
    """A finished run in one line: its test scores, then what ran (precision, training examples,
    epochs, wall time of training over every attempt), then where it went."""
    minutes = float(results.get("train_runtime") or 0) / 60
    attempts = int(results.get("train_attempts") or 1)
    return (
        f"{what}: test accuracy {results['test_accuracy']:.4f}, test macro-F1 {results['test_macro_f1']:.4f}; "
        f"{results['precision']}, {results['split_sizes']['train']:,} training examples × "
        f"{float(results.get('epoch') or 0):g} epoch(s), {minutes:.1f} min of training"
        + (f" over {attempts} attempts" if attempts > 1 else "")
        + f"; saved to {saved_to}"
    )


def run_record(
    *,
    method: str,
    splits: Splits,
    training_args: TrainingArguments,
    arguments: list[Any],
    layers: list[int] | None,
    teacher: str | None,
    teacher_fingerprint: str | None,
    dataset: str,
    class_weights: list[float] | None,
) -> dict:
    """What a results.json says about where a run came from, beside its metrics."""
    return {
        "method": method,
        "layers": layers,
        "teacher": teacher,
        # Which weights, not only which folder: a teacher retrained into the same folder differs.
        "teacher_fingerprint": teacher_fingerprint,
        # Known only now: whether the teacher was a local folder or a Hub model (for base_model in cards).
        "teacher_on_hub": teacher is not None and not Path(teacher).exists(),
        "dataset": dataset,
        "seed": training_args.seed,
        "world_size": training_args.world_size,
        "class_weights": class_weights,
        **split_facts(splits),
        "arguments": {
            **{k: v for a in arguments for k, v in dataclasses.asdict(a).items()},
            "training": training_args.to_dict(),
        },
    }


def split_facts(splits: Splits) -> dict:
    """What results.json records about the data a run saw, so runs on different test sets never mix."""
    return {
        "label_names": splits.label_names,
        "test_split_hash": splits.test_hash,
        "num_duplicates": splits.num_duplicates,
        "held_out_duplicates_dropped": splits.held_out_duplicates,
        "validation_also_in_test": splits.validation_also_in_test,
        "split_sizes": {name: len(split) for name, split in splits.data.items()},
    }
