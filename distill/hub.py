"""Model cards and uploads to the Hugging Face Hub, built from a run's results.json."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from distill.errors import UserError
from distill.results import atomic_write, read_results

# Never uploaded: intermediate checkpoints, temporary files, pickled trainer state, and adapter files
# at the root, where from_pretrained would load the folder as base model + adapter instead of the
# merged student (a LoRA run keeps its adapter in adapter/).
IGNORE = [
    "checkpoint-*",
    "checkpoint-*/**",
    ".*",
    "*.tmp",
    "training_args.bin",
    "adapter_config.json",
    "adapter_model.*",
]
REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
LIMITATIONS = """\
- Trained on the Davidson et al. (2017) corpus of English tweets, whose labels separate *hate speech*
  from *offensive language* by crowd vote: the boundary is subjective, and hate speech is only 5.8% of
  the data, so the hate class is the least reliable (see its F1 above).
- The corpus is known to associate African-American English with the offensive class (Sap et al.,
  2019; Davidson et al., 2019): expect more false positives on that dialect. Do not use the model to
  take automatic action against people; use it to triage for human review.
- Tweets from 2017: slang, slurs and targets drift; re-evaluate on your own data before use."""


def describe_layers(results: dict[str, Any]) -> str:
    """Layer provenance in words: which teacher layers each student layer was copied from."""
    layers = results.get("layers")
    if not layers:
        return "This is the teacher: all of its layers were fine-tuned."
    span = f"1–{len(layers)}" if len(layers) > 1 else "1"
    return (
        f"Student layers {span} are copies of teacher layers {', '.join(map(str, layers))} "
        f"(numbered 1 = nearest the input), taken from `{results.get('teacher')}` before training."
    )


def model_card(results: dict[str, Any], repo_id: str, license: str = "apache-2.0") -> str:
    """A Hub model card (YAML metadata + markdown) stating what the run is and how well it does."""
    method = results.get("method", "distill")
    args = results.get("arguments", {})
    training = args.get("training", {})
    labels = results.get("label_names", [])
    dataset = str(results.get("dataset", ""))
    teacher = results.get("teacher")
    tags = ["text-classification", "toxicity", "hate-speech"]
    tags += {
        "distill": ["distillation"],
        "lora": ["lora", "peft"],
        "lora+kd": ["lora", "peft", "distillation"],
    }.get(method, [])
    data = ModelCardData(
        language="en",
        license=license,
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=tags,
        metrics=["accuracy", "f1"],
        datasets=[dataset] if _is_hub_id(dataset) else None,
        base_model=teacher if results.get("teacher_on_hub") else None,
    )
    per_class = "\n".join(
        f"| {name} | {results.get(f'test_precision_{name}', 0):.4f} | {results.get(f'test_recall_{name}', 0):.4f} "
        f"| {results.get(f'test_f1_{name}', 0):.4f} |"
        for name in labels
    )
    what = {
        "teacher": "the fine-tuned teacher classifier",
        "distill": "a student distilled (soft teacher labels + hard labels) from a fine-tuned teacher",
        "lora": "a LoRA-tuned student (adapters merged into the weights)",
        "lora+kd": "a LoRA-tuned student trained on the teacher's soft labels (adapters merged)",
    }.get(method, method)
    hyper = {
        "learning_rate": training.get("learning_rate"),
        "num_train_epochs": training.get("num_train_epochs"),
        "max_steps": training.get("max_steps"),
        "per_device_train_batch_size": training.get("per_device_train_batch_size"),
        "seed": results.get("seed"),
        "max_length": args.get("max_length"),
        **{
            k: args[k] for k in ("alpha", "temperature", "cosine_weight", "lora_r", "lora_alpha") if k in args
        },
    }
    hyper_lines = "\n".join(f"- `{k}`: {v}" for k, v in hyper.items() if v is not None)
    sizes = results.get("split_sizes", {})
    body = f"""
# {repo_id.split("/")[-1]}

A {len(results.get("layers") or []) or "full"}-layer toxic-language classifier: {what}, made with
toxic-distill. Classes: {", ".join(f"`{x}`" for x in labels)}.

## Results on the held-out test split

| metric | value |
|---|---|
| accuracy | {results.get("test_accuracy", float("nan")):.4f} |
| macro-F1 | {results.get("test_macro_f1", float("nan")):.4f} |

| class | precision | recall | F1 |
|---|---|---|---|
{per_class}

Test split: {sizes.get("test", "?")} examples (hash `{results.get("test_split_hash")}`), never used for
training or checkpoint selection; the checkpoint was selected on a validation split of
{sizes.get("validation", "?")} examples. Trained on {sizes.get("train", "?")} examples of `{dataset}`.

## Provenance

{describe_layers(results)} Parameters: {results.get("num_parameters", 0):,}
(trained: {results.get("trainable_parameters", 0):,}).

## Training hyperparameters

{hyper_lines}

## How to use

```python
from transformers import pipeline

classifier = pipeline("text-classification", model="{repo_id}")
classifier("I hate you")
```

## Intended use and limitations

{LIMITATIONS}
"""
    return ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n" + body).content


def upload_plan(run_dir: Path) -> list[tuple[str, int]]:
    """(relative path, bytes) of every file the upload sends."""
    files = []
    for path in sorted(run_dir.rglob("*")):
        relative = path.relative_to(run_dir).as_posix()
        if path.is_file() and not any(fnmatch.fnmatch(relative, p) for p in IGNORE):
            files.append((relative, path.stat().st_size))
    return files


def publish(
    run_dir: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    dry_run: bool = False,
    license: str = "apache-2.0",
) -> list[tuple[str, int]]:
    """Write `run_dir/README.md` (the card) and upload the run folder to `repo_id`; with `dry_run`,
    only write the card and return what would be uploaded."""
    run_dir = Path(run_dir)
    if not REPO_ID.match(repo_id):
        raise UserError(
            f"--repo_id {repo_id!r} must be NAMESPACE/NAME, such as your-username/toxic-odd-student."
        )
    results = read_results(run_dir)
    atomic_write(run_dir / "README.md", model_card(results, repo_id, license))
    plan = upload_plan(run_dir)
    if dry_run:
        return plan
    token = hub_token(token)
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=token)
    try:
        api.whoami()
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            folder_path=run_dir,
            ignore_patterns=IGNORE,
            commit_message="Upload run from toxic-distill",
        )
    except HfHubHTTPError as err:
        status = getattr(err.response, "status_code", None)
        if status == 401:
            raise UserError(
                "The Hugging Face token was rejected (401): check it, or create a new one."
            ) from err
        raise UserError(f"The Hub refused the upload to {repo_id}: {err}") from err
    except OSError as err:  # offline, DNS, connection refused
        raise UserError(f"Cannot reach the Hugging Face Hub to upload {repo_id}: {err}") from err
    return plan


def hub_token(token: str | None = None) -> str:
    """The token to upload with: the one given, else HF_TOKEN, else the one `hf auth login` saved."""
    token = token or os.environ.get("HF_TOKEN") or _saved_token()
    if not token:
        raise UserError("No Hugging Face token: pass --token, set HF_TOKEN, or run `hf auth login`.")
    if not token.startswith("hf_"):
        raise UserError(
            "That Hugging Face token is malformed (tokens start with `hf_`): create one at https://huggingface.co/settings/tokens."
        )
    return token


def _saved_token() -> str | None:
    from huggingface_hub import get_token

    return get_token()


def _is_hub_id(name: str) -> bool:
    return bool(REPO_ID.match(name)) and not Path(name).exists() and not name.startswith((".", "/"))
