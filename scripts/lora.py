"""LoRA-tune a student built from chosen teacher layers: the alternative to distillation.

    python scripts/lora.py --teacher outputs/teacher --layers even --lora_r 8

The student starts exactly where a distilled student does (the same teacher layers, the same
code); only its LoRA adapters and classification head train, with the stock Trainer on hard labels,
or with the DistillationTrainer under --kd. Without --learning_rate it trains at 2e-3, LoRA's own
rate chosen on validation (docs/results/README.md), not the Trainer's 5e-5. The merged model is saved at
the root of --output_dir (default outputs/lora-<layers>) so it loads like any other run; the adapter
alone goes to adapter/.
"""

import sys
from pathlib import Path

# Import the library beside this script, whatever is installed: `python scripts/x.py` puts scripts/
# first on the import path, where scripts/distill.py would shadow the distill package.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT), *(p for p in sys.path if Path(p or ".").resolve() != _ROOT / "scripts")]

import logging
import os

from transformers import Trainer

from distill import cli
from distill.args import DataArguments, LoraArguments, LoraRunArguments
from distill.layers import layers_name
from distill.lora import add_lora, merge
from distill.losses import class_weights
from distill.models import count_parameters
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
from distill.trainer import ClassificationLoss, DistillationTrainer

logger = logging.getLogger("distill.lora")

# LoraRunArguments: the Trainer's flags with LoRA's own default --learning_rate (2e-3, chosen on
# validation in docs/results/README.md), used when the command line gives none.
ARGUMENTS = (LoraArguments, DataArguments, LoraRunArguments)


def main() -> None:
    lora_args, data_args, training_args = cli.parse_args(ARGUMENTS)
    cli.setup_logging(training_args)
    method = "lora+kd" if lora_args.kd else "lora"
    name = layers_name(lora_args.layers)
    training_args.output_dir = training_args.output_dir or f"outputs/{method.replace('+', '-')}-{name}"
    check_output_dir(training_args)
    seed_run(training_args)  # before LoRA's adapters draw their initial weights

    setup = prepare_student_run(lora_args.teacher, lora_args.layers, data_args)
    model = add_lora(
        make_student(setup.teacher, setup.layers),
        r=lora_args.lora_r,
        alpha=lora_args.lora_alpha,
        dropout=lora_args.lora_dropout,
        target_modules=lora_args.lora_target_modules,
    )
    logger.info(
        "LoRA student on teacher layers %s; adapters on %s",
        setup.layers,
        sorted(model.peft_config["default"].target_modules),
    )

    if lora_args.kd and not lora_args.no_teacher_cache:
        attach_teacher_logits(
            setup, lora_args.teacher, training_args, data_args.max_length, lora_args.teacher_cache_dir
        )
    inputs = trainer_inputs(setup.data, setup.tokenizer, setup.splits.label_names)
    labels = setup.data["train"]["labels"]
    weights = class_weights(labels, len(setup.splits.label_names), training_args.class_weights)
    if lora_args.kd:
        trainer: Trainer = DistillationTrainer(
            model=model,
            teacher=setup.teacher,
            alpha=lora_args.alpha,
            temperature=lora_args.temperature,
            class_weights=weights,
            args=training_args,
            **inputs,
        )
    else:
        loss = ClassificationLoss(model, weights, training_args.label_smoothing_factor)
        trainer = Trainer(model=model, args=training_args, compute_loss_func=loss, **inputs)
    metrics = train_and_evaluate(trainer, setup.data["test"], training_args.resume_from_checkpoint)

    if trainer.is_world_process_zero():
        out = training_args.output_dir
        model.save_pretrained(os.path.join(out, "adapter"))  # before merging, which consumes the adapters
        merged = merge(model)
        merged.save_pretrained(out)
        setup.tokenizer.save_pretrained(out)
        record = run_record(
            method=method,
            splits=setup.splits,
            training_args=training_args,
            arguments=[lora_args, data_args],
            layers=setup.layers,
            teacher=lora_args.teacher,
            teacher_fingerprint=setup.teacher_fingerprint,
            dataset=data_args.source,
            class_weights=weights,
        )
        # LoRA trains adapters + head; what a user deploys is the merged model.
        metrics["num_parameters"] = count_parameters(merged)[0]
        path = save_run(out, {**record, **metrics}, training_args)
        name = "LoRA+KD" if lora_args.kd else "LoRA"
        logger.info(closing_line(f"{name} {lora_args.layers}", {**record, **metrics}, path.parent))


if __name__ == "__main__":
    cli.run(main)
