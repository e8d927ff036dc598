"""Label every text of a file with a trained classifier, as the app would, and write the rows to a CSV.

    python scripts/predict.py --model outputs/student-even --input tweets.csv --output labelled.csv
    python scripts/predict.py --model outputs/student-even --input tweets.txt --output labelled.csv --quantize int8

Reads CSV, JSONL/JSON, Parquet, or plain text (one text per line). Writes every input row, in input
order, with pred_label, pred_toxic, one pred_prob_<class> per class and pred_status: "ok", or why the
row was not classified (empty, not_text, invalid_unicode), its prediction columns then left empty.
"""

import sys
from pathlib import Path

# Import the library beside this script, whatever is installed: `python scripts/x.py` puts scripts/
# first on the import path, where scripts/distill.py would shadow the distill package.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT), *(p for p in sys.path if Path(p or ".").resolve() != _ROOT / "scripts")]

import logging
from collections import Counter
from dataclasses import dataclass, field

from distill import cli
from distill.errors import UserError
from distill.labelling import read_texts, refuse_clashes, with_predictions, write_csv
from distill.labels import find_non_toxic_label, recorded_non_toxic_label
from distill.models import load_tokenizer, load_trained_classifier, looks_like_path, model_label_names
from distill.predict import max_input_length, predict_logits, softmax, text_status
from distill.quantize import QUANTIZATIONS, quantize_int8

logger = logging.getLogger("distill.predict")


@dataclass
class PredictArguments:
    model: str = field(metadata={"help": "A trained classifier: a run's folder or a Hub id."})
    input: str = field(
        metadata={"help": "The texts: a .csv, .jsonl, .json, .parquet file, or .txt with one text per line."}
    )
    output: str = field(metadata={"help": "The CSV file to write."})
    text_column: str | None = field(
        default=None,
        metadata={"help": "Column holding the texts (default: the first of tweet, text, comment_text)."},
    )
    quantize: str | None = field(
        default=None,
        metadata={
            "help": "int8: predict with the model as `app.py --quantize int8` serves it.",
            "choices": QUANTIZATIONS,
        },
    )
    max_length: int | None = field(
        default=None,
        metadata={"help": "Truncate texts at this many tokens (default: the model's training --max_length)."},
    )
    non_toxic_label: str | None = field(
        default=None,
        metadata={"help": "The class that is not toxic (default: the one the model's config.json names)."},
    )
    batch_size: int = field(default=64, metadata={"help": "Texts per forward pass."})
    overwrite: bool = field(default=False, metadata={"help": "Replace --output if it exists."})


def main() -> None:
    (args,) = cli.parse_args(PredictArguments)
    cli.setup_logging()
    source, target = Path(args.input), Path(args.output)
    # Every mistake that needs no model is caught before the model loads.
    if target.suffix.lower() != ".csv":
        raise UserError(f"--output {target}: predictions are written as CSV; name a .csv file.")
    if target.exists() and source.exists() and target.resolve() == source.resolve():
        raise UserError(f"--output {target} is the input file; name another file.")
    if target.exists() and not args.overwrite:
        raise UserError(f"{target} exists; pass --overwrite to replace it.")
    if args.max_length is not None and args.max_length < 1:
        raise UserError(f"--max_length {args.max_length}: use a positive number of tokens.")
    if args.batch_size < 1:
        raise UserError(f"--batch_size {args.batch_size}: use a positive number of texts.")
    if looks_like_path(args.model) and not Path(args.model).expanduser().is_dir():
        raise UserError(f"There is no model folder {args.model} (--model).")
    table, column = read_texts(source, args.text_column)
    statuses = [text_status(value) for value in table[column]]

    tokenizer = load_tokenizer(args.model)
    model = load_trained_classifier(args.model, "Pass a fine-tuned run with --model.")
    labels = model_label_names(model)
    non_toxic = find_non_toxic_label(labels, args.non_toxic_label or recorded_non_toxic_label(model.config))
    refuse_clashes(table.columns, labels, source)  # before the work, not after it
    max_length = max_input_length(tokenizer, model.config, args.max_length)
    if args.quantize:
        model = quantize_int8(model, tokenizer.model_input_names)

    texts = [value for value, status in zip(table[column], statuses, strict=True) if status == "ok"]
    logger.info(
        "Labelling %d texts of %s (column %r) with %s (%s, %d tokens at most).",
        len(texts),
        source,
        column,
        args.model,
        args.quantize or "fp32",
        max_length,
    )
    probabilities = softmax(predict_logits(model, tokenizer, texts, max_length, args.batch_size))
    write_csv(with_predictions(table, statuses, probabilities, labels, non_toxic), target)
    skipped = Counter(status for status in statuses if status != "ok")
    print(
        f"Wrote {len(table)} rows to {target}: {len(texts)} labelled"
        + "".join(f", {count} {status}" for status, count in sorted(skipped.items()))
        + "."
    )


if __name__ == "__main__":
    cli.run(main)
