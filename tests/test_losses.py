"""distill.losses: each training loss against a hand computation: soft targets, CE, their mix, cosine,
layer matching and class weights."""

import math

import pytest
import torch

from distill.errors import UserError
from distill.losses import (
    class_weights,
    classification_loss,
    distillation_loss,
    hidden_cosine_loss,
    layer_matching_loss,
    soft_target_loss,
)

STUDENT = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]])
TEACHER = torch.tensor([[1.0, 1.0, 0.0], [-1.0, 3.0, 0.5]])
LABELS = torch.tensor([0, 1])


def softmax(row, t):
    exps = [math.exp(x / t) for x in row]
    return [e / sum(exps) for e in exps]


def hand_kl(t: float) -> float:
    """KL(p_teacher || p_student) at temperature t, batch mean, times t²: written out by hand."""
    total = 0.0
    for s_row, t_row in zip(STUDENT.tolist(), TEACHER.tolist(), strict=True):
        p, q = softmax(t_row, t), softmax(s_row, t)
        total += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    return total / len(STUDENT) * t**2


def hand_ce() -> float:
    return (
        -sum(math.log(softmax(row, 1.0)[y]) for row, y in zip(STUDENT.tolist(), LABELS.tolist(), strict=True))
        / 2
    )


@pytest.mark.parametrize("t", [1.0, 2.0, 4.0])
def test_soft_target_loss_matches_hand_computation(t):
    assert soft_target_loss(STUDENT, TEACHER, t).item() == pytest.approx(hand_kl(t), rel=1e-5)


def test_alpha_zero_is_cross_entropy_and_alpha_one_is_scaled_kl():
    ce_only, _ = distillation_loss(STUDENT, TEACHER, LABELS, alpha=0.0, temperature=2.0)
    kl_only, _ = distillation_loss(STUDENT, TEACHER, LABELS, alpha=1.0, temperature=2.0)
    assert ce_only.item() == pytest.approx(hand_ce(), rel=1e-5)
    assert kl_only.item() == pytest.approx(hand_kl(2.0), rel=1e-5)


def test_mixed_loss_and_reported_parts():
    loss, parts = distillation_loss(STUDENT, TEACHER, LABELS, alpha=0.3, temperature=2.0)
    assert loss.item() == pytest.approx(0.3 * hand_kl(2.0) + 0.7 * hand_ce(), rel=1e-5)
    assert parts["kl"].item() == pytest.approx(hand_kl(2.0), rel=1e-5)
    assert parts["ce"].item() == pytest.approx(hand_ce(), rel=1e-5)


def test_kl_is_zero_when_student_matches_teacher():
    assert soft_target_loss(TEACHER, TEACHER, 2.0).item() == pytest.approx(0.0, abs=1e-7)


def test_cosine_loss_ignores_padding():
    student = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])
    teacher = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [-5.0, 5.0]]])
    mask = torch.tensor([[1, 1, 0]])
    # token 1: cos 1 -> 0; token 2: cos 0 -> 1; token 3 is padding. Mean over real tokens: 0.5.
    assert hidden_cosine_loss(student, teacher, mask).item() == pytest.approx(0.5)


def test_balanced_class_weights_match_hand_computation():
    # 6 examples, 3 classes with counts 3, 2, 1: weight_k = 6 / (3 * count_k)
    assert class_weights([0, 0, 0, 1, 1, 2], 3, "balanced") == pytest.approx([2 / 3, 1.0, 2.0])
    assert class_weights([0, 1], 2, "none") is None
    assert class_weights([0, 1, 2], 3, "4,1,1") == [4.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("spec", "message"), [("1,2", "3 positive numbers"), ("x", "3 positive"), ("0,1,1", "positive")]
)
def test_bad_class_weights(spec, message):
    with pytest.raises(UserError, match=message):
        class_weights([0, 1, 2], 3, spec)


def test_balanced_weights_need_every_class_in_training():
    with pytest.raises(UserError, match=r"classes \[2\] have no training examples"):
        class_weights([0, 1, 1], 3, "balanced")


def test_weighted_cross_entropy_matches_hand_computation():
    weights = torch.tensor([2.0, 0.5, 1.0])
    ce_only, parts = distillation_loss(
        STUDENT, TEACHER, LABELS, alpha=0.0, temperature=2.0, class_weights=weights
    )
    # Each example counts w_{y_i} times, over the example count: sum_i w_{y_i} * nll_i / n
    nll = [-math.log(softmax(row, 1.0)[y]) for row, y in zip(STUDENT.tolist(), LABELS.tolist(), strict=True)]
    w = [weights[y].item() for y in LABELS.tolist()]
    expected = sum(wi * li for wi, li in zip(w, nll, strict=True)) / len(nll)
    assert ce_only.item() == pytest.approx(expected, rel=1e-5)
    assert parts["ce"].item() == pytest.approx(expected, rel=1e-5)


def test_losses_split_over_micro_batches_add_up_to_the_whole_batch():
    """Gradient accumulation: each micro-batch divides by the step's example count, so the parts sum
    to the loss of the whole batch, with class weights and label smoothing too."""
    torch.manual_seed(0)
    student, teacher = torch.randn(8, 3), torch.randn(8, 3)
    labels = torch.tensor([0, 1, 2, 1, 1, 0, 2, 1])
    options = {"alpha": 0.4, "temperature": 2.0, "class_weights": torch.tensor([3.0, 0.5, 1.5])}
    options["label_smoothing"] = 0.1
    whole, _ = distillation_loss(student, teacher, labels, **options)
    halves = [
        distillation_loss(student[s], teacher[s], labels[s], num_items_in_batch=8, **options)[0]
        for s in (slice(0, 3), slice(3, 8))
    ]
    assert (halves[0] + halves[1]).item() == pytest.approx(whole.item(), rel=1e-6)
    mask = torch.ones(8, 4, dtype=torch.long)
    mask[0, 2:] = 0
    hs, ht = torch.randn(8, 4, 5), torch.randn(8, 4, 5)
    parts = [hidden_cosine_loss(hs[s], ht[s], mask[s], 8) for s in (slice(0, 3), slice(3, 8))]
    assert (parts[0] + parts[1]).item() == pytest.approx(hidden_cosine_loss(hs, ht, mask).item(), rel=1e-6)


def test_label_smoothing_mixes_in_the_uniform_target():
    eps = 0.3
    smoothed = classification_loss(STUDENT, LABELS, label_smoothing=eps).item()
    uniform = -sum(sum(math.log(p) for p in softmax(row, 1.0)) / 3 for row in STUDENT.tolist()) / len(STUDENT)
    assert smoothed == pytest.approx((1 - eps) * hand_ce() + eps * uniform, rel=1e-5)


def test_layer_matching_loss_is_the_mse_of_normalised_cls_states():
    student = torch.tensor([[[3.0, 4.0], [1.0, 0.0]], [[0.0, 2.0], [0.0, 5.0]]])  # 2 examples, 2 layers
    teacher = torch.tensor([[[4.0, 3.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 7.0]]])
    # Normalised: example 1, layer 1: (0.6, 0.8) vs (0.8, 0.6), squared error (0.04 + 0.04) / 2 = 0.04;
    # layer 2: (1, 0) vs (0, 1): (1 + 1) / 2 = 1. Example 2: the same directions, 0. Mean over the
    # layers: 0.52 and 0; over the examples: 0.26, and over a step of 4 examples (accumulation) 0.13.
    assert layer_matching_loss(student, teacher).item() == pytest.approx(0.26)
    assert layer_matching_loss(student, teacher, num_items_in_batch=4).item() == pytest.approx(0.13)
    assert layer_matching_loss(teacher * 3, teacher).item() == pytest.approx(0.0, abs=1e-7)
