"""Which class of a model means "not toxic": decided once at training time and saved in its config.json,
so that the app, and anyone who pulls the model from the Hub, can tell a toxic verdict from the label."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from distill.errors import UserError

# The config.json field that carries the answer.
CONFIG_KEY = "non_toxic_label"

# Class names that mean "not toxic", compared lower-cased with '-' and ' ' read as '_'.
NON_TOXIC_NAMES = (
    "neither",
    "non_toxic",
    "nontoxic",
    "not_toxic",
    "normal",
    "not_hate",
    "clean",
    "none",
    "ok",
)
# Or a negated class, such as not-offensive, non_hateful or no hate.
NEGATED = re.compile(r"^(not|non|no)_")


def find_non_toxic_label(labels: Sequence[str], override: str | None = None) -> str:
    """The class that counts as not toxic: `override`, or the first known non-toxic name among `labels`,
    or else the one class named with a not-/non-/no- prefix. Raises UserError if none of these works."""
    if override is not None:
        if override not in labels:
            raise UserError(
                f"--non_toxic_label {override!r} is not a class of this model; its classes are "
                f"{', '.join(labels)}."
            )
        return override
    normalised = {_normalise(label): label for label in labels}
    for name in NON_TOXIC_NAMES:
        if name in normalised:
            return normalised[name]
    negated = [label for key, label in normalised.items() if NEGATED.match(key)]
    if len(negated) == 1:
        return negated[0]
    raise UserError(
        f"Cannot tell which class means 'not toxic' among {', '.join(labels)}: name it with --non_toxic_label."
    )


def recorded_non_toxic_label(config: Any) -> str | None:
    """The non-toxic class saved in a model's config at training time, if it has one."""
    value = getattr(config, CONFIG_KEY, None)
    return str(value) if value else None


def _normalise(label: str) -> str:
    return re.sub(r"[-\s]+", "_", label.strip().lower())
