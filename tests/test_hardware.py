"""A run names what it ran on: the CPU's model and threads (or the GPU), beside its timings."""

import pytest
import torch

from distill.hardware import cpu_name, device_facts


def test_the_cpu_is_named_by_its_model_not_its_architecture(tmp_path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\nflags\t: avx\n"
    )
    assert cpu_name(cpuinfo) == "AMD EPYC 9R14"
    assert cpu_name(tmp_path / "missing") not in ("", "AMD EPYC 9R14")  # platform's own word instead


def test_cpu_facts_name_the_threads_torch_uses() -> None:
    assert device_facts("cpu") == {"type": "cpu", "name": cpu_name(), "threads": torch.get_num_threads()}


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a CPU run's record")
def test_a_run_records_the_device_it_trained_on(trained) -> None:
    results = trained("distill", "--seed", "7", "--layers", "even").results  # shared with test_precision.py
    # The tests' runs use one thread (conftest.ENV).
    assert results["device"] == {"type": "cpu", "name": cpu_name(), "threads": 1}
