"""A run carries what serving needs: which class is not toxic, and the max_length it was trained at.
Trained here through the scripts, then loaded by the app with no flags."""

import json

import pandas as pd
import pytest
from conftest import TINY_RUN, run_script, tiny_config
from transformers import BertModel

from app.config import AppConfig
from app.inference import Classifier
from app.registry import load_registry

pytestmark = pytest.mark.slow

SIXTY_WORDS = " ".join(["you are a stupid troll"] * 12)


def binary_rows(n: int = 48) -> pd.DataFrame:
    texts = {"not-offensive": "what a lovely day at the beach", "offensive": "shut up you damn idiot"}
    labels = list(texts)
    return pd.DataFrame([{"text": f"{texts[labels[i % 2]]} {i}", "label": labels[i % 2]} for i in range(n)])


def test_a_binary_model_knows_its_non_toxic_class_and_is_served_without_flags(tmp_path, tokenizer):
    data = tmp_path / "binary.csv"
    binary_rows().to_csv(data, index=False)
    base = tmp_path / "base"
    BertModel(tiny_config()).save_pretrained(base)
    tokenizer.save_pretrained(base)
    teacher = tmp_path / "teacher"
    flags = [*TINY_RUN, "--learning_rate", "1e-3", "--max_steps", "3"]
    run_script(
        "train_teacher", "--model_name_or_path", base, "--dataset", data, "--output_dir", teacher, *flags
    )

    config = json.loads((teacher / "config.json").read_text())
    assert config["non_toxic_label"] == "not-offensive"
    assert sorted(config["id2label"].values()) == ["not-offensive", "offensive"]

    registry = load_registry(AppConfig(models=(str(teacher),)))  # no --non_toxic_label
    [described] = registry.describe()
    assert described["non_toxic_label"] == "not-offensive"
    predictions = registry.default.classify(["what a lovely day", "shut up you idiot", "hello there"])
    for prediction in predictions:
        assert prediction["toxic"] == (prediction["label"] == "offensive")


def test_a_student_trained_at_16_tokens_is_served_truncated_at_16(teacher_dir, csv_data, tmp_path):
    student = tmp_path / "student"
    run_script("distill", "--teacher", teacher_dir, "--dataset", csv_data, "--output_dir", student,
               "--max_length", "16", *TINY_RUN)  # fmt: skip
    served = Classifier.load("student", str(student))
    assert served.max_length == 16
    long, short = served.classify([SIXTY_WORDS, "lovely weather"])
    assert long["truncated"] and not short["truncated"]
    # A flag may override it, up to what the model's positions hold (128 in the tiny config).
    assert Classifier.load("student", str(student), max_length=64).max_length == 64
    assert Classifier.load("student", str(student), max_length=4096).max_length == 128
    assert not Classifier.load("student", str(student), max_length=100).classify([SIXTY_WORDS])[0][
        "truncated"
    ]


def test_training_refuses_classes_without_a_non_toxic_one(tmp_path, tokenizer, capsys):
    data = tmp_path / "colours.csv"
    frame = binary_rows().replace({"label": {"not-offensive": "red", "offensive": "blue"}})
    frame.to_csv(data, index=False)
    base = tmp_path / "base"
    BertModel(tiny_config()).save_pretrained(base)
    tokenizer.save_pretrained(base)
    out = tmp_path / "never-created"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_script(
            "train_teacher", "--model_name_or_path", base, "--dataset", data, "--output_dir", out, *TINY_RUN
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: Cannot tell which class means 'not toxic' among blue, red: name it with --non_toxic_label."
    ]
    assert not out.exists()
    run_script("train_teacher", "--model_name_or_path", base, "--dataset", data, "--output_dir", out,
               "--non_toxic_label", "blue", *TINY_RUN)  # fmt: skip
    assert json.loads((out / "config.json").read_text())["non_toxic_label"] == "blue"
