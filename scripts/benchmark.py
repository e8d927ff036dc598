"""Measure speed: where distillation's training speed comes from, and how fast each model serves.

    python scripts/benchmark.py --teacher outputs/teacher --dataset ../shared/data/davidson/labeled_data.csv

Training: the course recipe, then DistillationTrainer with dynamic padding, + length-grouped batches,
+ cached teacher logits, + bf16 (only where a GPU, or a CPU with bf16 units, runs it fast), and the
previous default (cached logits, random batches); each reads the same --train_examples once, in its own
process. Inference: the teacher, the student and the int8 student, each loaded alone in its own
process, at batch 1 and 32.
Prints markdown tables and writes --output (JSON).
"""

import sys
from pathlib import Path

# Import the library beside this script, whatever is installed: `python scripts/x.py` puts scripts/
# first on the import path, where scripts/distill.py would shadow the distill package.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT), *(p for p in sys.path if Path(p or ".").resolve() != _ROOT / "scripts")]

import json
import tempfile
from dataclasses import asdict, dataclass, field

import pandas as pd
import torch

from distill import cli
from distill.args import DEFAULT_DATASET, DEFAULT_TEACHER
from distill.benchmark import (
    INFERENCE_BATCH_SIZES,
    LAYER_MATCHING,
    PREVIOUS_DEFAULT,
    TRAINING_VARIANTS,
    course_recipe_training,
    inference,
    inference_texts_needed,
    project_training,
    save_student,
)
from distill.errors import UserError
from distill.hardware import cpu_name, onednn_isa_cap
from distill.layers import parse_layers
from distill.models import load_teacher_config
from distill.precision import cpu_has_bf16, runs_fast
from distill.report import markdown_table
from distill.results import atomic_write
from distill.runner import splits_for_teacher
from distill.workers import in_fresh_process


@dataclass
class BenchmarkArguments:
    teacher: str = field(default=DEFAULT_TEACHER, metadata={"help": "A fine-tuned teacher folder."})
    dataset: str = field(default=DEFAULT_DATASET, metadata={"help": "Hub id or local file with short texts."})
    layers: str = field(default="even", metadata={"help": "The student to measure (odd, even, top, ...)."})
    train_batch_size: int = field(default=16, metadata={"help": "Training batch size (every variant)."})
    train_examples: int = field(
        default=512, metadata={"help": "Training examples every variant reads once (and caches logits of)."}
    )
    inference_repeats: int = field(default=20, metadata={"help": "Timed batches per inference measurement."})
    output: str = field(default="outputs/benchmark.json", metadata={"help": "Where the JSON goes."})


def main() -> None:
    (args,) = cli.parse_args(BenchmarkArguments)
    if min(args.train_batch_size, args.inference_repeats) < 1 or args.train_examples < args.train_batch_size:
        raise UserError(
            "--train_batch_size and --inference_repeats must be at least 1, and --train_examples at least "
            f"one batch (got {args.train_batch_size}, {args.inference_repeats} and {args.train_examples})."
        )
    cli.setup_logging()
    # Every check before the first measurement process starts: a mistake is one line, not a worker's traceback.
    teacher_config = load_teacher_config(args.teacher, DEFAULT_TEACHER)
    layers = parse_layers(args.layers, int(teacher_config.num_hidden_layers))
    splits = splits_for_teacher(args.teacher, teacher_config, {"dataset": args.dataset})
    train = splits.data["train"]
    if len(train) < inference_texts_needed(args.inference_repeats):
        raise UserError(
            f"{args.dataset} has {len(train)} training texts, too few to time {args.inference_repeats} "
            f"inference batch(es) of {max(INFERENCE_BATCH_SIZES)} after warm-up "
            f"({inference_texts_needed(args.inference_repeats)} texts): use more data or a smaller "
            "--inference_repeats."
        )
    n = args.train_examples
    texts, labels = list(train["text"])[:n], [int(x) for x in train["label"]][:n]
    cap = onednn_isa_cap()  # a Xeon capped below AMX times as a CPU without it would
    hardware = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else f"CPU ({cpu_name()}, {torch.get_num_threads()} threads, "
        f"{'with' if cpu_has_bf16() else 'without'} bf16 units{f', oneDNN capped at {cap}' if cap else ''})"
    )
    results: dict = {"hardware": hardware, "arguments": asdict(args), "training": {}, "inference": {}}

    batch = args.train_batch_size
    recipe = in_fresh_process(course_recipe_training, args.teacher, layers, texts, labels, batch)
    results["training"]["course recipe"] = recipe
    training_rows = [_training_row("course recipe", recipe, recipe)]
    for variant in [*TRAINING_VARIANTS, LAYER_MATCHING, PREVIOUS_DEFAULT]:
        if variant.bf16 and not runs_fast("bf16"):
            training_rows.append(
                {"variant": variant.name, "samples/s": "not run: no GPU or CPU here runs bf16 fast"}
            )
            continue
        with tempfile.TemporaryDirectory() as tmp:
            measured = in_fresh_process(
                project_training, args.teacher, layers, texts, labels, batch, tmp, variant=variant
            )
        results["training"][variant.name] = measured
        training_rows.append(_training_row(variant.name, measured, recipe))

    inference_rows = []
    with tempfile.TemporaryDirectory() as student_dir:
        in_fresh_process(save_student, args.teacher, layers, student_dir)
        models = [
            ("teacher fp32", args.teacher, None),
            (f"{args.layers} student fp32", student_dir, None),
            (f"{args.layers} student int8", student_dir, "int8"),
        ]
        all_texts = list(train["text"])
        for batch_size in INFERENCE_BATCH_SIZES:
            teacher_speed = None
            for name, folder, quantize in models:
                measured = in_fresh_process(
                    inference, folder, all_texts, batch_size, args.inference_repeats, quantize=quantize
                )
                results["inference"][f"{name}, batch {batch_size}"] = measured
                teacher_speed = teacher_speed or measured["samples_per_second"]
                inference_rows.append(
                    {
                        "model": name,
                        "batch": batch_size,
                        "samples/s": f"{measured['samples_per_second']:.1f}",
                        "p50 ms": f"{measured['p50_ms']:.1f}",
                        "× teacher fp32": f"{measured['samples_per_second'] / teacher_speed:.2f}×",
                        "peak RSS MiB": f"{measured['peak_rss_mib']:.0f}",
                    }
                )

    atomic_write(args.output, json.dumps(results, indent=2))
    print(f"Hardware: {hardware}; teacher {args.teacher}; {n} training examples, batch {batch}\n")
    print(markdown_table(pd.DataFrame(training_rows).fillna("")))
    print()
    print(markdown_table(pd.DataFrame(inference_rows)))
    cache = results["training"].get("+ cached teacher logits", {}).get("cache_seconds")
    if cache is not None:
        print(
            f"\nOne-time teacher-logit cache: {n} examples in {cache:.1f} s (reused across epochs and students)."
        )
    print(f"JSON: {args.output}")


def _training_row(name: str, measured: dict, recipe: dict) -> dict:
    return {
        "variant": name,
        "samples/s": f"{measured['samples_per_second']:.2f}",
        "× recipe": f"{measured['samples_per_second'] / recipe['samples_per_second']:.2f}×",
        "peak RSS MiB": f"{measured['peak_rss_mib']:.0f}",
    }


if __name__ == "__main__":
    cli.run(main)
