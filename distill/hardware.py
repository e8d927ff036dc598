"""What a run ran on, in the words a reader compares timings by: the GPU's name, or the CPU's model
and the threads torch used (the CPU varies between machines of one name, and so do its timings)."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch

CPUINFO = Path("/proc/cpuinfo")


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


def device_facts(device: torch.device | str) -> dict[str, Any]:
    """The device a run trained on, for results.json: CUDA's device name and its peak allocated
    memory so far, or the CPU's model and torch's thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        return {
            "type": "cuda",
            "name": torch.cuda.get_device_name(device),
            "peak_memory_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
        }
    return {"type": device.type, "name": cpu_name(), "threads": torch.get_num_threads()}
