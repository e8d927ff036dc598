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
    return why_not_fast(precision, use_cpu) is None


def why_not_fast(precision: str, use_cpu: bool = False) -> str | None:
    """None where `precision` trains fast on the device a run would use; else why not, in words."""
    if precision == "fp32":
        return None
    gpu = torch.cuda.is_available()
    if gpu and not use_cpu:
        return None if precision == "fp16" or torch.cuda.is_bf16_supported() else "this GPU does not run it"
    where = "--use_cpu was given" if gpu else "there is no CUDA device"
    if precision == "bf16":
        return None if cpu_has_bf16() else f"{where}, and this CPU has no bf16 units (AVX512-BF16 or AMX)"
    return f"{where}, and a CPU does not train fast in fp16"


def precision_name(mixed_precision: object) -> str:
    """bf16, fp16 or fp32, from a TrainingArguments' or an Accelerator's `mixed_precision`."""
    return {"bf16": "bf16", "fp16": "fp16"}.get(str(mixed_precision), "fp32")
