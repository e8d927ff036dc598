"""The training scripts end to end, training for real (learning rate above 0, a few steps, tiny models),
and what changed: a seed reproduces a run, two processes of 4 examples make the update of one of 8, a
LoRA run's merged model is its PEFT model, label smoothing reaches every training loss, a finished run
keeps its checkpoints' weights only, and scripts/evaluate.py reproduces a run's test metrics.

Runs with the same command line are made once (conftest.trained) and read by every test that needs one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import (
    ENV,
    LABELS,
    ROOT,
    free_port,
    run_script,
    same_weights,
    tiny_config,
    toxic_rows,
    train_run,
)
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, BertForSequenceClassification

from distill.students import make_student

pytestmark = pytest.mark.slow


def weights_of(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def untimed(log_history: list[dict]) -> list[dict]:
    """A run's logged losses and metrics, without its wall-clock timings."""
    return [{k: v for k, v in e.items() if not k.endswith(("_runtime", "_per_second"))} for e in log_history]


# What each script trains in the tests below; the seed-7 run of each is shared by several of them.
RUNS = [
    ("train_teacher", [], "model.safetensors"),
    ("distill", ["--layers", "even"], "model.safetensors"),
    ("lora", ["--layers", "even", "--lora_r", "4"], "adapter/adapter_model.safetensors"),
]


# -- the same seed gives the same model; another seed another ---------------------------------------


@pytest.mark.parametrize(("script", "extra", "saved"), RUNS)
def test_a_seed_reproduces_a_run_and_another_seed_does_not(
    script, extra, saved, trained, bare_encoder, teacher_dir, shared_csv, tmp_path
):
    source = bare_encoder if script == "train_teacher" else teacher_dir
    a = trained(script, "--seed", "7", *extra)
    runs = {
        "a": a.results,
        **{
            name: train_run(script, source, shared_csv, tmp_path / name, "--seed", seed, *extra)
            for name, seed in [("b", "7"), ("c", "8")]
        },
    }
    folders = {"a": a.folder, "b": tmp_path / "b", "c": tmp_path / "c"}
    first, second, other = (load_file(str(folders[name] / saved)) for name in "abc")
    assert same_weights(first, second)
    assert not same_weights(first, other)
    assert untimed(runs["a"]["log_history"]) == untimed(runs["b"]["log_history"])
    if script == "lora":  # the merged model at the root too
        assert same_weights(weights_of(folders["a"]), weights_of(folders["b"]))


# -- data parallelism -----------------------------------------------------------------------------------


@pytest.mark.parametrize("script", ["train_teacher", "distill"])
def test_two_processes_of_4_equal_one_of_8(script, tokenizer, csv_data, tmp_path):
    """Data parallelism: the loss of each process is divided by the examples of both, as the Trainer
    counts them, so 2 × 4 examples give the update of 1 × 8, with class weights. The two processes
    split the data, evaluate and test together, and record that two ran."""
    source = tmp_path / "source"
    model = BertForSequenceClassification(
        tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    )
    (model.bert if script == "train_teacher" else model).save_pretrained(source)
    tokenizer.save_pretrained(source)
    flags = [
        "--model_name_or_path" if script == "train_teacher" else "--teacher", source, "--dataset", csv_data,
        "--class_names", *LABELS, "--max_train_samples", "8", "--max_eval_samples", "4", "--max_test_samples", "4", "--max_steps", "1",
        "--optim", "sgd", "--learning_rate", "0.5", "--max_grad_norm", "0", "--weight_decay", "0",
        "--class_weights", "3,0.5,1.5", "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true",
    ]  # fmt: skip
    # Two processes of 4, as torchrun starts them, first.
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
         ROOT / "scripts" / f"{script}.py", *flags, "--per_device_train_batch_size", "4",
         "--output_dir", tmp_path / "p2"],
        capture_output=True, text=True, env=ENV, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # One process of 8, here, after them: the two processes built the teacher-logit cache (distill)
    # from cold between them, and this run reads it (a lone torchrun process would train the same).
    run_script(script, *flags, "--per_device_train_batch_size", "8", "--output_dir", tmp_path / "p1")
    one, two = weights_of(tmp_path / "p1"), weights_of(tmp_path / "p2")
    results = json.loads((tmp_path / "p2" / "results.json").read_text())
    assert results["world_size"] == 2
    # One step of 4 examples on each of 2 processes covers all 8 training rows only if the processes
    # split the data (a lone process would report half an epoch).
    assert results["epoch"] == pytest.approx(8 / results["split_sizes"]["train"]) == 1
    assert "eval_macro_f1" in results and "test_macro_f1" in results
    assert not torch.allclose(one["classifier.weight"], model.classifier.weight)  # it trained
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=1e-6, rtol=0, msg=key)


# -- LoRA: the merged model is the PEFT model ---------------------------------------------------------


def test_lora_merged_model_gives_the_peft_models_logits(teacher_dir, csv_data, tokenizer, tmp_path):
    out = tmp_path / "lora"
    train_run(
        "lora", teacher_dir, csv_data, out, "--layers", "even", "--lora_r", "4", "--learning_rate", "5e-2"
    )
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir)
    layers = [2, 4, 6, 8, 10, 12]
    peft_model = PeftModel.from_pretrained(make_student(teacher, layers), out / "adapter").eval()
    merged = AutoModelForSequenceClassification.from_pretrained(out).eval()
    batch = tokenizer(
        ["you people are vermin", "lovely weather at the beach lol"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        torch.testing.assert_close(merged(**batch).logits, peft_model(**batch).logits, atol=1e-5, rtol=0)
    assert not torch.allclose(merged.classifier.weight, teacher.classifier.weight)
    # The adapters moved too: the merged query projection is no longer the teacher layer's.
    query = merged.bert.encoder.layer[0].attention.self.query.weight
    assert not torch.allclose(query, teacher.bert.encoder.layer[1].attention.self.query.weight)


# -- label smoothing reaches every training loss ------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "extra"), [*((script, extra) for script, extra, _ in RUNS), ("lora", [*RUNS[2][1], "--kd"])]
)
def test_label_smoothing_changes_the_training_loss(
    script, extra, trained, bare_encoder, teacher_dir, shared_csv, tmp_path
):
    source = bare_encoder if script == "train_teacher" else teacher_dir
    plain = trained(script, "--seed", "7", *extra).results
    smoothed = train_run(
        script,
        source,
        shared_csv,
        tmp_path / "smoothed",
        "--seed",
        "7",
        *extra,
        "--label_smoothing_factor",
        "0.3",
    )
    first = [run["log_history"][0]["loss"] for run in (plain, smoothed)]
    # One seed reproduces a run bit for bit (tested above), so any difference is the flag's. It is small
    # here: a random tiny teacher's student predicts nearly uniformly, where smoothing changes CE least.
    assert first[0] != first[1]
    assert smoothed["arguments"]["training"]["label_smoothing_factor"] == 0.3


def test_a_finished_run_keeps_checkpoint_weights_but_not_optimizer_states(teacher_dir, csv_data, tmp_path):
    out = tmp_path / "student"
    steps = ["--save_strategy", "steps", "--save_steps", "1", "--eval_strategy", "steps", "--eval_steps", "1"]
    train_run("distill", teacher_dir, csv_data, out, *steps)
    checkpoints = sorted(out.glob("checkpoint-*"))
    assert checkpoints
    for checkpoint in checkpoints:
        assert (checkpoint / "model.safetensors").exists() and (checkpoint / "trainer_state.json").exists()
        assert not list(checkpoint.glob("optimizer.pt")) and not list(checkpoint.glob("rng_state*"))


# -- scripts/evaluate.py: a finished run on its own split, fp32 or int8 --------------------------------


def test_evaluate_reproduces_the_recorded_test_metrics_and_runs_int8(trained, tmp_path, capsys):
    run = trained("distill", "--seed", "7", "--layers", "even")  # evaluate.py only reads the run
    out, results = run.folder, run.results
    n = results["split_sizes"]["test"]
    for extra in ([], ["--quantize", "int8"]):
        run_script("evaluate", out, *extra)
        printed = capsys.readouterr().out
        measured = {k: float(v) for k, v in re.findall(r"(accuracy|macro_f1): ([0-9.]+)", printed)}
        assert measured["accuracy"] == pytest.approx(results["test_accuracy"], abs=1 / n + 1e-9), printed
    other = tmp_path / "other.csv"
    toxic_rows(90).to_csv(other, index=False)
    with pytest.raises(SystemExit) as exit_info:
        run_script("evaluate", out, "--dataset", other)
    assert exit_info.value.code == 2
    assert "is not the one" in capsys.readouterr().err
