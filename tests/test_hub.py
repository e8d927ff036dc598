"""distill.hub: the model card and its metadata, and publishing a run's folder (against a local stand-in
for the Hub, which is not reachable here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import LABELS, TINY_RUN, run_script, train_run
from transformers import BertForSequenceClassification, pipeline

from distill.errors import UserError
from distill.hub import describe_layers, model_card, publish
from distill.results import write_results

RESULTS = {
    "method": "distill",
    "layers": [1, 3, 5, 7, 9, 11],
    "teacher": "outputs/teacher",
    "dataset": "tdavidson/hate_speech_offensive",
    "seed": 42,
    "label_names": ["hate_speech", "offensive_language", "neither"],
    "test_accuracy": 0.9012,
    "test_macro_f1": 0.7134,
    "test_f1_hate_speech": 0.3456,
    "test_precision_hate_speech": 0.5,
    "test_recall_hate_speech": 0.25,
    "test_f1_offensive_language": 0.94,
    "test_f1_neither": 0.86,
    "num_parameters": 66_000_000,
    "trainable_parameters": 66_000_000,
    "split_sizes": {"train": 100, "validation": 10, "test": 12},
    "arguments": {"alpha": 0.5, "temperature": 2.0, "max_length": 64, "training": {"learning_rate": 5e-5}},
}


def front_matter(card: str) -> dict:
    _, meta, _ = card.split("---", 2)
    return yaml.safe_load(meta)


def test_card_metadata_parses_and_states_the_metrics():
    card = model_card(RESULTS, "someone/toxic-odd-student")
    meta = front_matter(card)
    assert meta["datasets"] == ["tdavidson/hate_speech_offensive"]
    assert {"distillation", "toxicity", "text-classification"} <= set(meta["tags"])
    assert meta["license"] == "apache-2.0" and meta["pipeline_tag"] == "text-classification"
    assert "base_model" not in meta  # a local teacher folder is not a Hub id
    assert "| macro-F1 | 0.7134 |" in card and "| accuracy | 0.9012 |" in card
    assert "| hate_speech | 0.5000 | 0.2500 | 0.3456 |" in card
    assert 'pipeline("text-classification", model="someone/toxic-odd-student")' in card
    assert "dialect" in card


def test_card_names_a_hub_teacher_as_base_model_and_tags_lora():
    card = model_card(
        {**RESULTS, "method": "lora", "teacher": "someone/teacher", "teacher_on_hub": True}, "someone/x"
    )
    meta = front_matter(card)
    assert meta["base_model"] == "someone/teacher" and "lora" in meta["tags"]


@pytest.mark.parametrize(
    ("layers", "words"),
    [
        ([1, 3, 5, 7, 9, 11], "Student layers 1–6 are copies of teacher layers 1, 3, 5, 7, 9, 11"),
        ([2, 4, 6, 8, 10, 12], "Student layers 1–6 are copies of teacher layers 2, 4, 6, 8, 10, 12"),
        ([2, 5, 11], "Student layers 1–3 are copies of teacher layers 2, 5, 11"),
        (None, "This is the teacher"),
    ],
)
def test_layer_provenance_in_words(layers, words):
    assert describe_layers({**RESULTS, "layers": layers}).startswith(words)


def test_dry_run_writes_the_card_and_lists_files(tmp_path):
    write_results(tmp_path, RESULTS)
    (tmp_path / "model.safetensors").write_bytes(b"x" * 2048)
    (tmp_path / "checkpoint-5").mkdir()
    (tmp_path / "checkpoint-5" / "model.safetensors").write_bytes(b"x")
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    files = dict(publish(tmp_path, "someone/toxic-odd-student", dry_run=True))
    assert files == {
        "README.md": (tmp_path / "README.md").stat().st_size,
        "adapter/adapter_config.json": 2,
        "model.safetensors": 2048,
        "results.json": (tmp_path / "results.json").stat().st_size,
    }


@pytest.mark.parametrize(
    ("repo_id", "token", "message"),
    [
        ("toxic-odd-student", "hf_x", "must be NAMESPACE/NAME"),
        ("someone/x", None, "No Hugging Face token"),
        ("someone/x", "not-a-token", "malformed"),
    ],
)
def test_publish_errors(tmp_path, monkeypatch, repo_id, token, message):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("distill.hub._saved_token", lambda: None)
    write_results(tmp_path, RESULTS)
    with pytest.raises(UserError, match=message):
        publish(tmp_path, repo_id, token=token)


def test_run_without_results_is_refused(tmp_path):
    with pytest.raises(UserError, match="not a finished run"):
        publish(tmp_path, "someone/x", dry_run=True)


@pytest.mark.slow
def test_push_to_hub_script_dry_run_after_distill(tiny_student, tmp_path, capsys):
    run = tmp_path / "student-odd"
    shutil.copytree(tiny_student("odd").folder, run)  # the dry run writes the card into the run
    run_script("push_to_hub", run, "--repo_id", "someone/toxic-odd-student", "--dry_run")
    card = (run / "README.md").read_text()
    results = json.loads((run / "results.json").read_text())
    assert f"| macro-F1 | {results['test_macro_f1']:.4f} |" in card
    assert "teacher layers 1, 3, 5, 7, 9, 11" in card
    assert "Would upload" in capsys.readouterr().out


def test_push_to_hub_flag_needs_a_namespaced_id(teacher_dir, csv_data, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_script(
            "distill",
            "--teacher",
            teacher_dir,
            "--dataset",
            csv_data,
            "--output_dir",
            tmp_path / "o",
            "--push_to_hub",
            *TINY_RUN,
        )
    assert "--hub_model_id NAMESPACE/NAME" in capsys.readouterr().err


# -- --push_to_hub: one upload of a clean folder, against a local stand-in for the Hub ----------------


class LocalHub:
    """Stands in for `huggingface_hub.HfApi`: each repo is a local folder, filled as upload_folder would."""

    def __init__(self, root: Path) -> None:
        self.root, self.uploads = root, []

    def __call__(self, token: str | None = None, **_: object) -> LocalHub:
        return self

    def whoami(self) -> dict:
        return {"name": "someone"}

    def create_repo(self, repo_id: str, **_: object) -> None:
        (self.root / repo_id).mkdir(parents=True, exist_ok=True)

    def upload_folder(
        self, *, repo_id: str, folder_path: Path, ignore_patterns: list[str], **_: object
    ) -> None:
        from huggingface_hub.utils import filter_repo_objects

        files = [p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file()]
        for name in filter_repo_objects(files, ignore_patterns=ignore_patterns):
            (self.root / repo_id / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(folder_path) / name, self.root / repo_id / name)
        self.uploads.append(repo_id)


@pytest.mark.slow
@pytest.mark.parametrize(("script", "extra"), [("distill", []), ("lora", ["--lora_r", "4"])])
def test_push_to_hub_uploads_one_clean_folder(script, extra, teacher_dir, csv_data, tmp_path, monkeypatch):
    hub = LocalHub(tmp_path / "hub")
    monkeypatch.setattr("huggingface_hub.HfApi", hub)
    repo = f"someone/toxic-{script}"
    train_run(
        script, teacher_dir, csv_data, tmp_path / "run", "--layers", "even", "--save_strategy", "steps",
        "--save_steps", "1", "--eval_strategy", "steps", "--eval_steps", "1",
        "--push_to_hub", "--hub_model_id", repo, "--hub_token", "hf_test", *extra,
    )  # fmt: skip
    assert hub.uploads == [repo]  # once, at the end: never per checkpoint
    uploaded = hub.root / repo
    assert not (uploaded / "adapter_config.json").exists()
    assert not list(uploaded.glob("checkpoint-*"))
    assert 'pipeline("text-classification"' in (uploaded / "README.md").read_text()
    classifier = pipeline("text-classification", model=str(uploaded))
    assert type(classifier.model) is BertForSequenceClassification
    assert classifier.model.config.num_hidden_layers == 6
    assert classifier("you people are vermin")[0]["label"] in LABELS


@pytest.mark.slow
def test_push_to_hub_without_a_token_is_refused_before_training(
    teacher_dir, csv_data, tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("distill.hub._saved_token", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        train_run(
            "distill", teacher_dir, csv_data, tmp_path / "run", "--push_to_hub", "--hub_model_id", "a/b"
        )
    assert exit_info.value.code == 2
    assert "No Hugging Face token" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
