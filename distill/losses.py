"""Distillation losses, as plain functions of tensors so they can be checked by hand."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from distill.errors import UserError


def soft_target_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """KL(softmax(t/T) || softmax(s/T)) * T², averaged over the batch (Hinton et al., 2015).

    The T² keeps the gradient scale of the soft term independent of the temperature.
    """
    t = temperature
    return (
        F.kl_div(
            F.log_softmax(student_logits / t, dim=-1),
            F.log_softmax(teacher_logits / t, dim=-1),
            reduction="batchmean",
            log_target=True,
        )
        * t**2
    )


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    alpha: float,
    temperature: float,
    class_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """alpha · KL·T² + (1 - alpha) · CE (class-weighted if given), and both terms for logging."""
    kl = soft_target_loss(student_logits.float(), teacher_logits.float(), temperature)
    ce = F.cross_entropy(student_logits.float(), labels, weight=class_weights)
    return alpha * kl + (1 - alpha) * ce, {"kl": kl.detach(), "ce": ce.detach()}


def hidden_cosine_loss(
    student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """1 - cosine similarity of the last hidden states, averaged over real (unpadded) tokens (DistilBERT)."""
    cosine = F.cosine_similarity(student_hidden.float(), teacher_hidden.float(), dim=-1)
    mask = attention_mask.to(cosine.dtype)
    return ((1 - cosine) * mask).sum() / mask.sum().clamp(min=1)


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
