"""distill.lora: peft adapters on a student, their default targets, merging back, and LoRA's own learning rate."""

import json
import runpy

import pytest
import torch
from conftest import ROOT, TINY_RUN, assert_student_is_teacher_layers, run_script, tiny_config
from transformers import BertForSequenceClassification, MPNetConfig, MPNetForSequenceClassification

from distill import cli
from distill.errors import UserError
from distill.lora import add_lora, default_target_modules, merge
from distill.students import make_student


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (BertForSequenceClassification(tiny_config(layers=2)), ["query", "value"]),
        (MPNetForSequenceClassification(tiny_config(MPNetConfig, layers=2)), ["q", "v"]),
    ],
)
def test_default_targets_are_the_query_and_value_projections(model, expected):
    assert default_target_modules(model) == expected


def test_lora_at_zero_update_merges_back_to_the_student():
    torch.manual_seed(0)
    teacher = BertForSequenceClassification(tiny_config())
    student = make_student(teacher, [2, 4, 6, 8, 10, 12])
    reference = {k: v.clone() for k, v in student.state_dict().items()}
    peft_model = add_lora(student, r=4, alpha=8, dropout=0.0)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in peft_model.parameters())
    assert 0 < trainable / total < 0.05
    merged = merge(peft_model)  # LoRA's B starts at zero, so merging changes nothing yet
    for key, value in merged.state_dict().items():
        assert torch.equal(value, reference[key]), key


def test_unknown_target_modules_are_a_user_error():
    with pytest.raises(UserError, match="Cannot add LoRA"):
        add_lora(
            BertForSequenceClassification(tiny_config(layers=2)),
            r=4,
            alpha=8,
            dropout=0.0,
            target_modules=["nope"],
        )


@pytest.mark.parametrize(("flags", "rate"), [([], 2e-3), (["--learning_rate", "5e-5"], 5e-5)])
def test_lora_trains_at_its_own_rate_unless_one_is_given(flags, rate):
    # What scripts/lora.py parses: LoRA's default is the rate chosen on validation, not the Trainer's 5e-5.
    arguments = runpy.run_path(str(ROOT / "scripts" / "lora.py"))["ARGUMENTS"]
    *_, training_args = cli.parse_args(arguments, ["--output_dir", "unused", *flags])
    assert training_args.learning_rate == rate


def test_lora_help_says_where_its_default_rate_comes_from(capsys):
    with pytest.raises(SystemExit):
        run_script("lora", "--help")
    help_text = " ".join(capsys.readouterr().out.split())
    assert "LoRA's own: the rate chosen on validation for LoRA in docs/results/README.md" in help_text
    assert "(default: 0.002)" in help_text


@pytest.mark.slow
@pytest.mark.parametrize("kd", [False, True])
def test_lora_script_saves_merged_student_adapter_and_counts(teacher_dir, csv_data, tmp_path, kd):
    out = tmp_path / "lora"
    extra = ["--kd"] if kd else []
    run_script(
        "lora",
        "--teacher",
        teacher_dir,
        "--dataset",
        csv_data,
        "--layers",
        "odd",
        "--lora_r",
        "4",
        "--output_dir",
        out,
        *extra,
        *TINY_RUN,
    )
    assert_student_is_teacher_layers(out, teacher_dir, [1, 3, 5, 7, 9, 11])
    assert json.loads((out / "adapter" / "adapter_config.json").read_text())["r"] == 4
    results = json.loads((out / "results.json").read_text())
    assert results["method"] == ("lora+kd" if kd else "lora")
    assert results["trainable_parameters"] / results["num_parameters"] < 0.05
    assert results["layers"] == [1, 3, 5, 7, 9, 11]
