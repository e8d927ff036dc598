"""`DistillationTrainer`: the stock Trainer with a loss that also listens to a frozen teacher."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, Trainer

from distill.losses import distillation_loss, hidden_cosine_loss
from distill.teacher_cache import COLUMN


class ClassWeightedTrainer(Trainer):
    """The stock Trainer, with optional per-class weights on the training cross-entropy.

    Evaluation keeps the model's own (unweighted) cross-entropy, so validation losses compare
    across runs with and without weights.
    """

    def __init__(self, *args: Any, class_weights: Sequence[float] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.class_weights = (
            torch.tensor(class_weights, dtype=torch.float32, device=self.args.device)
            if class_weights
            else None
        )
        if self.class_weights is not None:
            self.loss_is_scaled_for_ga = False  # our weighted CE is a per-batch mean

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        if self.class_weights is None or not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs["labels"]
        outputs = model(**{k: v for k, v in inputs.items() if k != "labels"})
        loss = F.cross_entropy(outputs.logits.float(), labels, weight=self.class_weights)
        return (loss, outputs) if return_outputs else loss


class DistillationTrainer(ClassWeightedTrainer):
    """Train a student on `alpha · KL(teacher ‖ student)·T² + (1 - alpha) · CE(student, labels)`,
    plus `cosine_weight` times a cosine loss between last hidden states when it is above 0.

    Everything else (loops, evaluation, checkpoints, logging, distributed training, mixed
    precision) is the Trainer's own. The teacher lives on the trainer, not in the model, so it is
    never saved, optimised or wrapped for data parallelism. Evaluation uses the student's plain
    cross-entropy, so validation losses compare across distilled, LoRA and teacher runs.

    When the training data has a `teacher_logits` column (see `distill.teacher_cache`), those
    logits are used and the teacher does not run; the cosine term still runs the teacher, since it
    needs hidden states that are too large to cache.
    """

    # compute_loss returns a per-batch mean; let the Trainer divide it over accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        *args: Any,
        teacher: PreTrainedModel,
        alpha: float = 0.5,
        temperature: float = 2.0,
        cosine_weight: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        student_dtype = next(self.model.parameters()).dtype  # type: ignore[union-attr]
        self.teacher = teacher.to(self.args.device, student_dtype).eval()  # type: ignore[arg-type]
        self.teacher.requires_grad_(False)
        self.alpha, self.temperature, self.cosine_weight = alpha, temperature, cosine_weight
        self._loss_sums: dict[str, torch.Tensor] = {}
        self._loss_count = 0

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        if not model.training:
            outputs = model(**inputs)
            return (outputs.loss, outputs) if return_outputs else outputs.loss

        labels = inputs["labels"]
        cached = inputs.get(COLUMN)
        features = {k: v for k, v in inputs.items() if k not in ("labels", COLUMN)}
        want_hidden = self.cosine_weight > 0
        outputs = model(**features, output_hidden_states=want_hidden)
        if cached is not None and not want_hidden:
            teacher_logits = cached
        else:  # no cache, or the cosine term needs the teacher's hidden states
            with torch.no_grad():
                teacher_outputs = self.teacher(**features, output_hidden_states=want_hidden)
            teacher_logits = teacher_outputs.logits

        loss, parts = distillation_loss(
            outputs.logits,
            teacher_logits,
            labels,
            alpha=self.alpha,
            temperature=self.temperature,
            class_weights=self.class_weights,
        )
        if want_hidden:
            cosine = hidden_cosine_loss(
                outputs.hidden_states[-1], teacher_outputs.hidden_states[-1], features["attention_mask"]
            )
            loss = loss + self.cosine_weight * cosine
            parts["cosine"] = cosine.detach()
        self._accumulate(parts)
        return (loss, outputs) if return_outputs else loss

    def _set_signature_columns_if_needed(self) -> None:
        # Keep the cached teacher logits when the Trainer drops columns the model does not take.
        super()._set_signature_columns_if_needed()
        if self._signature_columns is not None and COLUMN not in self._signature_columns:
            self._signature_columns.append(COLUMN)

    def _accumulate(self, parts: dict[str, torch.Tensor]) -> None:
        # Sum on the device; the only host sync is at logging time.
        for name, value in parts.items():
            self._loss_sums[name] = self._loss_sums.get(name, 0) + value
        self._loss_count += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._loss_count:
            for name, total in self._loss_sums.items():
                logs[f"loss_{name}"] = round(float(total) / self._loss_count, 4)
            self._loss_sums, self._loss_count = {}, 0
        super().log(logs, start_time)
