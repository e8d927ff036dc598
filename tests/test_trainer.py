"""distill.trainer: DistillationTrainer and the stock Trainer with ClassificationLoss, trained here in this
process on tiny models (learning rate above 0, a few steps): losses stay exact under gradient
accumulation, layer matching sees and moves what it should, the teacher is left alone, and evaluation
is plain cross-entropy."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import no_dropout_teacher, same_weights, toxic_rows
from datasets import Dataset
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from distill.data import PaddingCollator
from distill.students import make_student
from distill.teacher_cache import COLUMN, STATES, with_teacher_logits
from distill.trainer import ClassificationLoss, DistillationTrainer

pytestmark = pytest.mark.slow

WEIGHTS = [3.0, 0.5, 1.5]


def tokenized(tokenizer, n: int) -> Dataset:
    rows = toxic_rows(n)
    data = Dataset.from_dict({"text": list(rows["tweet"]), "labels": list(rows["class"])})
    return data.map(lambda b: tokenizer(b["text"], truncation=True, max_length=16), remove_columns=["text"])


EVEN, TOP = [2, 4, 6, 8, 10, 12], [1, 2, 3, 4, 5, 6]


def make_trainer(
    kind: str,
    tokenizer,
    tmp_path: Path,
    class_weights=None,
    layers=EVEN,
    train_dataset=None,
    pkd_weight=10.0,
    **args,
) -> Trainer:
    """A distillation ("distill", or "pkd": with layer matching to the layers copied) or a plain
    (teacher/LoRA-style) trainer of a 6-layer student, no dropout."""
    # Layer matching needs layers that change their input: at the default init (std 0.02) the residual
    # stream carries a random model's [CLS] state almost unchanged through every layer.
    teacher = no_dropout_teacher(initializer_range=0.2) if kind == "pkd" else no_dropout_teacher()
    student = make_student(teacher, layers)
    options = {
        "output_dir": str(tmp_path / "out"), "report_to": "none", "save_strategy": "no",
        "disable_tqdm": True, "use_cpu": True, "seed": 0, **args,
    }  # fmt: skip
    shared = {
        "args": TrainingArguments(**options),
        "train_dataset": tokenized(tokenizer, 8) if train_dataset is None else train_dataset,
        "eval_dataset": tokenized(tokenizer, 10),
        "data_collator": PaddingCollator(tokenizer),
    }
    if kind in ("distill", "pkd"):
        matching = {"pkd_weight": pkd_weight, "pkd_targets": layers} if kind == "pkd" else {}
        return DistillationTrainer(
            model=student,
            teacher=teacher,
            alpha=0.5,
            temperature=2.0,
            class_weights=class_weights,
            **matching,
            **shared,
        )
    loss = ClassificationLoss(student, class_weights, options.get("label_smoothing_factor", 0.0))
    return Trainer(model=student, compute_loss_func=loss, **shared)


@pytest.mark.parametrize("kind", ["distill", "pkd", "plain"])
@pytest.mark.parametrize("class_weights", [None, WEIGHTS])
def test_batch_of_8_equals_4_with_accumulation_2(kind, class_weights, tokenizer, tmp_path):
    # Plain SGD without clipping: the update is the gradient itself, so any wrong scale shows.
    step = {"max_steps": 1, "learning_rate": 0.5, "optim": "sgd", "max_grad_norm": 0.0, "weight_decay": 0.0}
    before = {k: v.clone() for k, v in make_trainer(kind, tokenizer, tmp_path).model.state_dict().items()}
    results = []
    for batch, accumulation in [(8, 1), (4, 2)]:
        trainer = make_trainer(
            kind,
            tokenizer,
            tmp_path,
            class_weights,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accumulation,
            **step,
        )
        output = trainer.train()
        results.append((trainer.model.state_dict(), output.training_loss))
    (big, big_loss), (accumulated, accumulated_loss) = results
    assert not torch.allclose(big["classifier.weight"], before["classifier.weight"])
    for key in big:
        torch.testing.assert_close(accumulated[key], big[key], atol=1e-6, rtol=0, msg=key)
    assert accumulated_loss == pytest.approx(big_loss, abs=1e-6)


# -- layer matching (Patient KD): what the term sees, that it trains, and that the cache changes nothing ---


def first_logged(trainer: Trainer, key: str) -> float:
    return next(e[key] for e in trainer.state.log_history if key in e)


@pytest.mark.parametrize(("layers", "at_zero"), [(TOP, True), (EVEN, False)])
def test_layer_matching_starts_at_zero_only_for_a_student_of_the_first_layers(
    layers, at_zero, tokenizer, tmp_path
):
    # Student layers 1..6 copied from teacher layers 1..6 see exactly the teacher's inputs: at learning
    # rate 0 (and without dropout) their [CLS] states are the teacher's. The even student's layer 1
    # is teacher layer 2 applied to the embeddings, not to layer 1's output.
    trainer = make_trainer(
        "pkd", tokenizer, tmp_path, layers=layers, max_steps=1, learning_rate=0.0, logging_steps=1,
        per_device_train_batch_size=8,
    )  # fmt: skip
    trainer.train()
    pkd = first_logged(trainer, "loss_pkd")
    assert pkd == 0.0 if at_zero else pkd > 1e-3


def test_layer_matching_moves_the_students_states_toward_the_teachers(tokenizer, tmp_path):
    # β large enough that the term leads: the states it compares are what the steps change first.
    trainer = make_trainer(
        "pkd", tokenizer, tmp_path, pkd_weight=1000.0, max_steps=8, learning_rate=1e-3, logging_steps=1,
        per_device_train_batch_size=8,
    )  # fmt: skip
    trainer.train()
    pkd = [e["loss_pkd"] for e in trainer.state.log_history if "loss_pkd" in e]
    assert len(pkd) == 8 and pkd[-1] < 0.5 * pkd[0], pkd


def test_cached_teacher_states_give_the_live_teachers_loss(tokenizer, tmp_path):
    live = make_trainer("pkd", tokenizer, tmp_path)
    cached_data = with_teacher_logits(
        tokenized(tokenizer, 8), live.teacher, tokenizer, 16, tmp_path / "cache", layers=EVEN
    )
    cached = make_trainer("pkd", tokenizer, tmp_path, train_dataset=cached_data)
    cached.teacher = None  # with every target cached, the teacher must not run
    batch = PaddingCollator(tokenizer)(list(cached_data))
    assert batch[STATES].shape == (8, 6, 32)
    without_cache = {k: v for k, v in batch.items() if k not in (COLUMN, STATES)}
    loss = {
        "live": live.compute_loss(live.model.train(), without_cache),
        "cached": cached.compute_loss(cached.model.train(), batch),
    }
    torch.testing.assert_close(loss["cached"], loss["live"], atol=1e-5, rtol=0)
    torch.testing.assert_close(cached._loss_sums["pkd"], live._loss_sums["pkd"], atol=1e-5, rtol=0)
    assert live._loss_sums["pkd"] > 0


def test_distillation_trains_the_student_and_leaves_the_teacher_alone(tokenizer, tmp_path):
    trainer = make_trainer(
        "distill",
        tokenizer,
        tmp_path,
        WEIGHTS,
        max_steps=3,
        learning_rate=1e-2,
        per_device_train_batch_size=4,
    )
    assert isinstance(trainer, DistillationTrainer)
    teacher_before = {k: v.clone() for k, v in trainer.teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    assert same_weights(trainer.teacher.state_dict(), teacher_before)
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, student_before[k])]
    assert "classifier.weight" in changed and any(".layer.0." in k for k in changed)


@pytest.mark.parametrize("kind", ["distill", "plain"])
def test_validation_loss_is_plain_cross_entropy_of_the_logits(kind, tokenizer, tmp_path):
    # Class weights and label smoothing shape the training loss only.
    trainer = make_trainer(
        kind, tokenizer, tmp_path, WEIGHTS, max_steps=2, learning_rate=1e-2,
        per_device_train_batch_size=4, per_device_eval_batch_size=4, label_smoothing_factor=0.2,
    )  # fmt: skip
    trainer.train()
    eval_loss = trainer.evaluate()["eval_loss"]
    data = trainer.eval_dataset
    batch = DataCollatorWithPadding(tokenizer)(
        [{k: data[i][k] for k in data.column_names} for i in range(10)]
    )
    model = trainer.model.eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert eval_loss == pytest.approx(F.cross_entropy(logits, batch["labels"]).item(), abs=1e-5)
