"""results.json files of made-up runs, as the scripts record them, for tests of distill.report and
distill.plots."""

from __future__ import annotations

from pathlib import Path

from conftest import LABELS

from distill.results import write_results


def fake_run(
    root,
    name,
    method,
    layers_spec,
    seed,
    macro_f1,
    *,
    split="abc",
    layers=None,
    class_weights=None,
    lr=5e-5,
    eval_f1=0.6,
    precision="fp32",
    arguments=None,
    training=None,
    record=None,
):
    """A results.json recording the settings a real run records; `arguments`, `training` and `record`
    (its top-level keys) add to or override them."""
    student = method not in ("teacher", "baseline")
    recorded = {
        "layers": layers_spec,
        "max_length": 64,
        "max_train_samples": None,
        **({"teacher": "outputs/teacher", "alpha": 0.5, "temperature": 2.0} if student else {}),
        **(arguments or {}),
    }
    trainer = {
        "learning_rate": lr,
        "class_weights": "none" if class_weights is None else "balanced",
        "num_train_epochs": 1.0,
        "max_steps": -1,
        "per_device_train_batch_size": 16,
        "gradient_accumulation_steps": 1,
        "output_dir": str(root / name),
        **(training or {}),
    }
    write_results(
        root / name,
        {
            "method": method,
            "precision": precision,
            "layers": layers,
            "seed": seed,
            "test_split_hash": split,
            "class_weights": class_weights,
            "label_names": LABELS,
            "world_size": 1,
            "arguments": {**recorded, "training": trainer},
            "train_loss": 0.5 + seed / 10,
            "eval_loss": 0.4,
            "eval_accuracy": 0.8,
            "eval_macro_f1": eval_f1,
            "test_accuracy": 0.9,
            "test_macro_f1": macro_f1,
            "test_f1_hate_speech": macro_f1 / 2,
            "test_recall_hate_speech": macro_f1 / 4,
            "num_parameters": 1000,
            "trainable_parameters": 1000 if method != "lora" else 30,
            "test_confusion_matrix": [[1, 1, 0], [0, 5, 1], [0, 1, 3]],
            # Seeds differ, so a method's band over seeds has a width to check.
            "log_history": [{"loss": 1.0 + seed / 100, "step": 10}, {"loss": 0.5 + seed / 100, "step": 20}],
            **(record or {}),
        },
    )


def write_runs(root: Path) -> Path:
    """A teacher, three seeds of four distilled students and of a LoRA student, and one custom student."""
    fake_run(root, "teacher", "teacher", None, 42, 0.80)
    for seed, f1 in [(1, 0.60), (2, 0.70), (3, 0.65)]:
        fake_run(root, f"student-odd/seed-{seed}", "distill", "odd", seed, f1, layers=[1, 3, 5, 7, 9, 11])
        fake_run(root, f"student-even/seed-{seed}", "distill", "even", seed, f1 + 0.05)
        fake_run(root, f"student-top/seed-{seed}", "distill", "top", seed, f1)
        fake_run(root, f"student-bottom/seed-{seed}", "distill", "bottom", seed, f1)
        fake_run(root, f"lora-even/seed-{seed}", "lora", "even", seed, f1 - 0.1)
    fake_run(root, "custom", "distill", "2,5,11", 1, 0.5)
    return root
