"""The training losses, plugged into the Trainer: `ClassificationLoss` for the stock `Trainer` (teacher
and LoRA runs), and `DistillationTrainer`, the stock Trainer with a loss that also listens to a frozen
teacher.

Both average over every example of an optimizer step (`num_items_in_batch`, which the Trainer counts
across gradient-accumulation micro-batches and processes), so accumulation and data parallelism give
the loss of one large batch. Both honour `--label_smoothing_factor`, which any custom loss would
otherwise bypass, and both evaluate with the plain cross-entropy of the logits, so validation losses
compare across runs with and without class weights or label smoothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel, Trainer

from distill.layers import num_layers
from distill.losses import classification_loss, distillation_loss, hidden_cosine_loss, layer_matching_loss
from distill.teacher_cache import COLUMN, STATES


class ClassificationLoss:
    """`Trainer(compute_loss_func=...)`: class-weighted, label-smoothed cross-entropy while `model`
    trains; plain cross-entropy when it is evaluated."""

    def __init__(
        self, model: nn.Module, class_weights: Sequence[float] | None = None, label_smoothing: float = 0.0
    ) -> None:
        # The Trainer hands the loss only outputs and labels; the model says whether this is training.
        self.model = model
        self.class_weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.label_smoothing = label_smoothing

    def __call__(
        self, outputs: Any, labels: torch.Tensor, num_items_in_batch: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        if not self.model.training:
            return classification_loss(outputs.logits, labels, num_items_in_batch=num_items_in_batch)
        weights = None if self.class_weights is None else self.class_weights.to(outputs.logits.device)
        return classification_loss(
            outputs.logits,
            labels,
            class_weights=weights,
            label_smoothing=self.label_smoothing,
            num_items_in_batch=num_items_in_batch,
        )


class DistillationTrainer(Trainer):
    """Train a student on `alpha · KL(teacher ‖ student)·T² + (1 - alpha) · CE(student, labels)`,
    plus `cosine_weight` times a cosine loss between last hidden states, and `pkd_weight` times layer
    matching (Patient KD: student layer i's [CLS] state against teacher layer `pkd_targets[i]`'s),
    each when its weight is above 0.

    Everything else (loops, evaluation, checkpoints, logging, distributed training, mixed
    precision) is the Trainer's own. The teacher lives on the trainer, not in the model, so it is
    never saved, optimised or wrapped for data parallelism; it runs under the same autocast as the
    student. When the training data has a `teacher_logits` column (and for layer matching a
    `teacher_cls` column; see `distill.teacher_cache`), those are used and the teacher does not run.
    The cosine term still runs the teacher: it compares every token's state, too large to cache.
    """

    # compute_loss divides by the examples of the whole optimizer step (num_items_in_batch).
    loss_is_scaled_for_ga = True

    def __init__(
        self,
        *args: Any,
        teacher: PreTrainedModel,
        alpha: float = 0.5,
        temperature: float = 2.0,
        cosine_weight: float = 0.0,
        pkd_weight: float = 0.0,
        pkd_targets: Sequence[int] | None = None,
        class_weights: Sequence[float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        student_layers = num_layers(self.model)  # type: ignore[arg-type]
        if pkd_weight > 0 and (pkd_targets is None or len(pkd_targets) != student_layers):
            raise ValueError(f"pkd_targets must name one teacher layer per student layer ({student_layers})")
        self.pkd_weight, self.pkd_targets = pkd_weight, list(pkd_targets or [])
        student_dtype = next(self.model.parameters()).dtype  # type: ignore[union-attr]
        self.teacher = teacher.to(self.args.device, student_dtype).eval()  # type: ignore[arg-type]
        self.teacher.requires_grad_(False)
        self.alpha, self.temperature, self.cosine_weight = alpha, temperature, cosine_weight
        self.class_weights = (
            torch.tensor(class_weights, dtype=torch.float32, device=self.args.device)
            if class_weights
            else None
        )
        self._loss_sums: dict[str, torch.Tensor] = {}
        self._parts_since = 0  # the global step before the first step the sums hold

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        labels = inputs["labels"]
        features = {k: v for k, v in inputs.items() if k not in ("labels", COLUMN, STATES)}
        if not model.training:
            outputs = model(**features)
            loss = classification_loss(outputs.logits, labels, num_items_in_batch=num_items_in_batch)
            loss = loss * self._process_scale(num_items_in_batch)
            return (loss, outputs) if return_outputs else loss

        cached, cached_states = inputs.get(COLUMN), inputs.get(STATES)
        want_hidden, want_states = self.cosine_weight > 0, self.pkd_weight > 0
        outputs = model(**features, output_hidden_states=want_hidden or want_states)
        if cached is not None and not want_hidden and (cached_states is not None or not want_states):
            teacher_logits = cached
        else:  # no cache, or a term needs hidden states that are not cached
            with torch.no_grad(), self.accelerator.autocast():
                teacher_outputs = self.teacher(**features, output_hidden_states=want_hidden or want_states)
            teacher_logits = teacher_outputs.logits

        loss, parts = distillation_loss(
            outputs.logits,
            teacher_logits,
            labels,
            alpha=self.alpha,
            temperature=self.temperature,
            class_weights=self.class_weights,
            label_smoothing=self.args.label_smoothing_factor,
            num_items_in_batch=num_items_in_batch,
        )
        if want_hidden:
            cosine = hidden_cosine_loss(
                outputs.hidden_states[-1],
                teacher_outputs.hidden_states[-1],
                features["attention_mask"],
                num_items_in_batch,
            )
            loss = loss + self.cosine_weight * cosine
            parts["cosine"] = cosine.detach()
        if want_states:
            # hidden_states[0] is the embeddings: student layer i's output is hidden_states[i], 1-based.
            student_cls = torch.stack([h[:, 0] for h in outputs.hidden_states[1:]], dim=1)
            teacher_cls = (
                cached_states
                if cached_states is not None
                else torch.stack([teacher_outputs.hidden_states[t][:, 0] for t in self.pkd_targets], dim=1)
            )
            pkd = layer_matching_loss(student_cls, teacher_cls, num_items_in_batch)
            loss = loss + self.pkd_weight * pkd
            parts["pkd"] = pkd.detach()
        scale = self._process_scale(num_items_in_batch)
        self._accumulate({name: value * scale for name, value in parts.items()})
        loss = loss * scale
        return (loss, outputs) if return_outputs else loss

    def _process_scale(self, num_items_in_batch: torch.Tensor | int | None) -> int:
        # What Trainer.compute_loss does for losses normalised by num_items_in_batch: that count spans
        # every process, and data parallelism averages gradients over processes, so scale back up.
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            return self.accelerator.num_processes
        return 1

    def _set_signature_columns_if_needed(self) -> None:
        # Keep the cached teacher logits when the Trainer drops columns the model does not take.
        super()._set_signature_columns_if_needed()
        if self._signature_columns is not None:
            self._signature_columns += [c for c in (COLUMN, STATES) if c not in self._signature_columns]

    def _accumulate(self, parts: dict[str, torch.Tensor]) -> None:
        # Sum on the device; the only host sync is at logging time. The sums count from the step they
        # started at, not from the last log: a resumed run starts them at its checkpoint's step.
        if not self._loss_sums:
            self._parts_since = self.state.global_step
        for name, value in parts.items():
            self._loss_sums[name] = self._loss_sums.get(name, 0) + value

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        steps = self.state.global_step - self._parts_since
        if "loss" in logs and self._loss_sums and steps > 0:
            # Each micro-batch's part is already its share of the step's mean: sum, then mean over steps.
            for name, total in self._loss_sums.items():
                logs[f"loss_{name}"] = round(float(total) / steps, 4)
            self._loss_sums = {}
        super().log(logs, start_time)
