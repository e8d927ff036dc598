"""LoRA on a student: adapters on the attention's query and value projections, head fully trained."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from torch import nn
from transformers import PreTrainedModel

from distill.errors import UserError
from distill.layers import find_layer_list

# Query/value projection names by encoder family: BERT, RoBERTa, ELECTRA / MPNet / DistilBERT /
# DeBERTa / most decoder-style attention. peft's own table lacks MPNet and DistilBERT.
QUERY_VALUE_NAMES = (
    ("query", "value"),
    ("q", "v"),
    ("q_lin", "v_lin"),
    ("query_proj", "value_proj"),
    ("q_proj", "v_proj"),
)


def default_target_modules(model: PreTrainedModel) -> list[str]:
    """The query and value projection names of this encoder, found in its first layer."""
    _, layers = find_layer_list(model)
    linear_names = {
        name.rsplit(".", 1)[-1] for name, m in layers[0].named_modules() if isinstance(m, nn.Linear)
    }
    for pair in QUERY_VALUE_NAMES:
        if set(pair) <= linear_names:
            return list(pair)
    raise UserError(
        f"Cannot tell the query/value projections of {type(model).__name__} (its layer has linear modules "
        f"{sorted(linear_names)}): name them with --lora_target_modules."
    )


def add_lora(
    model: PreTrainedModel,
    *,
    r: int,
    alpha: int,
    dropout: float,
    target_modules: Sequence[str] | None = None,
) -> PeftModel:
    """Freeze `model` and add LoRA adapters; the classification head stays fully trainable (peft's
    SEQ_CLS task puts `classifier`/`score` in modules_to_save)."""
    if r < 1:
        raise UserError(f"--lora_r must be a positive rank, got {r}.")
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules) if target_modules else default_target_modules(model),
    )
    try:
        with warnings.catch_warnings():
            # peft reads transformers' deprecated `is_gradient_checkpointing` itself on every wrap: a
            # FutureWarning about its call, not ours, which a newcomer would take for a fault here.
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
            return get_peft_model(model, config)
    except ValueError as err:  # peft's message names the missing modules
        raise UserError(f"Cannot add LoRA to {type(model).__name__}: {err}") from err


def merge(model: PeftModel) -> PreTrainedModel:
    """Fold the adapters into the weights: a plain model that loads anywhere `from_pretrained` does."""
    return model.merge_and_unload()
