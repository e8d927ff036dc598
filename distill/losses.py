"""Distillation losses, as plain functions of tensors so they can be checked by hand."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """alpha · KL·T² + (1 - alpha) · CE, and both terms for logging."""
    kl = soft_target_loss(student_logits.float(), teacher_logits.float(), temperature)
    ce = F.cross_entropy(student_logits.float(), labels)
    return alpha * kl + (1 - alpha) * ce, {"kl": kl.detach(), "ce": ce.detach()}


def hidden_cosine_loss(
    student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """1 - cosine similarity of the last hidden states, averaged over real (unpadded) tokens (DistilBERT)."""
    cosine = F.cosine_similarity(student_hidden.float(), teacher_hidden.float(), dim=-1)
    mask = attention_mask.to(cosine.dtype)
    return ((1 - cosine) * mask).sum() / mask.sum().clamp(min=1)
