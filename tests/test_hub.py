import json

import pytest
import yaml
from conftest import TINY_RUN, run_script

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
def test_push_to_hub_script_dry_run_after_distill(teacher_dir, csv_data, tmp_path, capsys):
    run = tmp_path / "student-odd"
    run_script(
        "distill",
        "--teacher",
        teacher_dir,
        "--dataset",
        csv_data,
        "--layers",
        "odd",
        "--output_dir",
        run,
        *TINY_RUN,
    )
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
