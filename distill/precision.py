"""Training precision: whether this machine runs a reduced precision fast (the one place that decides
if --bf16/--fp16 is honoured or falls back to fp32), and the name a run records for what ran.

A GPU runs fp16, and bf16 where it says so. A CPU runs bf16 fast only with bf16 arithmetic units
(AVX512-BF16 or AMX, on recent Xeon and EPYC): oneDNN then multiplies bf16 matrices several times faster
than fp32. Without them bf16 is emulated, and CPU fp16 has no fast path at all.
"""

from __future__ import annotations

import torch


def cpu_has_bf16() -> bool:
    """Whether the CPU has bf16 arithmetic units, by torch's own probes of the instruction set."""
    # The probes are private (torch.cpu._is_*); a torch without them is treated as having no such units.
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def runs_fast(precision: str, use_cpu: bool = False) -> bool:
    """Whether `precision` (fp32, bf16 or fp16) trains fast on the device a run would use."""
    if precision == "fp32":
        return True
    if use_cpu or not torch.cuda.is_available():
        return precision == "bf16" and cpu_has_bf16()
    return precision == "fp16" or torch.cuda.is_bf16_supported()


def precision_name(mixed_precision: object) -> str:
    """bf16, fp16 or fp32, from a TrainingArguments' or an Accelerator's `mixed_precision`."""
    return {"bf16": "bf16", "fp16": "fp16"}.get(str(mixed_precision), "fp32")
