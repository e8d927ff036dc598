"""What a run ran on, in the words a reader compares timings by: the GPU's name, or the CPU's model
and the threads torch used (the CPU varies between machines of one name, and so do its timings)."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

CPUINFO = Path("/proc/cpuinfo")
# oneDNN's cap on the instructions it may use; the first name wins, as in oneDNN. bf16 products sum
# in another order on AMX than on AVX512-BF16 units, so a capped run computes what the cap says, not
# what the CPU's name suggests (a Xeon capped at AVX512_CORE_BF16 trains as an AMD EPYC does).
ONEDNN_ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


def cpu_name(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name (`lscpu`'s "Model name"); Python's `platform.processor()` says only
    "x86_64" on Linux."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def onednn_isa_cap(environ: Mapping[str, str] = os.environ) -> str | None:
    """The instruction set oneDNN was capped at for this process, or None where it chooses freely."""
    return next((environ[name] for name in ONEDNN_ISA_VARIABLES if environ.get(name)), None)


def device_facts(device: torch.device | str) -> dict[str, Any]:
    """The device a run trained on, for results.json: CUDA's device name and its peak allocated
    memory so far, or the CPU's model, torch's thread count and oneDNN's instruction-set cap if set."""
    device = torch.device(device)
    if device.type == "cuda":
        return {
            "type": "cuda",
            "name": torch.cuda.get_device_name(device),
            "peak_memory_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
        }
    facts: dict[str, Any] = {"type": device.type, "name": cpu_name(), "threads": torch.get_num_threads()}
    cap = onednn_isa_cap()
    return facts | {"onednn_max_cpu_isa": cap} if cap else facts
