"""Tests that train (learning rate above 0, a few steps, tiny models) and check what changed: seeds
reproduce runs, losses stay exact under gradient accumulation, evaluation is plain cross-entropy,
label smoothing is honoured, precision is what the hardware runs, and a run is uploaded once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import LABELS, ROOT, run_script, tiny_config, toxic_rows
from datasets import Dataset
from peft import PeftModel
from safetensors.torch import load_file
from transformers import (
    AutoModelForSequenceClassification,
    BertForSequenceClassification,
    BertModel,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    pipeline,
)

import distill.precision
from distill.data import PaddingCollator
from distill.precision import cpu_has_bf16
from distill.students import make_student
from distill.teacher_cache import COLUMN, STATES, with_teacher_logits
from distill.trainer import ClassificationLoss, DistillationTrainer

pytestmark = pytest.mark.slow

# A few real optimizer steps: every script test below moves the weights.
TRAIN = [
    "--max_steps", "3", "--learning_rate", "1e-3", "--per_device_train_batch_size", "4",
    "--per_device_eval_batch_size", "8", "--max_train_samples", "24", "--max_eval_samples", "8",
    "--max_test_samples", "8", "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true",
    "--logging_steps", "1",
]  # fmt: skip
WEIGHTS = [3.0, 0.5, 1.5]


def weights_of(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def untimed(log_history: list[dict]) -> list[dict]:
    """A run's logged losses and metrics, without its wall-clock timings."""
    return [{k: v for k, v in e.items() if not k.endswith(("_runtime", "_per_second"))} for e in log_history]


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def bare_encoder(tmp_path_factory, tokenizer) -> Path:
    """A pretrained encoder without a classification head: train_teacher.py draws a new one."""
    path = tmp_path_factory.mktemp("bare")
    torch.manual_seed(0)
    BertModel(tiny_config()).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def train_run(script: str, source: Path, data: Path, out: Path, *extra: str | os.PathLike) -> dict:
    model_flag = "--model_name_or_path" if script == "train_teacher" else "--teacher"
    run_script(
        script,
        model_flag,
        source,
        "--dataset",
        data,
        "--class_names",
        *LABELS,
        "--output_dir",
        out,
        *TRAIN,
        *extra,
    )
    return json.loads((out / "results.json").read_text())


# -- the same seed gives the same model; another seed another ---------------------------------------


@pytest.mark.parametrize(
    ("script", "extra", "saved"),
    [
        ("train_teacher", [], "model.safetensors"),
        ("distill", ["--layers", "even"], "model.safetensors"),
        ("lora", ["--layers", "even", "--lora_r", "4"], "adapter/adapter_model.safetensors"),
    ],
)
def test_a_seed_reproduces_a_run_and_another_seed_does_not(
    script, extra, saved, bare_encoder, teacher_dir, csv_data, tmp_path
):
    source = bare_encoder if script == "train_teacher" else teacher_dir
    runs = {
        name: train_run(script, source, csv_data, tmp_path / name, "--seed", seed, *extra)
        for name, seed in [("a", "7"), ("b", "7"), ("c", "8")]
    }
    a, b, c = (load_file(str(tmp_path / name / saved)) for name in "abc")
    assert same_weights(a, b)
    assert not same_weights(a, c)
    assert untimed(runs["a"]["log_history"]) == untimed(runs["b"]["log_history"])
    if script == "lora":  # the merged model at the root too
        assert same_weights(weights_of(tmp_path / "a"), weights_of(tmp_path / "b"))


# -- DistillationTrainer and the stock Trainer with ClassificationLoss, in this process ---------------


def tokenized(tokenizer, n: int) -> Dataset:
    rows = toxic_rows(n)
    data = Dataset.from_dict({"text": list(rows["tweet"]), "labels": list(rows["class"])})
    return data.map(lambda b: tokenizer(b["text"], truncation=True, max_length=16), remove_columns=["text"])


def no_dropout_teacher(**extra) -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification(
        tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **extra)
    ).eval()


EVEN, TOP = [2, 4, 6, 8, 10, 12], [1, 2, 3, 4, 5, 6]


def make_trainer(
    kind: str,
    tokenizer,
    tmp_path: Path,
    class_weights=None,
    layers=EVEN,
    train_dataset=None,
    pkd_weight=10.0,
    **args,
) -> Trainer:
    """A distillation ("distill", or "pkd": with layer matching to the layers copied) or a plain
    (teacher/LoRA-style) trainer of a 6-layer student, no dropout."""
    # Layer matching needs layers that change their input: at the default init (std 0.02) the residual
    # stream carries a random model's [CLS] state almost unchanged through every layer.
    teacher = no_dropout_teacher(initializer_range=0.2) if kind == "pkd" else no_dropout_teacher()
    student = make_student(teacher, layers)
    options = {
        "output_dir": str(tmp_path / "out"), "report_to": "none", "save_strategy": "no",
        "disable_tqdm": True, "use_cpu": True, "seed": 0, **args,
    }  # fmt: skip
    shared = {
        "args": TrainingArguments(**options),
        "train_dataset": tokenized(tokenizer, 8) if train_dataset is None else train_dataset,
        "eval_dataset": tokenized(tokenizer, 10),
        "data_collator": PaddingCollator(tokenizer),
    }
    if kind in ("distill", "pkd"):
        matching = {"pkd_weight": pkd_weight, "pkd_targets": layers} if kind == "pkd" else {}
        return DistillationTrainer(
            model=student,
            teacher=teacher,
            alpha=0.5,
            temperature=2.0,
            class_weights=class_weights,
            **matching,
            **shared,
        )
    loss = ClassificationLoss(student, class_weights, options.get("label_smoothing_factor", 0.0))
    return Trainer(model=student, compute_loss_func=loss, **shared)


@pytest.mark.parametrize("kind", ["distill", "pkd", "plain"])
@pytest.mark.parametrize("class_weights", [None, WEIGHTS])
def test_batch_of_8_equals_4_with_accumulation_2(kind, class_weights, tokenizer, tmp_path):
    # Plain SGD without clipping: the update is the gradient itself, so any wrong scale shows.
    step = {"max_steps": 1, "learning_rate": 0.5, "optim": "sgd", "max_grad_norm": 0.0, "weight_decay": 0.0}
    before = {k: v.clone() for k, v in make_trainer(kind, tokenizer, tmp_path).model.state_dict().items()}
    results = []
    for batch, accumulation in [(8, 1), (4, 2)]:
        trainer = make_trainer(
            kind,
            tokenizer,
            tmp_path,
            class_weights,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accumulation,
            **step,
        )
        output = trainer.train()
        results.append((trainer.model.state_dict(), output.training_loss))
    (big, big_loss), (accumulated, accumulated_loss) = results
    assert not torch.allclose(big["classifier.weight"], before["classifier.weight"])
    for key in big:
        torch.testing.assert_close(accumulated[key], big[key], atol=1e-6, rtol=0, msg=key)
    assert accumulated_loss == pytest.approx(big_loss, abs=1e-6)


@pytest.mark.parametrize("script", ["train_teacher", "distill"])
def test_two_processes_of_4_equal_one_of_8(script, tokenizer, csv_data, tmp_path):
    """Data parallelism: the loss of each process is divided by the examples of both, as the Trainer
    counts them, so 2 × 4 examples give the update of 1 × 8, with class weights."""
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
        "--class_weights", "3,0.5,1.5", "--save_strategy", "no", "--eval_strategy", "no", "--report_to", "none", "--disable_tqdm", "true",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--master_port", "29531"]
    for processes, batch in [(1, 8), (2, 4)]:
        command = [*launch, "--nproc_per_node", str(processes), ROOT / "scripts" / f"{script}.py", *flags]
        command += ["--per_device_train_batch_size", str(batch), "--output_dir", tmp_path / f"p{processes}"]
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = weights_of(tmp_path / "p1"), weights_of(tmp_path / "p2")
    assert json.loads((tmp_path / "p2" / "results.json").read_text())["world_size"] == 2
    assert not torch.allclose(one["classifier.weight"], model.classifier.weight)  # it trained
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=1e-6, rtol=0, msg=key)


# -- layer matching (Patient KD): what the term sees, that it trains, and that the cache changes nothing ---


def first_logged(trainer: Trainer, key: str) -> float:
    return next(e[key] for e in trainer.state.log_history if key in e)


@pytest.mark.parametrize(("layers", "at_zero"), [(TOP, True), (EVEN, False)])
def test_layer_matching_starts_at_zero_only_for_a_student_of_the_first_layers(
    layers, at_zero, tokenizer, tmp_path
):
    # Student layers 1..6 copied from teacher layers 1..6 see exactly the teacher's inputs: at learning
    # rate 0 (and without dropout) their [CLS] states are the teacher's. The even student's layer 1
    # is teacher layer 2 applied to the embeddings, not to layer 1's output.
    trainer = make_trainer(
        "pkd", tokenizer, tmp_path, layers=layers, max_steps=1, learning_rate=0.0, logging_steps=1,
        per_device_train_batch_size=8,
    )  # fmt: skip
    trainer.train()
    pkd = first_logged(trainer, "loss_pkd")
    assert pkd == 0.0 if at_zero else pkd > 1e-3


def test_layer_matching_moves_the_students_states_toward_the_teachers(tokenizer, tmp_path):
    # β large enough that the term leads: the states it compares are what the steps change first.
    trainer = make_trainer(
        "pkd", tokenizer, tmp_path, pkd_weight=1000.0, max_steps=8, learning_rate=1e-3, logging_steps=1,
        per_device_train_batch_size=8,
    )  # fmt: skip
    trainer.train()
    pkd = [e["loss_pkd"] for e in trainer.state.log_history if "loss_pkd" in e]
    assert len(pkd) == 8 and pkd[-1] < 0.5 * pkd[0], pkd


def test_cached_teacher_states_give_the_live_teachers_loss(tokenizer, tmp_path):
    live = make_trainer("pkd", tokenizer, tmp_path)
    cached_data = with_teacher_logits(
        tokenized(tokenizer, 8), live.teacher, tokenizer, 16, tmp_path / "cache", layers=EVEN
    )
    cached = make_trainer("pkd", tokenizer, tmp_path, train_dataset=cached_data)
    cached.teacher = None  # with every target cached, the teacher must not run
    batch = PaddingCollator(tokenizer)(list(cached_data))
    assert batch[STATES].shape == (8, 6, 32)
    without_cache = {k: v for k, v in batch.items() if k not in (COLUMN, STATES)}
    loss = {
        "live": live.compute_loss(live.model.train(), without_cache),
        "cached": cached.compute_loss(cached.model.train(), batch),
    }
    torch.testing.assert_close(loss["cached"], loss["live"], atol=1e-5, rtol=0)
    torch.testing.assert_close(cached._loss_sums["pkd"], live._loss_sums["pkd"], atol=1e-5, rtol=0)
    assert live._loss_sums["pkd"] > 0


def test_distillation_trains_the_student_and_leaves_the_teacher_alone(tokenizer, tmp_path):
    trainer = make_trainer(
        "distill",
        tokenizer,
        tmp_path,
        WEIGHTS,
        max_steps=3,
        learning_rate=1e-2,
        per_device_train_batch_size=4,
    )
    assert isinstance(trainer, DistillationTrainer)
    teacher_before = {k: v.clone() for k, v in trainer.teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    assert same_weights(trainer.teacher.state_dict(), teacher_before)
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, student_before[k])]
    assert "classifier.weight" in changed and any(".layer.0." in k for k in changed)


@pytest.mark.parametrize("kind", ["distill", "plain"])
def test_validation_loss_is_plain_cross_entropy_of_the_logits(kind, tokenizer, tmp_path):
    # Class weights and label smoothing shape the training loss only.
    trainer = make_trainer(
        kind, tokenizer, tmp_path, WEIGHTS, max_steps=2, learning_rate=1e-2,
        per_device_train_batch_size=4, per_device_eval_batch_size=4, label_smoothing_factor=0.2,
    )  # fmt: skip
    trainer.train()
    eval_loss = trainer.evaluate()["eval_loss"]
    data = trainer.eval_dataset
    batch = DataCollatorWithPadding(tokenizer)(
        [{k: data[i][k] for k in data.column_names} for i in range(10)]
    )
    model = trainer.model.eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert eval_loss == pytest.approx(F.cross_entropy(logits, batch["labels"]).item(), abs=1e-5)


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
    ("script", "extra"),
    [("train_teacher", []), ("distill", ["--layers", "odd"]), ("lora", ["--layers", "odd"]),
     ("lora", ["--layers", "odd", "--kd"])],
)  # fmt: skip
def test_label_smoothing_changes_the_training_loss(
    script, extra, bare_encoder, teacher_dir, csv_data, tmp_path
):
    source = bare_encoder if script == "train_teacher" else teacher_dir
    plain = train_run(script, source, csv_data, tmp_path / "plain", *extra)
    smoothed = train_run(
        script, source, csv_data, tmp_path / "smoothed", *extra, "--label_smoothing_factor", "0.3"
    )
    first = [run["log_history"][0]["loss"] for run in (plain, smoothed)]
    # One seed reproduces a run bit for bit (tested above), so any difference is the flag's. It is small
    # here: a random tiny teacher's student predicts nearly uniformly, where smoothing changes CE least.
    assert first[0] != first[1]
    assert smoothed["arguments"]["training"]["label_smoothing_factor"] == 0.3


# -- precision: reduced only where the hardware runs it ---------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU's precision")
def test_accelerate_config_on_a_cpu_trains_in_bf16_only_with_bf16_units(teacher_dir, csv_data, tmp_path):
    out = tmp_path / "student"
    proc = subprocess.run(
        ["accelerate", "launch", "--config_file", ROOT / "accelerate_config.yaml",
         ROOT / "scripts" / "distill.py", "--teacher", teacher_dir, "--dataset", csv_data,
         "--output_dir", out, *TRAIN],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The config asks for bf16: this machine's own CPU decides whether the run honours it.
    fallback = "bf16 was asked for, but there is no CUDA device, and this CPU has no bf16 units"
    results = json.loads((out / "results.json").read_text())
    if cpu_has_bf16():
        assert results["precision"] == "bf16" and fallback not in proc.stderr
    else:
        assert results["precision"] == "fp32" and fallback in proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU's precision")
def test_bf16_trains_in_bf16_on_a_cpu_with_bf16_units(teacher_dir, csv_data, tmp_path, monkeypatch):
    monkeypatch.setattr(distill.precision, "cpu_has_bf16", lambda: True)
    full = train_run("distill", teacher_dir, csv_data, tmp_path / "fp32")
    reduced = train_run("distill", teacher_dir, csv_data, tmp_path / "bf16", "--bf16")
    assert reduced["precision"] == "bf16" and full["precision"] == "fp32"
    # Same seed and data: only bf16 arithmetic can change the first step's loss.
    assert reduced["log_history"][0]["loss"] != full["log_history"][0]["loss"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
@pytest.mark.parametrize(
    ("flag", "bf16_units", "reason"),
    [
        ("--bf16", False, "this CPU has no bf16 units (AVX512-BF16 or AMX)"),
        ("--fp16", True, "a CPU does not train fast in fp16"),
    ],
)
def test_reduced_precision_falls_back_to_fp32_where_the_cpu_cannot_run_it(
    flag, bf16_units, reason, teacher_dir, csv_data, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(distill.precision, "cpu_has_bf16", lambda: bf16_units)
    results = train_run("distill", teacher_dir, csv_data, tmp_path / "student", flag)
    assert results["precision"] == "fp32"
    assert (
        f"{flag[2:]} was asked for, but there is no CUDA device, and {reason}: training in fp32"
        in caplog.text
    )


# -- --push_to_hub: one upload of a clean folder, against a local stand-in for the Hub ----------------


class LocalHub:
    """Stands in for `huggingface_hub.HfApi`: each repo is a local folder, filled as upload_folder would."""

    def __init__(self, root: Path) -> None:
        self.root, self.uploads = root, []

    def __call__(self, token: str | None = None, **_: object) -> LocalHub:
        return self

    def whoami(self) -> dict:
        return {"name": "someone"}

    def create_repo(self, repo_id: str, **_: object) -> None:
        (self.root / repo_id).mkdir(parents=True, exist_ok=True)

    def upload_folder(
        self, *, repo_id: str, folder_path: Path, ignore_patterns: list[str], **_: object
    ) -> None:
        from huggingface_hub.utils import filter_repo_objects

        files = [p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file()]
        for name in filter_repo_objects(files, ignore_patterns=ignore_patterns):
            (self.root / repo_id / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(folder_path) / name, self.root / repo_id / name)
        self.uploads.append(repo_id)


@pytest.mark.parametrize(("script", "extra"), [("distill", []), ("lora", ["--lora_r", "4"])])
def test_push_to_hub_uploads_one_clean_folder(script, extra, teacher_dir, csv_data, tmp_path, monkeypatch):
    hub = LocalHub(tmp_path / "hub")
    monkeypatch.setattr("huggingface_hub.HfApi", hub)
    repo = f"someone/toxic-{script}"
    train_run(
        script, teacher_dir, csv_data, tmp_path / "run", "--layers", "even", "--save_strategy", "steps",
        "--save_steps", "1", "--eval_strategy", "steps", "--eval_steps", "1",
        "--push_to_hub", "--hub_model_id", repo, "--hub_token", "hf_test", *extra,
    )  # fmt: skip
    assert hub.uploads == [repo]  # once, at the end: never per checkpoint
    uploaded = hub.root / repo
    assert not (uploaded / "adapter_config.json").exists()
    assert not list(uploaded.glob("checkpoint-*"))
    assert 'pipeline("text-classification"' in (uploaded / "README.md").read_text()
    classifier = pipeline("text-classification", model=str(uploaded))
    assert type(classifier.model) is BertForSequenceClassification
    assert classifier.model.config.num_hidden_layers == 6
    assert classifier("you people are vermin")[0]["label"] in LABELS


def test_push_to_hub_without_a_token_is_refused_before_training(
    teacher_dir, csv_data, tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("distill.hub._saved_token", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        train_run(
            "distill", teacher_dir, csv_data, tmp_path / "run", "--push_to_hub", "--hub_model_id", "a/b"
        )
    assert exit_info.value.code == 2
    assert "No Hugging Face token" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# -- length-grouped batches -------------------------------------------------------------------------


def test_training_batches_are_grouped_by_the_precomputed_length(csv_data, tokenizer, tmp_path):
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from distill.args import RunArguments
    from distill.data import load_splits, tokenize
    from distill.runner import trainer_inputs

    rows = toxic_rows(400)  # the sampler sorts within megabatches of up to n // (4 · batch) batches
    rows["tweet"] = [text + " lol" * (i % 11) for i, text in enumerate(rows["tweet"])]  # 12 to 32 tokens
    rows.to_csv(csv_data, index=False)
    data = tokenize(load_splits(str(csv_data)).data, tokenizer, max_length=32)

    def padded_share(strategy: str) -> float:
        """Share of the tokens in the training batches that are padding."""
        args = RunArguments(
            output_dir=str(tmp_path), train_sampling_strategy=strategy, per_device_train_batch_size=8, seed=0
        )
        model = no_dropout_teacher()
        trainer = Trainer(model=model, args=args, **trainer_inputs(data, tokenizer, LABELS))
        if strategy == "group_by_length":
            sampler = trainer._get_train_sampler()
            assert isinstance(sampler, LengthGroupedSampler) and sampler.lengths == data["train"]["length"]
        masks = [batch["attention_mask"] for batch in trainer.get_train_dataloader()]
        assert all("length" not in batch for batch in trainer.get_train_dataloader())
        return 1 - sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks)

    assert RunArguments(output_dir=str(tmp_path)).train_sampling_strategy == "group_by_length"
    assert padded_share("group_by_length") < padded_share("random") / 2


def test_test_predictions_come_back_in_the_datasets_order(csv_data, tokenizer, tmp_path):
    from distill.args import RunArguments
    from distill.data import load_splits, tokenize
    from distill.runner import predict_in_order, trainer_inputs

    rows = toxic_rows(400)
    rows["tweet"] = [text + " lol" * (i % 11) for i, text in enumerate(rows["tweet"])]
    rows.to_csv(csv_data, index=False)
    data = tokenize(load_splits(str(csv_data)).data, tokenizer, max_length=32)
    test = data["test"]
    model = no_dropout_teacher()
    args = RunArguments(output_dir=str(tmp_path), per_device_eval_batch_size=4, disable_tqdm=True, seed=0)
    trainer = Trainer(model=model, args=args, **trainer_inputs(data, tokenizer, LABELS))

    with torch.inference_mode():  # one example at a time: no padding, no order to get wrong
        expected = torch.cat([model(input_ids=torch.tensor([ids])).logits for ids in test["input_ids"]])
    output = predict_in_order(trainer, test)
    assert output.label_ids.tolist() == test["labels"]
    assert torch.allclose(torch.from_numpy(output.predictions), expected, atol=1e-5)
    assert (
        output.metrics["test_accuracy"]
        == trainer.predict(test, metric_key_prefix="test").metrics["test_accuracy"]
    )
    assert trainer.args.train_sampling_strategy == "group_by_length"  # left as it was
    # The stock predict under length grouping returns its own order: what this guards against.
    assert trainer.predict(test).label_ids.tolist() != test["labels"]


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


def test_evaluate_reproduces_the_recorded_test_metrics_and_runs_int8(teacher_dir, csv_data, tmp_path, capsys):
    import re

    out = tmp_path / "student"
    results = train_run("distill", teacher_dir, csv_data, out, "--layers", "even")
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
