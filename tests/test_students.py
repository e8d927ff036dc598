"""distill.students: a student is a copy of the named teacher layers, sharing no memory with its teacher."""

import pytest
import torch
from conftest import tiny_config
from transformers import (
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    MPNetConfig,
    MPNetForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
)

from distill.layers import find_layer_list, parse_layers
from distill.students import make_student


def _teachers():
    torch.manual_seed(0)
    yield BertForSequenceClassification(tiny_config())
    yield MPNetForSequenceClassification(tiny_config(MPNetConfig))
    yield RobertaForSequenceClassification(tiny_config(RobertaConfig, pad_token_id=1))
    yield DistilBertForSequenceClassification(
        DistilBertConfig(vocab_size=100, n_layers=12, dim=32, hidden_dim=37, n_heads=2, num_labels=3)
    )


TEACHERS = list(_teachers())


def assert_same_tensors(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize("teacher", TEACHERS, ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("spec", ["odd", "even", "top", "bottom", "2,5,11"])
def test_student_layers_are_exactly_the_named_teacher_layers(teacher, spec):
    layers = parse_layers(spec, 12)
    student = make_student(teacher, layers)

    assert student.config.num_hidden_layers == len(layers)
    _, teacher_layers = find_layer_list(teacher)
    _, student_layers = find_layer_list(student, len(layers))
    assert len(student_layers) == len(layers)
    for i, layer in enumerate(layers):
        assert_same_tensors(student_layers[i], teacher_layers[layer - 1])
    # Everything outside the layer stack (embeddings, pooler, head) is the teacher's.
    teacher_state = teacher.state_dict()
    prefix = find_layer_list(teacher)[0]
    for key, value in student.state_dict().items():
        if not key.startswith(prefix + "."):
            assert torch.equal(value, teacher_state[key]), key


def test_students_share_no_memory_with_the_teacher_or_each_other():
    teacher = TEACHERS[0]
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    odd, odd_again = make_student(teacher, [1, 3, 5, 7, 9, 11]), make_student(teacher, [1, 3, 5, 7, 9, 11])
    with torch.no_grad():
        for p in odd.parameters():
            p.add_(1.0)
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert_same_tensors(odd_again, make_student(teacher, [1, 3, 5, 7, 9, 11]))
    assert not torch.equal(odd.classifier.weight, odd_again.classifier.weight)


def test_student_runs_and_is_smaller():
    teacher = TEACHERS[0]
    student = make_student(teacher, parse_layers("even", 12))
    ids = torch.tensor([[101, 7592, 102]])
    assert student(input_ids=ids).logits.shape == (1, 3)
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in teacher.parameters())
