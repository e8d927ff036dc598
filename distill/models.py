"""Load tokenizers and classifiers, and refuse teachers that cannot teach."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from distill.errors import UserError


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        raise UserError(
            f"Cannot load a tokenizer from {name_or_path!r}: {_unknown_model(name_or_path, err)}"
        ) from err


def load_base_model(name_or_path: str, label_names: Sequence[str]) -> PreTrainedModel:
    """A pretrained encoder with a new classification head for `label_names`, ready to fine-tune."""
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            name_or_path, **label_config(label_names), use_safetensors=_safetensors(name_or_path)
        )
    except (OSError, ValueError) as err:
        raise UserError(f"Cannot load model {name_or_path!r}: {_unknown_model(name_or_path, err)}") from err


def load_trained_classifier(name_or_path: str, advice: str) -> PreTrainedModel:
    """A sequence classifier whose head was trained. Local folders load from safetensors only and no
    model code is ever run; errors name the model and end with `advice`."""
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            name_or_path,
            output_loading_info=True,
            use_safetensors=_safetensors(name_or_path),
            trust_remote_code=False,
        )
    except (OSError, ValueError) as err:
        raise UserError(f"Cannot load {name_or_path}: {_unknown_model(name_or_path, err)} {advice}") from err
    if info["missing_keys"]:
        missing = ", ".join(sorted(info["missing_keys"])[:4])
        raise UserError(
            f"{name_or_path} has no trained classification head (missing weights: {missing}): it is a bare "
            f"pretrained encoder, whose head would give random guesses. {advice}"
        )
    return model


def load_teacher(name_or_path: str, label_names: Sequence[str]) -> PreTrainedModel:
    """A fine-tuned classifier whose head was trained, and whose classes match the data's."""
    model = load_trained_classifier(
        name_or_path,
        f"Fine-tune a teacher first (python scripts/train_teacher.py --model_name_or_path {name_or_path}) "
        "and pass its folder with --teacher.",
    )
    if model.config.num_labels != len(label_names):
        raise UserError(
            f"The teacher {name_or_path!r} predicts {model.config.num_labels} classes, but the dataset has "
            f"{len(label_names)} ({', '.join(label_names)}). Use the dataset the teacher was trained on, "
            "or train a teacher on this one."
        )
    if all(name.isdigit() for name in label_names) and not _generic(model_label_names(model)):
        label_names = model_label_names(model)  # the data has only class numbers; the teacher knows names
    model.config.update(label_config(label_names))
    return model


def model_label_names(model: PreTrainedModel | Any) -> list[str]:
    """The class names a model (anything with a transformers `config`) was trained with, in class order."""
    id2label: dict = model.config.id2label or {}
    return [str(id2label[i]) for i in range(len(id2label))]


def _generic(names: Sequence[str]) -> bool:
    return all(name == f"LABEL_{i}" or name == str(i) for i, name in enumerate(names))


def label_config(label_names: Sequence[str]) -> dict:
    """Config fields that make `pipeline()` print real label names."""
    return {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: i for i, name in enumerate(label_names)},
    }


def count_parameters(model: PreTrainedModel) -> tuple[int, int]:
    """(all parameters, trainable parameters)."""
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _safetensors(name_or_path: str) -> bool | None:
    # A local folder must hold safetensors (pickle files can run code); Hub ids keep the library default.
    return True if Path(name_or_path).is_dir() else None


def _unknown_model(name_or_path: str, err: Exception) -> str:
    if Path(name_or_path).exists():
        return f"{err}"
    return (
        "it is not a local folder, and it could not be fetched from the Hugging Face Hub "
        f"({str(err).splitlines()[0]})."
    )
