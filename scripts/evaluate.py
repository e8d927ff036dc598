"""Evaluate a finished run again on its own test (or validation) split, as trained or int8-quantized.

    python scripts/evaluate.py outputs/student-even
    python scripts/evaluate.py outputs/student-even --quantize int8

The split is rebuilt from the run's results.json (data, split seed, sizes) and must have the hash
the run recorded, so the numbers compare with the run's own. Prints the recorded and the measured
accuracy and macro-F1.
"""

import sys
from pathlib import Path

# Import the library beside this script, whatever is installed: `python scripts/x.py` puts scripts/
# first on the import path, where scripts/distill.py would shadow the distill package.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT), *(p for p in sys.path if Path(p or ".").resolve() != _ROOT / "scripts")]

import dataclasses
from dataclasses import dataclass, field

from distill import cli
from distill.args import DataArguments
from distill.data import in_class_order, load_splits
from distill.errors import UserError
from distill.metrics import classification_metrics
from distill.models import load_tokenizer, load_trained_classifier, trained_class_names
from distill.predict import predict_logits
from distill.quantize import QUANTIZATIONS, quantize_int8
from distill.results import read_results


@dataclass
class EvaluateArguments:
    run: str = field(metadata={"help": "A finished run: a folder with the model and its results.json."})
    split: str = field(
        default="test", metadata={"help": "test or validation.", "choices": ["test", "validation"]}
    )
    quantize: str | None = field(
        default=None,
        metadata={
            "help": "int8: evaluate the model as `app.py --quantize int8` serves it.",
            "choices": QUANTIZATIONS,
        },
    )
    dataset: str | None = field(
        default=None,
        metadata={
            "help": "The run's data (its --dataset, or its --train_file), if it has moved (default: as the "
            "run recorded)."
        },
    )
    validation_file: str | None = field(
        default=None, metadata={"help": "The run's --validation_file, if it has moved."}
    )
    test_file: str | None = field(default=None, metadata={"help": "The run's --test_file, if it has moved."})
    batch_size: int = field(default=64, metadata={"help": "Texts per forward pass."})


def main() -> None:
    # RUN is positional, as in `evaluate.py RUN --quantize int8`.
    argv = cli.with_positional(sys.argv[1:], "--run")
    (args,) = cli.parse_args(EvaluateArguments, argv)
    cli.setup_logging()
    record = read_results(args.run)
    recorded = record.get("arguments", {})
    data_args = DataArguments(
        **{f.name: recorded[f.name] for f in dataclasses.fields(DataArguments) if f.name in recorded}
    )
    moved = {"validation_file": args.validation_file, "test_file": args.test_file}
    if args.dataset:  # it replaces whichever way the run was given its training data
        moved["train_file" if data_args.train_file else "dataset"] = args.dataset
    data_args = dataclasses.replace(data_args, **{k: v for k, v in moved.items() if v})
    model = load_trained_classifier(args.run, "Evaluate a finished run.")
    # The split as the run saw it: its labels in the model's class order (a student's is its teacher's).
    splits = in_class_order(
        load_splits(**data_args.split_options()), trained_class_names(model.config), args.run
    )
    if splits.test_hash != record.get("test_split_hash"):
        raise UserError(
            f"The split rebuilt from {data_args.source} is not the one {args.run} was tested on (hash "
            f"{splits.test_hash}, recorded {record.get('test_split_hash')}): pass the run's data with --dataset."
        )
    tokenizer = load_tokenizer(args.run)
    if args.quantize:
        model = quantize_int8(model, tokenizer.model_input_names)
    data = splits.data[args.split]
    logits = predict_logits(model, tokenizer, data["text"], data_args.max_length, args.batch_size)
    metrics = classification_metrics(data["label"], logits.argmax(-1), record["label_names"])
    prefix = "test" if args.split == "test" else "eval"
    print(f"{args.run}, {args.split} split ({len(data)} texts), {args.quantize or 'as trained (fp32)'}:")
    for name in ("accuracy", "macro_f1"):
        print(
            f"  {name}: {metrics[name]:.4f} (recorded at training: {record.get(f'{prefix}_{name}', float('nan')):.4f})"
        )


if __name__ == "__main__":
    cli.run(main)
