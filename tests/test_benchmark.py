"""scripts/benchmark.py end to end on a tiny teacher: every source of speed and every model is measured."""

import json

import pytest
import torch
from conftest import SHARED, run_script

pytestmark = pytest.mark.slow


def test_benchmark_measures_each_source_and_each_model(teacher_dir, tmp_path, capsys):
    output = tmp_path / "benchmark.json"
    run_script(
        "benchmark", "--teacher", teacher_dir, "--dataset", SHARED / "data" / "davidson" / "labeled_data.csv",
        "--train_examples", "32", "--train_batch_size", "8", "--inference_repeats", "2", "--output", output,
    )  # fmt: skip
    results = json.loads(output.read_text())
    variants = {"course recipe", "+ dynamic padding", "+ length grouping", "+ cached teacher logits"}
    assert variants <= results["training"].keys()
    assert ("+ bf16" in results["training"]) == (torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    assert all(r["samples_per_second"] > 0 and r["peak_rss_mb"] > 0 for r in results["training"].values())
    assert results["training"]["+ cached teacher logits"]["cache_seconds"] > 0
    models = {
        f"{m}, batch {b}" for m in ("teacher fp32", "even student fp32", "even student int8") for b in (1, 32)
    }
    assert results["inference"].keys() == models
    assert all(r["samples_per_second"] > 0 and r["p50_ms"] > 0 for r in results["inference"].values())
    table = capsys.readouterr().out
    assert "| + length grouping |" in table and "| even student int8 | 32 |" in table


@pytest.mark.parametrize(
    "flags",
    [
        ["--train_examples", "4", "--train_batch_size", "8"],
        ["--inference_repeats", "0"],
        ["--train_batch_size", "0"],
    ],
)
def test_benchmark_refuses_sizes_it_cannot_measure(flags, teacher_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_script("benchmark", "--teacher", teacher_dir, *flags)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: --train_batch_size and --inference_repeats")
