"""End to end: the scripts as users run them, on a tiny random teacher and data written here."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import LABELS, ROOT, TINY_RUN, assert_student_is_teacher_layers, run_script, tiny_config
from transformers import (
    BertForSequenceClassification,
    BertModel,
    pipeline,
)

from distill.layers import parse_layers

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("spec", ["odd", "even", "top", "bottom", "2,5,11"])
def test_distill_saves_students_equal_to_the_teacher_layers(spec, tiny_student, teacher_dir):
    run = tiny_student(spec)
    out, results = run.folder, run.results
    assert_student_is_teacher_layers(out, teacher_dir, parse_layers(spec, 12))
    assert results["layers"] == parse_layers(spec, 12)
    for key in ["train_loss", "eval_loss", "eval_accuracy", "eval_macro_f1", "test_loss", "test_accuracy",
                "test_macro_f1", "test_f1_hate_speech", "num_parameters", "trainable_parameters",
                "teacher", "dataset", "seed", "test_split_hash", "arguments"]:  # fmt: skip
        assert key in results, key
    assert results["trainable_parameters"] == results["num_parameters"]
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()


def test_distill_on_jsonl_logs_loss_parts_records_layer_matching_and_opens_in_pipeline(
    teacher_dir, jsonl_data, tmp_path, recwarn
):
    out = tmp_path / "student"
    run_script(
        "distill", "--teacher", teacher_dir, "--dataset", jsonl_data, "--class_names", *LABELS,
        "--layers", "even", "--output_dir", out, "--logging_steps", "1", "--cosine_weight", "0.5",
        "--pkd_weight", "2", "--pkd_targets", "1,3,5,7,9,12", *TINY_RUN,
    )  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    logged = results["log_history"][0]
    assert {"loss", "loss_kl", "loss_ce", "loss_cosine", "loss_pkd"} <= logged.keys()
    assert results["pkd_targets"] == [1, 3, 5, 7, 9, 12] and results["arguments"]["pkd_weight"] == 2
    # No "pin_memory ... no accelerator" warning on every data loader of a CPU run.
    assert not [w for w in recwarn if "pin_memory" in str(w.message)]
    prediction = pipeline("text-classification", model=str(out))("I hate you")[0]
    assert prediction["label"] in LABELS


def test_train_teacher_then_distill(tmp_path, csv_data, tokenizer):
    base = tmp_path / "base"
    BertModel(tiny_config()).save_pretrained(base)  # a bare pretrained encoder, as from the Hub
    tokenizer.save_pretrained(base)
    teacher = tmp_path / "teacher"
    run_script("train_teacher", "--model_name_or_path", base, "--dataset", csv_data, "--class_names", *LABELS,
               "--output_dir", teacher, "--num_train_epochs", "1", "--save_strategy", "epoch",
               "--per_device_train_batch_size", "8", "--report_to", "none", "--disable_tqdm", "true")  # fmt: skip
    results = json.loads((teacher / "results.json").read_text())
    assert results["method"] == "teacher" and results["layers"] is None
    assert results["best_checkpoint"] is not None  # selected on validation
    assert pipeline("text-classification", model=str(teacher))("I hate you")[0]["label"] in LABELS

    student = tmp_path / "student"
    run_script("distill", "--teacher", teacher, "--dataset", csv_data, "--output_dir", student, *TINY_RUN)
    learned = json.loads((student / "results.json").read_text())
    assert learned["test_split_hash"] == results["test_split_hash"]
    # The student names the teacher's weights, as the teacher recorded them (its best checkpoint).
    assert learned["teacher_fingerprint"] == results["weights_fingerprint"]
    assert re.fullmatch("[0-9a-f]{16}", results["weights_fingerprint"])


# -- bad input: one message, exit status 2, no output folder ----------------------------------------


def refused(capsys, tmp_path, *args):
    out = tmp_path / "never-created"
    with pytest.raises(SystemExit) as exit_info:
        run_script("distill", "--output_dir", out, *args, *TINY_RUN)
    assert exit_info.value.code == 2
    assert not out.exists()
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ("0,1,2,3,4,5", "numbered 1..12"),
        ("1,1,2,3,4,5", "repeats layer"),
        ("2,13", "names layer(s) 13"),
        ("banana", "not a layer choice"),
    ],
)
def test_bad_layers(layers, message, teacher_dir, csv_data, tmp_path, capsys):
    err = refused(capsys, tmp_path, "--teacher", teacher_dir, "--dataset", csv_data, "--layers", layers)
    assert message in err and err.strip().splitlines()[-1].startswith("error: ")


def test_teacher_without_a_trained_head(tmp_path, csv_data, capsys, tokenizer):
    bare = tmp_path / "bare"
    BertModel(tiny_config()).save_pretrained(bare)
    tokenizer.save_pretrained(bare)
    err = refused(capsys, tmp_path, "--teacher", bare, "--dataset", csv_data)
    assert "no trained classification head" in err and "scripts/train_teacher.py" in err
    # The suggested teacher goes to a fresh folder, never into the pretrained encoder's own.
    assert "--output_dir NEW_DIR" in err and f"--output_dir {bare}" not in err


def test_plain_hub_model_as_teacher(tmp_path, csv_data, capsys):
    err = refused(capsys, tmp_path, "--teacher", "bert-base-uncased", "--dataset", csv_data)
    assert "bert-base-uncased" in err and "scripts/train_teacher.py" in err


def test_teacher_with_another_label_count(tmp_path, csv_data, capsys, tokenizer):
    two = tmp_path / "two"
    BertForSequenceClassification(tiny_config(num_labels=2, id2label=None, label2id=None)).save_pretrained(
        two
    )
    tokenizer.save_pretrained(two)
    err = refused(capsys, tmp_path, "--teacher", two, "--dataset", csv_data)
    assert "predicts 2 classes, but the dataset has 3" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("body,class\nhi,1\n", "no text column"),
        ("tweet,kind\nhi,1\n", "no label column"),
        ("", "is empty"),
        ("tweet,class\nhi,\nho,1\n", "have no label"),
        ("tweet,class\nhi,0\nho,7\n", "outside 0..2"),
    ],
)
def test_bad_data_files(content, message, teacher_dir, tmp_path, capsys):
    data = tmp_path / "bad.csv"
    data.write_text(content)
    args = ["--teacher", teacher_dir, "--dataset", data]
    if "outside" in message:
        args += ["--class_names", *LABELS]
    assert message in refused(capsys, tmp_path, *args)


def test_data_path_that_does_not_exist(teacher_dir, tmp_path, capsys):
    assert "does not exist" in refused(
        capsys, tmp_path, "--teacher", teacher_dir, "--dataset", tmp_path / "x.csv"
    )


def test_command_line_error_is_one_line_without_traceback(teacher_dir, csv_data, tmp_path):
    out = tmp_path / "never-created"
    proc = subprocess.run(
        [sys.executable, ROOT / "scripts" / "distill.py", "--teacher", teacher_dir, "--dataset", csv_data,
         "--layers", "banana", "--output_dir", out],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --layers 'banana' is not a layer choice")
    assert not out.exists()


def test_a_finished_run_is_not_overwritten_unless_asked(
    tiny_student, teacher_dir, shared_csv, tmp_path, capsys
):
    out = tmp_path / "student"
    args = ["--teacher", teacher_dir, "--dataset", shared_csv, "--output_dir", out, *TINY_RUN]
    # The finished run: that of `args` (the default layers are even), copied from the shared one.
    shutil.copytree(tiny_student("even").folder, out)
    before = (out / "results.json").read_text()
    with pytest.raises(SystemExit) as exit_info:
        run_script("distill", *args, "--seed", "7")
    assert exit_info.value.code == 2
    assert "already holds a finished run" in capsys.readouterr().err
    assert (out / "results.json").read_text() == before
    run_script("distill", *args, "--seed", "7", "--overwrite_output_dir")
    assert json.loads((out / "results.json").read_text())["seed"] == 7


def test_label_names_for_classes_points_to_class_names(teacher_dir, csv_data, tmp_path, capsys):
    err = refused(capsys, tmp_path, "--teacher", teacher_dir, "--dataset", csv_data, "--label_names", *LABELS)
    assert "--class_names" in err and "label keys" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--epochs", "3"], "error: Unknown argument(s): --epochs 3."),
        (["--layer", "even"], "error: Unknown argument(s): --layer even."),  # no abbreviation of --layers
        (
            ["--save_strategy", "steps", "--eval_strategy", "epoch"],
            "error: --load_best_model_at_end requires",
        ),
    ],
)
def test_flag_mistakes_are_one_line_with_exit_status_2(flags, message, teacher_dir, csv_data, tmp_path):
    # A real process: everything it prints, warnings and log lines included, is the one line.
    out = tmp_path / "never-created"
    proc = subprocess.run(
        [sys.executable, ROOT / "scripts" / "distill.py", "--teacher", teacher_dir, "--dataset", csv_data,
         "--output_dir", out, *flags],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(message)
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_distill_before_any_teacher_exists_says_how_to_make_one(csv_data, tmp_path):
    proc = subprocess.run(
        [sys.executable, ROOT / "scripts" / "distill.py", "--dataset", csv_data],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "0"}, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(
        "error: There is no teacher yet: the default teacher folder outputs/teacher does not"
    )
    assert "python scripts/train_teacher.py --model_name_or_path BASE_ENCODER" in line
    assert not (tmp_path / "outputs").exists()


def test_bad_layers_are_refused_before_the_data_is_read(teacher_dir, tmp_path, capsys):
    # The data file does not exist: the layer choice is the first thing checked.
    err = refused(
        capsys, tmp_path, "--teacher", teacher_dir, "--dataset", tmp_path / "x.csv", "--layers", "2,13"
    )
    assert "names layer(s) 13" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--pkd_targets", "2,4"], "--pkd_targets '2,4' names 2 teacher layer(s) for a student of 6 layers"),
        (["--pkd_targets", "1,2,3,4,5,13"], "names layer(s) 13"),
        (["--pkd_weight", "-1"], "--pkd_weight must be 0 or more"),
    ],
)
def test_bad_layer_matching_flags_are_refused_before_the_data_is_read(
    flags, message, teacher_dir, tmp_path, capsys
):
    err = refused(
        capsys,
        tmp_path,
        "--teacher",
        teacher_dir,
        "--dataset",
        tmp_path / "x.csv",
        "--pkd_weight",
        "1",
        *flags,
    )
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_finished_run_is_refused_before_the_data_is_read(teacher_dir, tmp_path, capsys):
    out = tmp_path / "student"
    out.mkdir()
    (out / "results.json").write_text("{}")
    with pytest.raises(SystemExit):
        run_script("lora", "--teacher", teacher_dir, "--dataset", tmp_path / "x.csv", "--output_dir", out)
    assert "already holds a finished run" in capsys.readouterr().err


def test_own_split_files_give_the_split_sizes(tmp_path, teacher_dir):
    rows = [
        {"text": f"{w} {i}", "label": LABELS[i % 3]}
        for i, w in enumerate(["you vermin", "damn lol", "nice"] * 30)
    ]
    files = {"train": rows[:48], "validation": rows[48:60], "test": [*rows[60:82], rows[0]]}  # one leak
    paths = {}
    for split, part in files.items():
        paths[split] = tmp_path / f"{split}.jsonl"
        paths[split].write_text("".join(json.dumps(r) + "\n" for r in part))
    out = tmp_path / "student"
    run_script("distill", "--teacher", teacher_dir, "--train_file", paths["train"], "--validation_file",
               paths["validation"], "--test_file", paths["test"], "--output_dir", out, *TINY_RUN,
               "--max_train_samples", "1000", "--max_eval_samples", "1000", "--max_test_samples", "1000")  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    # The test file is kept whole (a benchmark); train loses the row that the test file repeats.
    assert results["split_sizes"] == {"train": 47, "validation": 12, "test": 23}
    assert results["held_out_duplicates_dropped"] == {"train": 1, "validation": 0, "test": 0}
    assert results["validation_also_in_test"] == 0
    assert results["dataset"] == str(paths["train"])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--epochs", "3"], "error: Unknown argument(s): --epochs 3."),
        (["--layers", "2,13"], "error: --layers 2,13 names layer(s) 13"),
    ],
)
def test_through_accelerate_launch_a_mistake_is_still_one_line(
    flags, message, teacher_dir, csv_data, tmp_path
):
    out = tmp_path / "never-created"
    proc = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--quiet", "--config_file",
         ROOT / "accelerate_config.yaml", ROOT / "scripts" / "distill.py", "--teacher", teacher_dir,
         "--dataset", csv_data, "--output_dir", out, *flags],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(message)
    # accelerate's launcher turns any failure of the script into its own exit status 1 (docs/usage.md, Errors);
    # if a release passes the script's status through, this fails and docs/usage.md should say so.
    assert proc.returncode == 1
    assert not out.exists()


def test_string_labels_are_encoded_in_the_teachers_class_order(teacher_dir, jsonl_data, tmp_path):
    # Sorted, the data's names would be hate_speech, neither, offensive_language: "neither" would be
    # class 1, where the teacher's head (and soft labels) say offensive_language.
    out = tmp_path / "student"
    run_script("distill", "--teacher", teacher_dir, "--dataset", jsonl_data, "--output_dir", out, *TINY_RUN)
    assert json.loads((out / "results.json").read_text())["label_names"] == LABELS
    config = json.loads((out / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(3)] == LABELS


@pytest.mark.parametrize(
    ("script", "model_flag", "what"),
    [
        ("train_teacher", "--model_name_or_path", "Teacher"),
        ("distill", "--teacher", "Student even"),
        ("lora", "--teacher", "LoRA even"),
    ],
)
def test_a_training_scripts_last_line_says_what_ran(
    script, model_flag, what, shared_runs, teacher_dir, shared_csv
):
    layers = (
        [] if script == "train_teacher" else ["--layers", "even"]
    )  # the default, named: the run is shared
    run = shared_runs(script, model_flag, teacher_dir, "--dataset", shared_csv, *layers, *TINY_RUN)
    last = [message for name, message in run.log if name.startswith("distill.")][-1]
    # 1 step of batch 4 over 24 examples: a sixth of an epoch, in fp32 (no --bf16 asked for).
    assert last.startswith(f"{what}: test accuracy ")
    assert "; fp32, 24 training examples × 0.166667 epoch(s), " in last and "min of training" in last
    assert last.endswith(f"saved to {run.folder}")
