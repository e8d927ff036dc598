"""Measure speed: distillation training against the course recipe, students against the teacher.

    python scripts/benchmark.py --teacher outputs/teacher --dataset ../shared/data/davidson/labeled_data.csv

Prints a markdown table and writes --output (JSON). Same machine, same data, same teacher and
student sizes for every row; each measurement runs in its own process (peak memory is its own).
"""

import sys
from pathlib import Path

# Import the library beside this script, whatever is installed: `python scripts/x.py` puts scripts/
# first on the import path, where scripts/distill.py would shadow the distill package.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT), *(p for p in sys.path if Path(p or ".").resolve() != _ROOT / "scripts")]

import json
import platform
import tempfile
from dataclasses import asdict, dataclass, field

import torch
from transformers import HfArgumentParser

from distill import cli
from distill.args import DEFAULT_DATASET
from distill.benchmark import course_recipe_training, in_fresh_process, inference, project_training
from distill.data import load_splits
from distill.layers import parse_layers
from distill.report import markdown_table
from distill.results import atomic_write


@dataclass
class BenchmarkArguments:
    teacher: str = field(default="outputs/teacher", metadata={"help": "A fine-tuned teacher folder."})
    dataset: str = field(default=DEFAULT_DATASET, metadata={"help": "Hub id or local file with short texts."})
    layers: list[str] = field(default_factory=lambda: ["even"], metadata={"help": "Students to measure."})
    train_batch_size: int = field(default=16, metadata={"help": "Training batch size (both recipes)."})
    train_steps: int = field(default=4, metadata={"help": "Timed training steps (after one warm-up step)."})
    cache_examples: int = field(default=512, metadata={"help": "Examples whose teacher logits are cached."})
    inference_repeats: int = field(default=20, metadata={"help": "Timed batches per inference measurement."})
    output: str = field(default="outputs/benchmark.json", metadata={"help": "Where the JSON goes."})


def main() -> None:
    (args,) = HfArgumentParser(BenchmarkArguments).parse_args_into_dataclasses()
    cli.setup_logging()
    train = load_splits(args.dataset).data["train"]
    texts, labels = list(train["text"]), [int(x) for x in train["label"]]
    from transformers import AutoConfig

    n_layers = AutoConfig.from_pretrained(args.teacher).num_hidden_layers
    hardware = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    )
    rows, results = [], {"hardware": hardware, "arguments": asdict(args), "training": {}, "inference": {}}

    for spec in args.layers:
        layers = parse_layers(spec, n_layers)
        steps, batch = args.train_steps, args.train_batch_size
        course = in_fresh_process(course_recipe_training, args.teacher, layers, texts, labels, batch, steps)
        with tempfile.TemporaryDirectory() as tmp:
            ours = in_fresh_process(
                project_training,
                args.teacher,
                layers,
                texts[: args.cache_examples],
                labels[: args.cache_examples],
                batch,
                steps,
                tmp,
            )
        ratio = ours["samples_per_second"] / course["samples_per_second"]
        results["training"][spec] = {"course_recipe": course, "toxic_distill": ours, "speedup": ratio}
        rows.append(
            {
                "measure": f"training {spec} student, samples/s",
                "course recipe / teacher": f"{course['samples_per_second']:.2f}",
                "toxic-distill / student": f"{ours['samples_per_second']:.2f}",
                "ratio": f"{ratio:.2f}×",
                "peak RSS MB (a / b)": f"{course['peak_rss_mb']:.0f} / {ours['peak_rss_mb']:.0f}",
            }
        )

    for batch in (1, 32):
        teacher = in_fresh_process(inference, args.teacher, None, texts, batch, args.inference_repeats)
        results["inference"][f"teacher_batch{batch}"] = teacher
        for spec in args.layers:
            student = in_fresh_process(
                inference, args.teacher, parse_layers(spec, n_layers), texts, batch, args.inference_repeats
            )
            results["inference"][f"{spec}_batch{batch}"] = student
            ratio = student["samples_per_second"] / teacher["samples_per_second"]
            rows.append(
                {
                    "measure": f"inference batch {batch}, samples/s (p50 ms)",
                    "course recipe / teacher": f"{teacher['samples_per_second']:.1f} ({teacher['p50_ms']:.1f})",
                    "toxic-distill / student": f"{student['samples_per_second']:.1f} ({student['p50_ms']:.1f})",
                    "ratio": f"{ratio:.2f}×",
                    "peak RSS MB (a / b)": f"{teacher['peak_rss_mb']:.0f} / {student['peak_rss_mb']:.0f}",
                }
            )

    import pandas as pd

    atomic_write(args.output, json.dumps(results, indent=2))
    print(f"Hardware: {hardware}; teacher {args.teacher}\n")
    print(markdown_table(pd.DataFrame(rows)))
    cache = next(iter(results["training"].values()))["toxic_distill"]
    print(
        f"\nOne-time teacher-logit cache: {cache['cache_examples']} examples in {cache['cache_seconds']:.1f} s (reused across epochs and students). JSON: {args.output}"
    )


if __name__ == "__main__":
    cli.run(main)
