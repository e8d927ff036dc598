"""The flags that are ours. Everything else is `transformers.TrainingArguments`, parsed beside these."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from distill.errors import UserError
from distill.hub import REPO_ID, hub_token
from distill.precision import why_not_fast

logger = logging.getLogger(__name__)

DEFAULT_DATASET = "tdavidson/hate_speech_offensive"
DEFAULT_TEACHER_BASE = "bert-base-uncased"
DEFAULT_TEACHER = "outputs/teacher"  # where train_teacher.py writes, and students look, by default


@dataclass
class DataArguments:
    dataset: str = field(
        default=DEFAULT_DATASET,
        metadata={"help": "A Hugging Face Hub dataset id, or a local .csv, .jsonl/.json or .parquet file."},
    )
    train_file: str | None = field(
        default=None,
        metadata={
            "help": "A local .csv, .jsonl/.json or .parquet file of training examples, instead of --dataset. "
            "Splits not given as files are carved out of it."
        },
    )
    validation_file: str | None = field(
        default=None,
        metadata={
            "help": "The validation split as a file, used as given (less texts that are also in train)."
        },
    )
    test_file: str | None = field(
        default=None,
        metadata={"help": "The test split as a file, used as given (less texts that are also in train)."},
    )
    text_column: str | None = field(
        default=None,
        metadata={"help": "Column holding the text. Default: the first of tweet, text, comment_text."},
    )
    label_column: str | None = field(
        default=None,
        metadata={"help": "Column holding the label. Default: the first of class, label, labels."},
    )
    class_names: list[str] | None = field(
        default=None,
        metadata={
            "help": "Names of the classes in label order (integer labels) or the allowed string labels. "
            "Default: from the dataset (a ClassLabel, or the Davidson corpus's known names). "
            "(--label_names is TrainingArguments' flag for the label keys of a batch.)"
        },
    )
    validation_size: float = field(
        default=0.1, metadata={"help": "Share of the data held out for validation."}
    )
    test_size: float = field(default=0.1, metadata={"help": "Share of the data held out for the final test."})
    split_seed: int = field(
        default=42,
        metadata={
            "help": "Seed of the stratified train/validation/test split. Kept apart from --seed so that runs "
            "with different training seeds still share one test set."
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use only this many training examples (taken after splitting)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use only this many validation examples (taken after splitting)."}
    )
    max_test_samples: int | None = field(
        default=None, metadata={"help": "Use only this many test examples (taken after splitting)."}
    )
    max_length: int = field(
        default=128,
        metadata={
            "help": "Truncate texts to this many tokens, in training and (recorded with the model) in serving."
        },
    )
    non_toxic_label: str | None = field(
        default=None,
        metadata={
            "help": "The class that means 'not toxic', saved in the model's config.json for the app. Default: "
            "inferred from the class names (neither, normal, clean, ... or a not-/non-/no- prefix)."
        },
    )

    def __post_init__(self) -> None:
        if self.train_file is not None and self.dataset != DEFAULT_DATASET:
            raise UserError(
                f"Both --dataset {self.dataset} and --train_file {self.train_file}: give the training "
                "data one way."
            )

    @property
    def source(self) -> str:
        """Where the training data comes from, as results.json and model cards name it."""
        return self.train_file or self.dataset

    def split_options(self) -> dict:
        """The arguments of `distill.data.load_splits`."""
        serving = ("max_length", "non_toxic_label")
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in serving}


@dataclass
class TeacherArguments:
    model_name_or_path: str = field(
        default=DEFAULT_TEACHER_BASE,
        metadata={"help": "Pretrained encoder to fine-tune as the teacher: a Hub id or a local folder."},
    )


@dataclass
class StudentArguments:
    """What every student run (distilled or LoRA) is built from and listens to."""

    teacher: str = field(
        default=DEFAULT_TEACHER,
        metadata={"help": "The fine-tuned teacher (made by scripts/train_teacher.py): a folder or a Hub id."},
    )
    layers: str = field(
        default="even",
        metadata={
            "help": "Teacher layers the student starts from, numbered 1..N: odd, even, top (first half), "
            "bottom (second half), all, or a comma list such as 2,5,11."
        },
    )
    alpha: float = field(
        default=0.5,
        metadata={"help": "Weight of the soft-label KL term; 1 - alpha weighs the hard-label CE."},
    )
    temperature: float = field(default=2.0, metadata={"help": "Softmax temperature of the KL term."})
    no_teacher_cache: bool = field(
        default=False,
        metadata={"help": "Run the teacher on every batch instead of reusing its cached logits."},
    )
    teacher_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Where cached teacher logits live. Default: .logit-cache in the teacher's folder."},
    )


@dataclass
class DistillationArguments(StudentArguments):
    cosine_weight: float = field(
        default=0.0,
        metadata={
            "help": "Weight of a cosine loss between teacher and student last hidden states (DistilBERT)."
        },
    )
    pkd_weight: float = field(
        default=0.0,
        metadata={
            "help": "Weight β of layer matching (Patient KD): the MSE between the L2-normalised [CLS] states "
            "of each student layer and its teacher layer (--pkd_targets), added to the loss. 0: off."
        },
    )
    pkd_targets: str | None = field(
        default=None,
        metadata={
            "help": "The teacher layer (1..N) each student layer matches, one per student layer, such as "
            "2,4,6,8,10,12. Default: the layer it was copied from (--layers)."
        },
    )

    def __post_init__(self) -> None:
        for name in ("cosine_weight", "pkd_weight"):
            if getattr(self, name) < 0:
                raise UserError(f"--{name} must be 0 or more, got {getattr(self, name)}.")


@dataclass
class LoraArguments(StudentArguments):
    """LoRA on a student; --alpha, --temperature and the teacher cache apply with --kd."""

    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = lora_alpha / r)."})
    lora_dropout: float = field(default=0.1, metadata={"help": "Dropout on the LoRA path."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={"help": "Modules that get adapters. Default: the encoder's query and value projections."},
    )
    kd: bool = field(
        default=False,
        metadata={
            "help": "Train with the DistillationTrainer (teacher soft labels) instead of hard labels only."
        },
    )


@dataclass
class RunArguments(TrainingArguments):
    """TrainingArguments with this project's defaults: evaluate and save every epoch, keep the best
    checkpoint by validation macro-F1, and never report to an online tracker unless asked."""

    output_dir: str | None = field(
        default=None,
        metadata={"help": "Where the model, tokenizer and results.json go. Default: per script."},
    )
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate on validation."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to save a checkpoint."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Keep at most this many checkpoints."})
    load_best_model_at_end: bool = field(
        default=True, metadata={"help": "Finish with the checkpoint that scored best on validation."}
    )
    metric_for_best_model: str | None = field(
        default="macro_f1", metadata={"help": "Validation metric that selects the checkpoint."}
    )
    # The order matters: HfArgumentParser parses only this spelling of the union (as TrainingArguments has it).
    report_to: None | str | list[str] = field(  # noqa: RUF036
        default="none", metadata={"help": "Trackers to log to (tensorboard, wandb, ...); none by default."}
    )
    logging_steps: float = field(
        default=10, metadata={"help": "Log the training loss every this many steps."}
    )
    # Random batches of tweets pad to about twice the tokens of length-grouped ones: grouping halves the
    # work of every training and evaluation step. The Trainer reads the `length` column of the data.
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={
            "help": "Sampler for training and evaluation: group_by_length (default: batches of similar "
            "length, in random order), random, sequential or batch_rebalance.",
            "choices": ["random", "sequential", "group_by_length", "batch_rebalance"],
        },
    )
    # Our datasets hold only model inputs, labels, `length` (for the sampler; the collator drops it)
    # and cached teacher logits, so nothing needs removing, and `length` must reach the sampler.
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Drop dataset columns the model does not take (default: off; nothing to drop)."},
    )
    # Pinned memory only speeds up copies to an accelerator; without one torch warns on every loader.
    dataloader_pin_memory: bool = field(
        default=torch.accelerator.is_available(),
        metadata={
            "help": "Pin batches in memory for faster copies to the GPU (default: on when there is one)."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Allow replacing a finished run (a folder with results.json) in --output_dir."},
    )
    # Balanced by default: unweighted, the measured teachers and students never predicted the rare
    # hate-speech class (F1 0.0), and balanced weights raised macro-F1 by about 0.1 (docs/results/README.md).
    class_weights: str = field(
        default="balanced",
        metadata={
            "help": "Per-class weights of the training cross-entropy: balanced (n / (classes * count) "
            "from the training split's label counts), none, or one positive number per class, e.g. 4,1,1."
        },
    )
    # Set from --push_to_hub in __post_init__, never parsed.
    publish_to_hub: bool = field(
        init=False, default=False, metadata={"help": "Upload the finished run once (--push_to_hub)."}
    )

    def __post_init__(self) -> None:
        if self.label_names not in (None, ["labels"]):
            raise UserError(
                f"--label_names {' '.join(self.label_names)}: this is the Trainer's flag for the label keys "
                "of a batch, which are always `labels` here. To name the classes, use --class_names."
            )
        if self.push_to_hub and not REPO_ID.match(self.hub_model_id or ""):
            # Checked now, not after hours of training.
            raise UserError(
                "--push_to_hub needs --hub_model_id NAMESPACE/NAME, such as your-name/toxic-even-student."
            )
        if self.push_to_hub:
            hub_token(self.hub_token)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.accelerator.is_available():
            # Accelerate runs CPU processes data-parallel only with use_cpu; without it each of
            # `torch.distributed.run --nproc_per_node N` would silently train alone.
            self.use_cpu = True
        # One publishing path: the card and one upload of the finished folder (distill.hub.publish).
        # The Trainer's own push would upload every checkpoint, and for LoRA copy the adapter's files
        # beside the merged weights, where from_pretrained would read the folder as teacher + adapter.
        self.publish_to_hub, self.push_to_hub = self.push_to_hub, False
        fallback = self._reduced_precision_without_hardware()
        output_dir_given = self.output_dir is not None
        # Selecting a checkpoint needs both evaluation and checkpoints; without them the last model is kept.
        if self.save_strategy == "no" or self.eval_strategy == "no":
            self.load_best_model_at_end = False
        super().__post_init__()
        if self.n_gpu > 1:
            # One process driving several GPUs means torch's DataParallel, under which the Trainer
            # multiplies a custom loss (ClassificationLoss) by the GPU count: the teacher and LoRA
            # would train and record twice the loss. One process per GPU is exact and faster.
            raise UserError(
                f"{self.n_gpu} GPUs are visible to this one process, which would train them through "
                "torch's DataParallel, where the Trainer scales this project's losses wrongly: start one "
                f"process per GPU (accelerate launch --multi_gpu --num_processes {self.n_gpu} SCRIPT ...), "
                "or use one GPU (CUDA_VISIBLE_DEVICES=0)."
            )
        if fallback:
            self.mixed_precision = "no"  # also over ACCELERATE_MIXED_PRECISION, which the Trainer reads
        if not output_dir_given:
            self.output_dir = None  # the script picks a default that names the run

    def _reduced_precision_without_hardware(self) -> str | None:
        """Turn off bf16/fp16 where nothing here runs it fast, and say so; return what was asked for.

        Asked for by --bf16/--fp16 or by `accelerate launch` (its config or --mixed_precision, passed
        on as ACCELERATE_MIXED_PRECISION). A CPU with bf16 units trains in bf16 (see distill.precision).
        """
        asked = (
            "fp16"
            if self.fp16
            else "bf16"
            if self.bf16
            else os.environ.get("ACCELERATE_MIXED_PRECISION", "no").lower()
        )
        if asked not in ("bf16", "fp16"):
            return None
        reason = why_not_fast(asked, self.use_cpu)
        if reason is None:
            # The Trainer refuses bf16 without a GPU unless told that the CPU is meant.
            self.use_cpu = self.use_cpu or not torch.cuda.is_available()
            return None
        self.bf16 = self.fp16 = False
        logger.warning("%s was asked for, but %s: training in fp32.", asked, reason)
        return asked


# LoRA trains rank-8 adapters that start at zero: the Trainer's 5e-5, right for full fine-tuning,
# barely moves them. 2e-3 is the rate chosen on validation for both LoRA bodies in docs/results/README.md
# (*Learning rates*: 6-layer test macro-F1 0.7042 ± 0.0215 at 2e-3 against 0.6472 at 5e-5).
LORA_LEARNING_RATE = 2e-3


@dataclass
class LoraRunArguments(RunArguments):
    """RunArguments with LoRA's own default learning rate."""

    learning_rate: float = field(
        default=LORA_LEARNING_RATE,
        metadata={
            "help": "Initial AdamW learning rate. The default is LoRA's own: the rate chosen on validation "
            "for LoRA in docs/results/README.md ('Learning rates'); the Trainer's 5e-5 barely moves adapters "
            "that start at zero."
        },
    )
