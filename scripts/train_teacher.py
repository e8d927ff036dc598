"""Fine-tune a pretrained encoder into the teacher classifier that students are distilled from.

    python scripts/train_teacher.py --model_name_or_path bert-base-uncased --output_dir outputs/teacher

The checkpoint is selected on validation macro-F1 and evaluated once on test; the model and its
tokenizer are saved at the root of --output_dir with real label names, with results.json beside them.
"""

import sys
from pathlib import Path

# Import the library beside this script, whatever is installed: `python scripts/x.py` puts scripts/
# first on the import path, where scripts/distill.py would shadow the distill package.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT), *(p for p in sys.path if Path(p or ".").resolve() != _ROOT / "scripts")]

import logging

from transformers import Trainer

from distill import cli
from distill.args import DataArguments, RunArguments, TeacherArguments
from distill.data import load_splits, tokenize
from distill.labels import find_non_toxic_label
from distill.losses import class_weights
from distill.models import load_base_model, load_tokenizer, weights_fingerprint
from distill.runner import (
    check_output_dir,
    closing_line,
    run_record,
    save_run,
    seed_run,
    train_and_evaluate,
    trainer_inputs,
)
from distill.trainer import ClassificationLoss

logger = logging.getLogger("distill.train_teacher")


def main() -> None:
    model_args, data_args, training_args = cli.parse_args((TeacherArguments, DataArguments, RunArguments))
    training_args.output_dir = training_args.output_dir or "outputs/teacher"
    cli.setup_logging(training_args)
    check_output_dir(training_args)
    seed_run(training_args)  # before the new classification head draws its weights

    splits = load_splits(**data_args.split_options())
    # Refused now, with one line, if the classes do not say which one is not toxic.
    non_toxic = find_non_toxic_label(splits.label_names, data_args.non_toxic_label)
    tokenizer = load_tokenizer(model_args.model_name_or_path, data_args.max_length)
    model = load_base_model(model_args.model_name_or_path, splits.label_names, non_toxic)
    data = tokenize(splits.data, tokenizer, data_args.max_length)
    weights = class_weights(data["train"]["labels"], len(splits.label_names), training_args.class_weights)

    trainer = Trainer(
        model=model,
        args=training_args,
        compute_loss_func=ClassificationLoss(model, weights, training_args.label_smoothing_factor),
        **trainer_inputs(data, tokenizer, splits.label_names),
    )
    metrics = train_and_evaluate(trainer, data["test"], training_args.resume_from_checkpoint)
    trainer.save_model()
    if trainer.is_world_process_zero():
        record = run_record(
            method="teacher",
            splits=splits,
            training_args=training_args,
            arguments=[model_args, data_args],
            layers=None,
            teacher=None,
            teacher_fingerprint=None,
            dataset=data_args.source,
            class_weights=weights,
        )
        record["weights_fingerprint"] = weights_fingerprint(trainer.model)  # what its students will record
        path = save_run(training_args.output_dir, {**record, **metrics}, training_args)
        logger.info(closing_line("Teacher", {**record, **metrics}, path.parent))


if __name__ == "__main__":
    cli.run(main)
