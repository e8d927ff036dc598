"""A run names what it ran on: the CPU's model and threads (or the GPU), beside its timings."""

import pytest
import torch

from distill.hardware import cpu_name, device_facts, onednn_isa_cap


def test_the_cpu_is_named_by_its_model_not_its_architecture(tmp_path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\nflags\t: avx\n"
    )
    assert cpu_name(cpuinfo) == "AMD EPYC 9R14"
    assert cpu_name(tmp_path / "missing") not in ("", "AMD EPYC 9R14")  # platform's own word instead


def test_cpu_facts_name_the_threads_torch_uses(monkeypatch) -> None:
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(name, raising=False)
    assert device_facts("cpu") == {"type": "cpu", "name": cpu_name(), "threads": torch.get_num_threads()}


def test_cpu_facts_name_onednns_instruction_set_cap(monkeypatch) -> None:
    # A Xeon capped at AVX512_CORE_BF16 computes as an AMD EPYC does, not as its name suggests.
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX512_CORE")
    assert device_facts("cpu")["onednn_max_cpu_isa"] == "AVX512_CORE"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")  # oneDNN's newer name wins
    assert device_facts("cpu")["onednn_max_cpu_isa"] == "AVX512_CORE_BF16"
    assert onednn_isa_cap({"ONEDNN_MAX_CPU_ISA": ""}) is None


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a CPU run's record")
def test_a_run_records_the_device_it_trained_on(trained) -> None:
    results = trained("distill", "--seed", "7", "--layers", "even").results  # shared with test_precision.py
    # The tests' runs use one thread (conftest.ENV).
    assert results["device"] == {"type": "cpu", "name": cpu_name(), "threads": 1}
