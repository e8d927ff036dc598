"""app/config.py and app/registry.py: the flags and environment the app is configured by, and which
models it loads, names, offers and refuses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import STUDENT, TEACHER, save_run, tiny_config, tiny_model
from transformers import BertModel

from app.config import AppConfig, parse_args
from app.registry import load_registry
from distill.errors import UserError
from distill.results import write_results


@pytest.fixture(autouse=True)
def no_app_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TOXIC_* variable set: unset flags fall back to the environment, which the app's tests share
    (conftest.web sets some for the whole session)."""
    for name in [name for name in os.environ if name.startswith("TOXIC_")]:
        monkeypatch.delenv(name)


def test_flags_travel_through_the_environment() -> None:
    options = parse_args(
        ["--model", "a", "org/b", "--runs", "r", "--non_toxic_label", "neither", "--port", "9"]
    )
    config = options.config
    assert config.models == ("a", "org/b")
    assert (options.host, options.port) == ("127.0.0.1", 9)
    assert AppConfig.from_env(config.to_env()) == config
    assert config.report_dir == Path("r/report")
    assert AppConfig.from_env({}) == AppConfig(models=(), runs=Path("outputs"))


def test_quantize_travels_through_the_environment_and_bad_values_are_refused(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    config = parse_args(["--quantize", "int8"]).config
    assert config.quantize == "int8" and AppConfig.from_env(config.to_env()) == config
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--quantize", "int4"])
    assert exit_info.value.code == 2
    monkeypatch.setenv("TOXIC_QUANTIZE", "fp8")
    with pytest.raises(UserError, match="TOXIC_QUANTIZE='fp8': use int8"):
        AppConfig.from_env()
    with pytest.raises(SystemExit):
        parse_args([])
    assert "TOXIC_QUANTIZE='fp8'" in capsys.readouterr().err


def test_finished_runs_are_served_with_their_test_results(runs: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    registry = load_registry(AppConfig(runs=runs))
    assert registry.names == [STUDENT, TEACHER]  # student-odd has no results.json
    assert "student-odd" in caplog.text and "unfinished" in caplog.text
    teacher = registry.results(TEACHER)
    assert teacher is not None
    assert (teacher["test_accuracy"], teacher["method"], teacher["test_f1_neither"]) == (0.9, "teacher", 0.5)
    assert "log_history" not in teacher


def test_runs_are_named_from_their_results_and_the_best_on_validation_is_the_default(tmp_path: Path) -> None:
    def results(method: str, seed: int, eval_f1: float) -> dict[str, Any]:
        layers = {} if method == "teacher" else {"layers": "even"}
        return {"method": method, "seed": seed, "arguments": layers, "eval_macro_f1": eval_f1}

    save_run(tmp_path / "lora-even" / "seed-1", 0, results("lora", 1, 0.55))
    save_run(tmp_path / "lora-lr-5e-4" / "lora-even" / "seed-1", 1, results("lora", 1, 0.64))
    save_run(tmp_path / "student-even" / "seed-1", 2, results("distill", 1, 0.69))
    save_run(tmp_path / "teacher", 3, results("teacher", 42, 0.74))
    registry = load_registry(AppConfig(runs=tmp_path))
    assert registry.names == [
        "lora-even · seed 1 (lora-even/seed-1)",
        "lora-even · seed 1 (lora-lr-5e-4/lora-even/seed-1)",
        "student-even · seed 1",
        "teacher · seed 42",
    ]
    assert registry.default.name == "teacher · seed 42"  # best validation macro-F1, not the first name
    found = registry.get("student-even/seed-1")  # by folder, as clients named models before
    assert found is not None and found.name == "student-even · seed 1"
    # Given with --model, the first one given is the default.
    given = (str(tmp_path / "student-even" / "seed-1"), str(tmp_path / "teacher"))
    registry = load_registry(AppConfig(models=given))
    assert (registry.names, registry.default.name) == (
        ["student-even · seed 1", "teacher · seed 42"],
        "student-even · seed 1",
    )


def test_a_bad_max_length_is_refused_by_flag_and_by_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--max_length", "0"])
    assert exit_info.value.code == 2 and "not a positive number of tokens" in capsys.readouterr().err
    with pytest.raises(UserError, match="TOXIC_MAX_LENGTH='sixteen'"):
        AppConfig.from_env({"TOXIC_MAX_LENGTH": "sixteen"})
    assert AppConfig.from_env({"TOXIC_MAX_LENGTH": "16"}).max_length == 16


def test_runs_without_a_model_are_not_offered(runs: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    write_results(runs / "baseline-tfidf", {"method": "baseline", "test_macro_f1": 0.7})
    registry = load_registry(AppConfig(runs=runs))
    assert "baseline-tfidf" not in registry.names
    assert "baseline-tfidf" not in caplog.text  # not even a warning: it is not a broken model


def test_missing_and_corrupt_models_are_skipped_by_name(runs: Path, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    corrupt = tmp_path / "corrupt"
    save_run(corrupt, 0)
    weights = corrupt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    bad_config = tmp_path / "bad-config"
    save_run(bad_config, 0)
    (bad_config / "config.json").write_text("{not json")
    missing = tmp_path / "missing"
    config = AppConfig(models=(str(missing), str(corrupt), str(runs / "teacher"), str(bad_config)))
    registry = load_registry(config)
    assert registry.names == [TEACHER]
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 3
    for message, folder in zip(errors, (missing, corrupt, bad_config), strict=True):
        assert message.startswith("Skipping a model:") and str(folder) in message
    assert registry.results(TEACHER) is not None


def test_pickled_weights_and_untrained_heads_are_refused(tmp_path: Path, tokenizer, caplog) -> None:  # type: ignore[no-untyped-def]
    pickled = tmp_path / "pickled"
    model = tiny_model()
    model.config.save_pretrained(pickled)
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")  # pickle: loading it can run code
    tokenizer.save_pretrained(pickled)
    headless = tmp_path / "headless"
    torch.manual_seed(0)
    BertModel(tiny_config(layers=2)).save_pretrained(headless)
    tokenizer.save_pretrained(headless)
    with pytest.raises(UserError, match="None of the 2 model"):
        load_registry(AppConfig(models=(str(pickled), str(headless))))
    assert f"{pickled}" in caplog.text
    assert f"{headless} has no trained classification head" in caplog.text


def test_nothing_to_serve_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="holds no finished run"):
        load_registry(AppConfig(runs=tmp_path))
    with pytest.raises(UserError, match="is not a folder"):
        load_registry(AppConfig(runs=tmp_path / "nowhere"))
