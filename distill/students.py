"""Build a smaller student from chosen teacher layers: the one constructor for distillation and LoRA."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from transformers import PreTrainedModel

from distill.layers import find_layer_list, num_layers, to_zero_based


def make_student(teacher: PreTrainedModel, layers: Sequence[int]) -> PreTrainedModel:
    """A fresh model of the teacher's architecture with `len(layers)` layers.

    Student layer i is a copy of teacher layer `layers[i]` (1-based); embeddings, pooler and
    classification head are copies of the teacher's. Nothing is shared with the teacher or with
    any other student, so several students can be built and trained in one process.
    """
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    # (transformers wraps `.to` in a decorator that mypy misreads)
    student = type(teacher)(config).to(next(teacher.parameters()).dtype)  # type: ignore[arg-type]

    teacher_prefix, _ = find_layer_list(teacher, num_layers(teacher))
    student_prefix, _ = find_layer_list(student, len(layers))
    source = to_zero_based(layers)
    teacher_state = teacher.state_dict()

    state = {}
    for key in student.state_dict():
        if key.startswith(student_prefix + "."):
            index, rest = key[len(student_prefix) + 1 :].split(".", 1)
            key_in_teacher = f"{teacher_prefix}.{source[int(index)]}.{rest}"
        else:
            key_in_teacher = key
        state[key] = teacher_state[key_in_teacher].detach().clone()
    student.load_state_dict(state, strict=True)
    return student
