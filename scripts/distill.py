"""Distil a fine-tuned teacher into a student built from chosen teacher layers.

    accelerate launch scripts/distill.py --teacher outputs/teacher --layers even

--layers is odd, even, top (layers 1..6 of 12), bottom (7..12) or a list such as 2,5,11 (1-based).
Every TrainingArguments flag works (--learning_rate, --num_train_epochs, --bf16, ...). The student,
its tokenizer and results.json land at the root of --output_dir (default outputs/student-<layers>).
"""

import sys
from pathlib import Path

# Import the library beside this script, whatever is installed: `python scripts/x.py` puts scripts/
# first on the import path, where scripts/distill.py would shadow the distill package.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT), *(p for p in sys.path if Path(p or ".").resolve() != _ROOT / "scripts")]

import logging

from distill import cli
from distill.args import DataArguments, DistillationArguments, RunArguments
from distill.layers import layers_name
from distill.losses import class_weights
from distill.runner import (
    attach_teacher_logits,
    check_output_dir,
    closing_line,
    prepare_student_run,
    run_record,
    save_run,
    seed_run,
    train_and_evaluate,
    trainer_inputs,
)
from distill.students import make_student
from distill.trainer import DistillationTrainer

logger = logging.getLogger("distill.distill")


def main() -> None:
    kd_args, data_args, training_args = cli.parse_args((DistillationArguments, DataArguments, RunArguments))
    cli.setup_logging(training_args)
    training_args.output_dir = training_args.output_dir or f"outputs/student-{layers_name(kd_args.layers)}"
    check_output_dir(training_args)
    seed_run(training_args)

    setup = prepare_student_run(kd_args.teacher, kd_args.layers, data_args, kd_args.pkd_targets)
    matching = kd_args.pkd_weight > 0
    if kd_args.no_teacher_cache or kd_args.cosine_weight > 0:
        why = "--no_teacher_cache" if kd_args.no_teacher_cache else "the cosine term needs its hidden states"
        logger.info("Running the teacher on every batch (%s)", why)
    else:
        attach_teacher_logits(
            setup, kd_args.teacher, training_args, data_args.max_length, kd_args.teacher_cache_dir, matching
        )
    student = make_student(setup.teacher, setup.layers)
    labels = setup.data["train"]["labels"]
    weights = class_weights(labels, len(setup.splits.label_names), training_args.class_weights)
    logger.info("Student: %d layers, copies of teacher layers %s", len(setup.layers), setup.layers)
    if matching:
        logger.info(
            "Layer matching (β %g): student layers 1..%d learn the [CLS] states of teacher layers %s",
            kd_args.pkd_weight,
            len(setup.layers),
            setup.pkd_targets,
        )

    trainer = DistillationTrainer(
        model=student,
        teacher=setup.teacher,
        alpha=kd_args.alpha,
        temperature=kd_args.temperature,
        cosine_weight=kd_args.cosine_weight,
        pkd_weight=kd_args.pkd_weight,
        pkd_targets=setup.pkd_targets,
        class_weights=weights,
        args=training_args,
        **trainer_inputs(setup.data, setup.tokenizer, setup.splits.label_names),
    )
    metrics = train_and_evaluate(trainer, setup.data["test"], training_args.resume_from_checkpoint)
    trainer.save_model()
    if trainer.is_world_process_zero():
        record = run_record(
            method="distill",
            splits=setup.splits,
            training_args=training_args,
            arguments=[kd_args, data_args],
            layers=setup.layers,
            teacher=kd_args.teacher,
            teacher_fingerprint=setup.teacher_fingerprint,
            dataset=data_args.source,
            class_weights=weights,
        )
        # The targets as parsed (the flag's default is "the layers copied"), null when matching is off.
        record["pkd_targets"] = setup.pkd_targets if matching else None
        path = save_run(training_args.output_dir, {**record, **metrics}, training_args)
        logger.info(closing_line(f"Student {kd_args.layers}", {**record, **metrics}, path.parent))


if __name__ == "__main__":
    cli.run(main)
