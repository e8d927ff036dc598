"""Load tokenizers and classifiers, and refuse teachers that cannot teach."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from distill.errors import UserError
from distill.labels import CONFIG_KEY, find_non_toxic_label, recorded_non_toxic_label
from distill.offline import hub_unreachable_reason

logger = logging.getLogger(__name__)

# Where transformers writes its table of missing and unexpected weights (its "LOAD REPORT") while
# loading a checkpoint.
LOAD_REPORT_LOGGER = "transformers.modeling_utils"


def load_tokenizer(name_or_path: str, max_length: int | None = None) -> PreTrainedTokenizerBase:
    """The tokenizer of `name_or_path`; given the run's `max_length`, it also carries that limit into
    the saved tokenizer_config.json, where the app (and `pipeline(..., truncation=True)`) read it:
    served as trained."""
    _from_hub(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        raise UserError(
            f"Cannot load a tokenizer from {name_or_path!r}: {_unknown_model(name_or_path, err)}"
        ) from err
    if max_length is not None:
        tokenizer.model_max_length = max_length
    return tokenizer


def load_base_model(
    name_or_path: str, label_names: Sequence[str], non_toxic_label: str | None = None
) -> PreTrainedModel:
    """A pretrained encoder with a new classification head for `label_names`, ready to fine-tune.

    transformers reports the new head's weights as MISSING in a table of a dozen lines, which is what
    fine-tuning expects: that report becomes one line here. Any other loading problem (encoder weights
    missing, sizes that differ) is reported as transformers writes it."""
    _from_hub(name_or_path)
    try:
        with _held_load_report() as report:
            model, info = AutoModelForSequenceClassification.from_pretrained(
                name_or_path,
                **label_config(label_names),
                use_safetensors=_safetensors(name_or_path),
                output_loading_info=True,
            )
    except (OSError, ValueError) as err:
        raise UserError(f"Cannot load model {name_or_path!r}: {_unknown_model(name_or_path, err)}") from err
    head = sorted({key.rsplit(".", 1)[0] for key in info["missing_keys"]})
    # Only the head is new when every missing weight lies outside the encoder and no size differs.
    new_head_only = bool(head) and not info["mismatched_keys"]
    new_head_only &= not any(key.startswith(f"{model.base_model_prefix}.") for key in info["missing_keys"])
    for record in report:  # everything else transformers said while loading, as it said it
        if not (new_head_only and "LOAD REPORT" in record.getMessage()):
            logging.getLogger(record.name).handle(record)
    if new_head_only:
        unused = len(info["unexpected_keys"])
        logger.info(
            "New classification head (%s): drawn from --seed and trained in this run%s.",
            ", ".join(head),
            f"; {unused} checkpoint weights a classifier does not use (its pooler or pretraining heads) "
            "are left out"
            if unused
            else "",
        )
    if non_toxic_label is not None:
        # Set on the config, not passed above: from_pretrained hands keys the config does not know to the model.
        setattr(model.config, CONFIG_KEY, non_toxic_label)
    return model


@contextlib.contextmanager
def _held_load_report() -> Iterator[list[logging.LogRecord]]:
    """Hold back what transformers logs about loading a checkpoint; the caller decides what to show."""
    held: list[logging.LogRecord] = []

    def hold(record: logging.LogRecord) -> bool:
        held.append(record)
        return False

    reporter = logging.getLogger(LOAD_REPORT_LOGGER)
    reporter.addFilter(hold)
    try:
        yield held
    finally:
        reporter.removeFilter(hold)


def load_trained_classifier(name_or_path: str, advice: str) -> PreTrainedModel:
    """A sequence classifier whose head was trained. Local folders load from safetensors only and no
    model code is ever run; errors name the model and end with `advice`."""
    _from_hub(name_or_path)
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


def _train_a_teacher() -> str:
    """The advice for a --teacher that cannot teach: the command that makes one, into a fresh folder
    (never the given one, which may be the pretrained encoder's own)."""
    return (
        "Fine-tune a teacher first (python scripts/train_teacher.py --model_name_or_path BASE_ENCODER "
        "--output_dir NEW_DIR) and pass NEW_DIR with --teacher."
    )


def load_teacher_config(name_or_path: str, default: str | None = None) -> PretrainedConfig:
    """The teacher's config alone (no weights), to check flags against before anything heavy loads.
    `default` is the folder the scripts use when no --teacher is given."""
    if not Path(name_or_path).expanduser().exists():
        if name_or_path == default:
            raise UserError(
                f"There is no teacher yet: the default teacher folder {default} does not exist. Train one "
                f"first (python scripts/train_teacher.py --model_name_or_path BASE_ENCODER, which writes "
                f"{default}), or pass --teacher DIR_OR_HUB_ID."
            )
        if looks_like_path(name_or_path):
            raise UserError(f"There is no teacher folder {name_or_path} (--teacher).")
    _from_hub(name_or_path)
    try:
        return AutoConfig.from_pretrained(name_or_path, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise UserError(
            f"Cannot load the teacher {name_or_path!r}: {_unknown_model(name_or_path, err)} "
            + _train_a_teacher()
        ) from err


def looks_like_path(name: str) -> bool:
    """Whether `name` means a local folder rather than a Hub id ("name" or "owner/name")."""
    path = Path(name).expanduser()
    return (
        path.is_absolute()
        or name.startswith((".", "~"))
        or name.count("/") > 1
        or (len(path.parts) > 1 and path.parent.is_dir())
    )


def load_teacher(
    name_or_path: str, label_names: Sequence[str], non_toxic_label: str | None = None
) -> PreTrainedModel:
    """A fine-tuned classifier whose head was trained, for data with classes `label_names` (in the
    teacher's order when it names its classes: `distill.data.in_class_order`). Its config names the
    classes, and the non-toxic one (`non_toxic_label`, else the one the teacher recorded, else inferred)."""
    model = load_trained_classifier(name_or_path, _train_a_teacher())
    check_teacher_classes(name_or_path, model.config, label_names)
    named = trained_class_names(model.config)
    if named is not None and named != list(label_names):
        raise ValueError(f"labels {list(label_names)} are not in the teacher's class order {named}")
    non_toxic = find_non_toxic_label(label_names, non_toxic_label or recorded_non_toxic_label(model.config))
    model.config.update(label_config(label_names, non_toxic))
    return model


def check_teacher_classes(name_or_path: str, config: PretrainedConfig, label_names: Sequence[str]) -> None:
    """Refuse a teacher (its config is enough) that predicts another number of classes than the data has."""
    if config.num_labels != len(label_names):
        raise UserError(
            f"The teacher {name_or_path!r} predicts {config.num_labels} classes, but the dataset has "
            f"{len(label_names)} ({', '.join(label_names)}). Use the dataset the teacher was trained on, "
            "or train a teacher on this one."
        )


def model_label_names(model: PreTrainedModel | Any) -> list[str]:
    """The class names a model (anything with a transformers `config`) was trained with, in class order."""
    return config_label_names(model.config)


def config_label_names(config: PretrainedConfig) -> list[str]:
    """The class names in a model config's `id2label`, in class order."""
    id2label: dict = config.id2label or {}
    return [str(id2label[i]) for i in range(len(id2label))]


def trained_class_names(config: PretrainedConfig) -> list[str] | None:
    """The class names a trained model's config gives, in class order; None for generic LABEL_i names."""
    names = config_label_names(config)
    return None if not names or _generic(names) else names


def _generic(names: Sequence[str]) -> bool:
    return all(name == f"LABEL_{i}" or name == str(i) for i, name in enumerate(names))


def label_config(label_names: Sequence[str], non_toxic_label: str | None = None) -> dict:
    """Config fields that make `pipeline()` print real label names, and tell the app which class is
    not toxic."""
    config: dict[str, Any] = {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: i for i, name in enumerate(label_names)},
    }
    if non_toxic_label is not None:
        config[CONFIG_KEY] = non_toxic_label
    return config


def weights_fingerprint(model: torch.nn.Module) -> str:
    """The first 16 hex digits of a sha256 over every tensor of the model's state, by name: equal for
    equal weights however they were saved and loaded, different for a teacher retrained on another
    machine (bf16 kernels differ between CPUs), so a student's record names the weights it learned from,
    not only their folder."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def count_parameters(model: PreTrainedModel) -> tuple[int, int]:
    """(all parameters, trainable parameters)."""
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _from_hub(name_or_path: str) -> None:
    """Refuse at once a name that is not a local path when the Hub cannot be reached (distill.offline),
    instead of after the Hub client's retries."""
    if Path(name_or_path).expanduser().exists():
        return
    reason = hub_unreachable_reason()
    if reason is not None:
        raise UserError(
            f"Cannot load {name_or_path!r}: it is not a local folder, and the Hugging Face Hub cannot be "
            f"reached ({reason}). Without network access, pass local files: --model_name_or_path DIR for "
            "the encoder to fine-tune, --teacher DIR for a student's teacher, --dataset FILE for the data."
        )


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
