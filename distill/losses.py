"""Distillation losses, as plain functions of tensors so they can be checked by hand."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from distill.errors import UserError


def step_size(labels: torch.Tensor, num_items_in_batch: torch.Tensor | int | None) -> torch.Tensor | int:
    """The examples a loss is averaged over: the whole optimizer step when the Trainer counted it
    (every micro-batch of gradient accumulation, on every process), else this batch alone."""
    return labels.numel() if num_items_in_batch is None else num_items_in_batch


def classification_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    class_weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    num_items_in_batch: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """Cross-entropy, summed over the batch and divided by the examples of the optimizer step.

    With class weights each example counts `w_label` times, divided by the example count rather than
    by the batch's sum of weights: so the loss of 2 × 4 examples under gradient accumulation (or on
    2 processes) is exactly the loss of 1 × 8. Balanced weights average 1 over the training data, so
    the loss keeps the scale of plain cross-entropy.
    """
    per_example = F.cross_entropy(
        logits.float(), labels, weight=class_weights, label_smoothing=label_smoothing, reduction="none"
    )
    return per_example.sum() / step_size(labels, num_items_in_batch)


def soft_target_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float,
    num_items_in_batch: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """KL(softmax(t/T) || softmax(s/T)) * T², averaged over the examples of the optimizer step
    (Hinton et al., 2015).

    The T² keeps the gradient scale of the soft term independent of the temperature.
    """
    t = temperature
    kl = F.kl_div(
        F.log_softmax(student_logits.float() / t, dim=-1),
        F.log_softmax(teacher_logits.float() / t, dim=-1),
        reduction="sum",
        log_target=True,
    )
    return kl * t**2 / step_size(student_logits[:, 0], num_items_in_batch)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    alpha: float,
    temperature: float,
    class_weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    num_items_in_batch: torch.Tensor | int | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """alpha · KL·T² + (1 - alpha) · CE, both averaged over the optimizer step's examples, and both
    terms for logging. The CE term is `classification_loss`: class-weighted and label-smoothed if asked."""
    kl = soft_target_loss(student_logits, teacher_logits, temperature, num_items_in_batch)
    ce = classification_loss(
        student_logits,
        labels,
        class_weights=class_weights,
        label_smoothing=label_smoothing,
        num_items_in_batch=num_items_in_batch,
    )
    return alpha * kl + (1 - alpha) * ce, {"kl": kl.detach(), "ce": ce.detach()}


def hidden_cosine_loss(
    student_hidden: torch.Tensor,
    teacher_hidden: torch.Tensor,
    attention_mask: torch.Tensor,
    num_items_in_batch: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """1 - cosine similarity of the last hidden states (DistilBERT): each example's mean over its real
    (unpadded) tokens, averaged over the examples of the optimizer step."""
    cosine = F.cosine_similarity(student_hidden.float(), teacher_hidden.float(), dim=-1)
    mask = attention_mask.to(cosine.dtype)
    per_example = ((1 - cosine) * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return per_example.sum() / step_size(per_example, num_items_in_batch)


def layer_matching_loss(
    student_cls: torch.Tensor,
    teacher_cls: torch.Tensor,
    num_items_in_batch: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """Patient KD (Sun et al., 2019): the MSE between L2-normalised [CLS] (first-token) states of
    matched student and teacher layers, `(batch, layers, hidden)` each. Per example the mean over its
    layers and hidden units (PKD's `F.mse_loss` over one batch), averaged over the optimizer step's
    examples."""
    student = F.normalize(student_cls.float(), dim=-1)
    teacher = F.normalize(teacher_cls.float(), dim=-1)
    per_example = (student - teacher).pow(2).mean(dim=(-2, -1))
    return per_example.sum() / step_size(per_example, num_items_in_batch)


def class_weights(labels: Sequence[int], num_classes: int, spec: str) -> list[float] | None:
    """Per-class CE weights from the training labels: `none`, `balanced` (n / (K · n_k), as
    scikit-learn computes them), or an explicit comma list such as `4,1,1`."""
    spec = spec.strip().lower()
    if spec == "none":
        return None
    if spec == "balanced":
        counts = torch.bincount(torch.as_tensor(list(labels)), minlength=num_classes).double()
        if (counts == 0).any():
            missing = [i for i, c in enumerate(counts.tolist()) if c == 0]
            raise UserError(f"--class_weights balanced: classes {missing} have no training examples.")
        return (counts.sum() / (num_classes * counts)).tolist()
    try:
        weights = [float(w) for w in spec.split(",")]
    except ValueError:
        weights = []
    if len(weights) != num_classes or any(w <= 0 for w in weights):
        raise UserError(
            f"--class_weights {spec!r}: use none, balanced, or {num_classes} positive numbers separated by commas."
        )
    return weights
