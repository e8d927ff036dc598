"""Which teacher layers a student keeps, and where an encoder keeps its layers.

Teacher layers are numbered 1..N everywhere a user sees them (flags, logs, results.json), as
the papers do. `to_zero_based` is the one place that converts to Python indices.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn
from transformers import PreTrainedModel

from distill.errors import UserError

NAMED_STRATEGIES = ("odd", "even", "top", "bottom", "all")


def parse_layers(spec: str | Sequence[int], num_teacher_layers: int) -> list[int]:
    """Turn `odd`, `even`, `top`, `bottom` or a comma list like `2,5,11` into sorted 1-based layer numbers.

    For a 12-layer teacher: odd = 1,3,...,11; even = 2,4,...,12; top = 1..6 (nearest the input);
    bottom = 7..12; all = 1..12. A list must be strictly increasing, without repeats, within 1..N.
    """
    n = num_teacher_layers
    if isinstance(spec, str):
        name = spec.strip().lower()
        named = {
            "odd": list(range(1, n + 1, 2)),
            "even": list(range(2, n + 1, 2)),
            "top": list(range(1, n // 2 + 1)),
            "bottom": list(range(n // 2 + 1, n + 1)),
            "all": list(range(1, n + 1)),
        }
        if name in named:
            return named[name]
        parts = [p.strip() for p in name.split(",") if p.strip()]
        if not parts or not all(p.isdigit() for p in parts):
            raise UserError(
                f"--layers {spec!r} is not a layer choice: use one of {', '.join(NAMED_STRATEGIES)} "
                f"or a comma list of teacher layers numbered 1..{n}, such as 2,5,11."
            )
        layers = [int(p) for p in parts]
    else:
        layers = [int(x) for x in spec]
    if not layers:
        raise UserError("--layers is empty: name at least one teacher layer.")
    out_of_range = [x for x in layers if not 1 <= x <= n]
    if out_of_range:
        raise UserError(
            f"--layers {_show(spec)} names layer(s) {_show(out_of_range)}, but the teacher's layers are "
            f"numbered 1..{n} (1 is nearest the input)."
        )
    repeated = sorted({x for x in layers if layers.count(x) > 1})
    if repeated:
        raise UserError(
            f"--layers {_show(spec)} repeats layer(s) {_show(repeated)}: name each teacher layer once."
        )
    if layers != sorted(layers):
        raise UserError(
            f"--layers {_show(spec)} is out of order: list teacher layers in increasing order, "
            "so the student keeps the teacher's order."
        )
    return layers


def parse_targets(spec: str | None, student_layers: Sequence[int], num_teacher_layers: int) -> list[int]:
    """The teacher layer (1-based) each student layer learns the [CLS] state of, for layer matching:
    by default the layer it was copied from; else a comma list with one teacher layer per student
    layer, such as PKD-skip's 2,4,6,8,10,12 for a top-K student."""
    if spec is None or not spec.strip():
        return list(student_layers)
    n, want = num_teacher_layers, len(student_layers)
    parts = [p.strip() for p in spec.split(",")]
    if not all(p.isdigit() for p in parts):
        raise UserError(
            f"--pkd_targets {spec!r} is not a list of teacher layers: give {want} layer numbers "
            f"within 1..{n}, separated by commas, such as {','.join(map(str, student_layers))}."
        )
    targets = [int(p) for p in parts]
    if len(targets) != want:
        raise UserError(
            f"--pkd_targets {spec!r} names {len(targets)} teacher layer(s) for a student of {want} "
            f"layers: give one per student layer."
        )
    out_of_range = [x for x in targets if not 1 <= x <= n]
    if out_of_range:
        raise UserError(
            f"--pkd_targets {spec!r} names layer(s) {_show(out_of_range)}, but the teacher's layers are "
            f"numbered 1..{n} (1 is nearest the input)."
        )
    return targets


def layers_name(spec: str | Sequence[int]) -> str:
    """A short name for a layer choice, for folder names and tables: `even`, or `2-5-11` for a list."""
    if isinstance(spec, str) and spec.strip().lower() in NAMED_STRATEGIES:
        return spec.strip().lower()
    items = spec.split(",") if isinstance(spec, str) else [str(x) for x in spec]
    return "-".join(p.strip() for p in items if p.strip())


def to_zero_based(layers: Sequence[int]) -> list[int]:
    """1-based teacher layer numbers to Python indices into the encoder's layer list."""
    return [x - 1 for x in layers]


def num_layers(model: PreTrainedModel) -> int:
    """How many transformer layers the model has (DistilBERT's `n_layers` is mapped by its config)."""
    return int(model.config.num_hidden_layers)


def find_layer_list(model: nn.Module, expected: int | None = None) -> tuple[str, nn.ModuleList]:
    """Find the encoder's stack of transformer layers and its dotted name in `model`.

    Works for any encoder whose layers sit in one `nn.ModuleList`: BERT, RoBERTa, MPNet, ELECTRA
    (`<base>.encoder.layer`), DistilBERT (`distilbert.transformer.layer`), and others, without a table
    of names: it is the ModuleList whose length is the config's layer count.
    """
    if expected is None:
        expected = num_layers(model)  # type: ignore[arg-type]
    found = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList) and len(module) == expected
    ]
    if len(found) != 1:
        names = ", ".join(name for name, _ in found) or "none"
        raise UserError(
            f"Cannot find the encoder layers of {type(model).__name__}: expected one list of {expected} "
            f"layers, found {names}. Supported are encoders that keep their layers in one nn.ModuleList."
        )
    return found[0]


def _show(value: str | Sequence[int]) -> str:
    return value if isinstance(value, str) else ",".join(str(x) for x in value)
