"""scripts/benchmark.py end to end on a tiny teacher: every source of speed and every model is measured,
in worker processes that leave nothing behind (test_workers.py: how); mistakes are refused before the
first worker starts."""

import json

import pytest
from conftest import LEAK, ROOT, SHARED, run_in_interpreter, run_script, tiny_config
from transformers import BertForSequenceClassification

import distill.workers
from distill.precision import runs_fast

pytestmark = pytest.mark.slow


def test_benchmark_measures_each_source_and_each_model(teacher_dir, tmp_path):
    output = tmp_path / "benchmark.json"
    done = run_in_interpreter(
        ROOT / "scripts" / "benchmark.py", "--teacher", teacher_dir,
        "--dataset", SHARED / "data" / "davidson" / "labeled_data.csv",
        "--train_examples", "32", "--train_batch_size", "8", "--inference_repeats", "2", "--output", output,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert LEAK not in done.stderr  # each of its eleven workers exited cleanly
    results = json.loads(output.read_text())
    variants = {"course recipe", "+ dynamic padding", "+ length grouping", "+ cached teacher logits"}
    assert variants <= results["training"].keys()
    assert ("+ bf16" in results["training"]) == runs_fast("bf16")
    assert ("+ bf16, with layer matching" in results["training"]) == runs_fast("bf16")
    assert all(r["samples_per_second"] > 0 and r["peak_rss_mib"] > 0 for r in results["training"].values())
    assert results["training"]["+ cached teacher logits"]["cache_seconds"] > 0
    models = {
        f"{m}, batch {b}" for m in ("teacher fp32", "even student fp32", "even student int8") for b in (1, 32)
    }
    assert results["inference"].keys() == models
    assert all(r["samples_per_second"] > 0 and r["p50_ms"] > 0 for r in results["inference"].values())
    assert "| + length grouping |" in done.stdout and "| even student int8 | 32 |" in done.stdout


@pytest.fixture(scope="module")
def two_class_teacher(tmp_path_factory, tokenizer):
    """A tiny teacher trained on two classes, where the data has three."""
    path = tmp_path_factory.mktemp("two_class_teacher")
    names = ["toxic", "neither"]
    config = tiny_config(
        num_labels=2, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_benchmark_refuses_a_teacher_of_other_classes_before_any_worker(
    two_class_teacher, csv_data, monkeypatch, capfd
):
    def no_worker(*args, **kwargs):
        pytest.fail("a measurement process was started")

    monkeypatch.setattr(distill.workers, "in_fresh_process", no_worker)
    with pytest.raises(SystemExit) as exit_info:
        run_script("benchmark", "--teacher", two_class_teacher, "--dataset", csv_data)
    assert exit_info.value.code == 2
    err = capfd.readouterr().err
    assert err.startswith("error: The teacher") and err.count("\n") == 1, err  # no progress bar, no traceback
    assert "predicts 2 classes, but the dataset has 3 (hate_speech, offensive_language, neither)" in err


def test_benchmark_refuses_data_too_small_to_time_inference(teacher_dir, csv_data, capfd):
    with pytest.raises(SystemExit) as exit_info:
        run_script(
            "benchmark", "--teacher", teacher_dir, "--dataset", csv_data, "--train_examples", "16",
            "--inference_repeats", "1",
        )  # fmt: skip
    assert exit_info.value.code == 2
    err = capfd.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "too few to time 1 inference batch(es) of 32 after warm-up (96 texts)" in err


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
