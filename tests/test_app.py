"""The web app: inference, model loading, the pages' callbacks, the JSON API, gunicorn and a browser."""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dash
import dash_bootstrap_components as dbc
import pytest
import torch
from conftest import LABELS, ROOT, TOKENIZER, tiny_config
from dash import dcc, html
from flask import Flask
from transformers import AutoTokenizer, BertForSequenceClassification, BertModel, RobertaConfig

from app.api import MAX_BATCH, MAX_EXPLAIN_BATCH, create_blueprint
from app.config import AppConfig, parse_args
from app.inference import Classifier, max_input_length, text_problem
from app.registry import ModelRegistry, load_registry
from distill.errors import UserError
from distill.results import write_results

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def tiny_model(seed: int = 0, **config: Any) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(tiny_config(layers=2, **config)).eval()


def save_run(folder: Path, seed: int, results: dict[str, Any] | None = None) -> Path:
    """A finished run as the scripts leave it: model, tokenizer and (unless None) results.json."""
    tiny_model(seed).save_pretrained(folder)
    AutoTokenizer.from_pretrained(TOKENIZER).save_pretrained(folder)
    if results is not None:
        write_results(folder, results)
    return folder


# The runs' names in the app, from their results.json.
TEACHER = "teacher · seed 42"
STUDENT = "student-even · seed 1"


def run_results(method: str, accuracy: float) -> dict[str, Any]:
    return {
        "method": method,
        "seed": 42 if method == "teacher" else 1,
        "arguments": {} if method == "teacher" else {"layers": "even"},
        "eval_macro_f1": accuracy - 0.1,
        "layers": None if method == "teacher" else [2, 4, 6, 8, 10, 12],
        "teacher": None if method == "teacher" else "outputs/teacher",
        "num_parameters": 1234,
        "test_accuracy": accuracy,
        "test_macro_f1": accuracy - 0.2,
        **{f"test_f1_{label}": 0.5 for label in LABELS},
        "log_history": [{"loss": 1.0}],
    }


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """outputs/ with two finished runs and one unfinished (model but no results.json)."""
    root = tmp_path_factory.mktemp("outputs")
    save_run(root / "teacher", 0, run_results("teacher", 0.9))
    save_run(root / "student-even", 1, run_results("distill", 0.8))
    save_run(root / "student-odd", 2, results=None)
    return root


@pytest.fixture(scope="session")
def web(runs: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app module, imported once: Dash registers pages and callbacks per process, not per app."""
    env = pytest.MonkeyPatch()
    env.setenv("TOXIC_RUNS", str(runs))
    env.setenv("TOXIC_MODELS", "")
    env.setenv("TOXIC_NON_TOXIC_LABEL", "")
    env.setenv("TOXIC_REPORT", str(tmp_path_factory.mktemp("no-report") / "report"))
    yield importlib.import_module("app.app")
    env.undo()


@pytest.fixture(scope="session")
def client(web: Any) -> Any:
    return web.server.test_client()


def page(path: str) -> Any:
    """The module of the page registered at `path` (Dash imports pages under its own module names)."""
    entry = next(entry for entry in dash.page_registry.values() if entry["path"] == path)
    return sys.modules[entry["module"]]


def find(component: Any, component_id: str) -> Any:
    """The component with `component_id` inside a layout, depth first."""
    if getattr(component, "id", None) == component_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = find(child, component_id)
            if found is not None:
                return found
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- inference ---------------------------------------------------------------------------------------


def test_scores_are_probabilities_and_the_verdict_follows_the_top_class(tokenizer) -> None:  # type: ignore[no-untyped-def]
    classifier = Classifier("tiny", tiny_model(), tokenizer)
    [result] = classifier.classify(["I hate you"])
    assert list(result["scores"]) == LABELS
    assert sum(result["scores"].values()) == pytest.approx(1, abs=1e-6)
    assert result["label"] == max(result["scores"], key=result["scores"].__getitem__)
    assert result["toxic"] == (result["label"] != "neither")
    assert result["truncated"] is False
    assert result["latency_ms"] > 0
    assert not classifier.model.training


@pytest.mark.parametrize(
    ("winner", "toxic"), [("neither", False), ("hate_speech", True), ("offensive_language", True)]
)
def test_every_class_but_the_non_toxic_one_is_toxic(tokenizer, winner: str, toxic: bool) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model()
    with torch.no_grad():  # a head that always predicts `winner`
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([5.0 if label == winner else 0.0 for label in LABELS]))
    [result] = Classifier("tiny", model, tokenizer).classify(["whatever"])
    assert (result["label"], result["toxic"]) == (winner, toxic)
    assert result["scores"][winner] > 0.98


def test_long_text_is_truncated_at_the_models_position_limit(tokenizer) -> None:  # type: ignore[no-untyped-def]
    classifier = Classifier("tiny", tiny_model(), tokenizer)
    assert tokenizer.model_max_length > 10**6  # this tokenizer states no limit; the model has 128 positions
    assert classifier.max_length == 128
    long, short = classifier.classify(["word " * 20_000, "short"])
    assert long["truncated"] is True
    assert short["truncated"] is False


def test_a_text_that_exactly_fills_the_limit_is_not_truncated(tokenizer) -> None:  # type: ignore[no-untyped-def]
    classifier = Classifier("tiny", tiny_model(), tokenizer)
    exact = " ".join(["word"] * (classifier.max_length - 2))  # plus [CLS] and [SEP]
    assert len(tokenizer(exact)["input_ids"]) == classifier.max_length
    assert classifier.classify([exact, exact + " word"])[0]["truncated"] is False
    assert classifier.classify([exact + " word"])[0]["truncated"] is True


def test_roberta_style_positions_leave_room_for_the_padding_offset() -> None:
    unset: Any = SimpleNamespace(model_max_length=int(1e30))  # a tokenizer saved without a limit
    limited: Any = SimpleNamespace(model_max_length=64)
    assert max_input_length(unset, RobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    assert max_input_length(unset, tiny_config()) == 128
    assert max_input_length(limited, tiny_config()) == 64


def test_batches_give_the_same_answers_as_single_texts(tokenizer) -> None:  # type: ignore[no-untyped-def]
    classifier = Classifier("tiny", tiny_model(), tokenizer, batch_size=4)
    # Different lengths in mixed order: batches are sorted by length, answers must come back in order.
    texts = [f"comment number {i} " + "blah " * i for i in (7, 2, 9, 0, 5, 1, 8, 3, 6, 4)]
    batched = classifier.classify(texts)
    assert len(batched) == len(texts)
    for text, result in zip(texts, batched, strict=True):
        [alone] = classifier.classify([text])
        assert result["label"] == alone["label"]
        for label in LABELS:
            assert result["scores"][label] == pytest.approx(alone["scores"][label], abs=1e-5)


def test_a_model_with_unknown_classes_is_refused_naming_it(tokenizer) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model(id2label={0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, label2id=None)
    with pytest.raises(UserError, match=r"some/model: .*--non_toxic_label"):
        Classifier("x", model, tokenizer, source="some/model")


@pytest.mark.parametrize(
    ("text", "problem"),
    [("hi", None), ("", "empty"), (" \n\t", "empty"), (None, "string"), (3, "string"), ("\ud800", "Unicode")],
)
def test_text_problem(text: object, problem: str | None) -> None:
    found = text_problem(text)
    assert found is None if problem is None else problem in str(found)


# --- configuration and loading ------------------------------------------------------------------------


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


def test_int8_models_answer_like_fp32_and_say_they_are_int8(runs: Path) -> None:
    fp32 = load_registry(AppConfig(runs=runs))
    int8 = load_registry(AppConfig(runs=runs, quantize="int8"))
    assert {m["precision"] for m in int8.describe()} == {"int8"}
    assert {m["precision"] for m in fp32.describe()} == {"fp32"}
    texts = ["you people are vermin", "lovely weather at the beach", "short", "this is damn stupid lol " * 3]
    for name in fp32.names:
        exact, quantized = fp32.get(name).classify(texts), int8.get(name).classify(texts)  # type: ignore[union-attr]
        for a, b in zip(exact, quantized, strict=True):
            for label in LABELS:
                assert b["scores"][label] == pytest.approx(a["scores"][label], abs=0.02)


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


# --- pages: callbacks called directly ----------------------------------------------------------------


def test_classify_callback_shows_verdict_class_chart_and_time(web: Any) -> None:
    children = page("/").classify_text(1, None, "I hate you", TEACHER, False)
    alert, details, graph = children
    expected = web.models.get(TEACHER).classify(["I hate you"])[0]
    assert isinstance(alert, dbc.Alert)
    assert alert.color == ("danger" if expected["toxic"] else "success")
    assert alert.children.children == ("Toxic" if expected["toxic"] else "Not toxic")
    assert expected["label"] in str(details.to_plotly_json())
    assert " ms" in str(details.to_plotly_json())
    assert isinstance(graph, dcc.Graph)
    bar = graph.figure.data[0]  # type: ignore[attr-defined]
    assert list(bar.x) == LABELS
    assert sum(bar.y) == pytest.approx(1, abs=1e-6)


def test_classify_callback_shades_each_word_by_its_evidence(web: Any) -> None:
    text = "<b>I</b> hate\n\nyou 😡 &amp; 𝕪𝕠𝕦"
    alert, _details, why, graph = page("/").classify_text(1, None, text, TEACHER, True)
    expected = web.models.get(TEACHER).explain(text)
    assert alert.children.children == ("Toxic" if expected["toxic"] else "Not toxic")
    assert isinstance(graph, dcc.Graph)
    box = find(why, "classify-evidence")
    words = [c for c in box.children if isinstance(c, html.Span)]
    assert [w.children for w in words] == text.split() == [e["word"] for e in expected["evidence"]]
    # The text comes back whole, as strings (Dash escapes them): no component made of the <b> tag.
    assert "".join(c if isinstance(c, str) else c.children for c in box.children) == text
    for word, item in zip(words, expected["evidence"], strict=True):
        assert float(word.to_plotly_json()["props"]["data-delta"]) == pytest.approx(item["delta"], abs=1e-5)
    legend = str(find(why, "classify-evidence-legend").to_plotly_json())
    assert "pushes toward toxic" in legend and "pushes toward not toxic" in legend
    assert find(why, "classify-evidence-note") is None


def test_evidence_shading_has_the_sign_and_strength_of_delta(web: Any) -> None:
    shade = page("/").shade
    toxic, harmless = shade(0.3), shade(-0.3)
    assert toxic.startswith("rgba(220, 53, 69,") and harmless.startswith("rgba(25, 135, 84,")
    alpha = [float(shade(d).rsplit(",", 1)[1].rstrip(")")) for d in (0.0, 0.01, 0.1, 0.5, 0.9)]
    assert alpha[0] == 0 and alpha == sorted(alpha) and alpha[-2] == alpha[-1] == page("/").MAX_ALPHA


def test_classify_callback_marks_the_part_of_a_long_text_without_evidence(web: Any) -> None:
    text = "so " * 200 + "the end"
    *_, why, _graph = page("/").classify_text(1, None, text, TEACHER, True)
    box = find(why, "classify-evidence")
    words = [c for c in box.children if isinstance(c, html.Span) and c.className == "evidence-word"]
    assert 0 < len(words) <= web.models.get(TEACHER).max_length - 2
    unread = box.children[-1]
    assert unread.className == "evidence-unread" and unread.children.endswith("the end")
    assert "cut off" in find(why, "classify-evidence-note").children


@pytest.mark.parametrize(
    ("text", "model", "message"),
    [
        (None, TEACHER, "Type a comment"),
        ("", TEACHER, "Type a comment"),
        ("   \n", TEACHER, "Type a comment"),
        (42, TEACHER, "must be a string"),
        ("\ud800", TEACHER, "not valid Unicode"),
        ("hello", "no-such-model", "Unknown model"),
        ("hello", None, "Unknown model"),
        ("hello", [TEACHER], "Unknown model"),
    ],
)
def test_classify_callback_answers_bad_input_with_a_warning(
    web: Any, text: Any, model: Any, message: str
) -> None:
    [alert] = page("/").classify_text(None, 1, text, model)
    assert isinstance(alert, dbc.Alert)
    assert alert.color == "warning"
    assert message in alert.children


def test_classify_page_names_the_non_toxic_label(web: Any) -> None:
    rule = page("/").describe_rule(STUDENT)
    assert "Non-toxic label: neither" in rule
    assert "hate_speech, offensive_language" in rule
    assert page("/").describe_rule("no-such-model") == ""
    select = find(page("/").layout(), "classify-model")
    assert [option["value"] for option in select.options] == [STUDENT, TEACHER]
    assert select.value == TEACHER  # the best validation macro-F1 of the runs


def test_compare_page_without_a_report_says_how_to_make_one(web: Any, runs: Path) -> None:
    layout = str(page("/compare").layout().to_plotly_json())
    assert f"python scripts/compare.py --runs {runs} --output_dir " in layout  # the app's own --runs


def test_compare_page_shows_the_markdown_and_only_the_reports_own_pngs(
    web: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "report"
    report.mkdir()
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    (report / "macro_f1.png").write_bytes(png)
    (tmp_path / "secret.png").write_bytes(b"\x89PNG outside")
    (report / "linked.png").symlink_to(tmp_path / "secret.png")
    (report / "results.md").write_text(
        "| run | macro-F1 |\n|---|---|\n| teacher | 0.71 |\n\n![F1](macro_f1.png)\n<script>alert(1)</script>\n"
    )
    monkeypatch.setenv("TOXIC_REPORT", str(report))
    children = page("/compare").layout().children
    [markdown] = [c for c in children if isinstance(c, dcc.Markdown)]
    assert "| teacher | 0.71 |" in markdown.children
    assert "macro_f1.png" not in markdown.children  # shown below as an image instead
    assert not getattr(markdown, "dangerously_allow_html", False)
    images = [c.children[0] for c in children if isinstance(c, html.Figure)]
    assert [image.alt for image in images] == ["macro_f1"]  # the symlink out of the folder is not served
    assert images[0].src == "data:image/png;base64," + __import__("base64").b64encode(png).decode()


def test_about_page_lists_the_models_and_explains_the_app(web: Any) -> None:
    layout = str(page("/about").layout().to_plotly_json())
    for text in (STUDENT, TEACHER, "0.900", "neither", "softmax", "gunicorn", "curl"):
        assert text in layout
    # The README's screenshots are files the app does not serve: named, not shown as broken images.
    assert "![" not in layout and "screenshot in the repository: ../docs/app/evidence-toxic.png" in layout


def test_every_page_is_registered_and_linked_from_the_navbar(web: Any, client: Any) -> None:
    assert {entry["path"] for entry in dash.page_registry.values()} == {"/", "/compare", "/about"}
    navbar = str(web.app.layout.to_plotly_json())
    for name in ("Classify", "Compare", "About"):
        assert name in navbar
    for path in ("/", "/compare", "/about"):
        assert client.get(path).status_code == 200


# --- JSON API ------------------------------------------------------------------------------------------


def post(client: Any, body: Any) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post("/api/classify", data=data, content_type="application/json")


def test_api_classifies_one_text(client: Any, web: Any) -> None:
    answer = post(client, {"text": "I hate you", "model": TEACHER})
    assert answer.status_code == 200
    body = answer.get_json()
    assert set(body) == {"label", "toxic", "scores", "model", "latency_ms", "truncated"}
    assert body["model"] == TEACHER
    assert sum(body["scores"].values()) == pytest.approx(1, abs=1e-6)
    assert body["toxic"] == (body["label"] != "neither")
    assert body["scores"] == web.models.get(TEACHER).classify(["I hate you"])[0]["scores"]
    assert post(client, {"text": "I hate you"}).get_json()["model"] == web.models.default.name


def test_api_classifies_a_batch_in_order(client: Any) -> None:
    texts = ["I hate you", "lovely weather", "short", "a bit longer comment than the others"]
    answer = post(client, {"texts": texts, "model": STUDENT})
    assert answer.status_code == 200
    body = answer.get_json()
    assert (body["model"], len(body["results"])) == (STUDENT, 4)
    assert body["latency_ms"] > 0
    for text, result in zip(texts, body["results"], strict=True):
        single = post(client, {"text": text, "model": STUDENT}).get_json()
        assert result["label"] == single["label"]
        assert sum(result["scores"].values()) == pytest.approx(1, abs=1e-6)
    assert post(client, {"texts": ["x"] * MAX_BATCH}).status_code == 200


def test_api_answers_a_100k_character_text_truncated(client: Any) -> None:
    answer = post(client, {"text": "you are awful " * 7143})
    assert answer.status_code == 200
    assert answer.get_json()["truncated"] is True


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b'{"text": "caf\xe9 \xff"}',  # invalid UTF-8
        b'{"text": "\\ud800"}',  # a lone surrogate
        b"[" * 100_000 + b"]" * 100_000,  # deeper than Python's JSON parser goes
        b"[1, 2]",
        b'"I hate you"',
        b"null",
        {},
        {"comment": "wrong field"},
        {"text": ""},
        {"text": "  \n\t "},
        {"text": None},
        {"text": 5},
        {"text": ["a list"]},
        {"text": "both", "texts": ["both"]},
        {"texts": []},
        {"texts": "not a list"},
        {"texts": ["fine", ""]},
        {"texts": ["fine", 3]},
        {"texts": ["x"] * (MAX_BATCH + 1)},
        {"text": "hi", "model": 3},
    ],
)
def test_api_rejects_bad_input_with_400(client: Any, body: Any) -> None:
    answer = post(client, body)
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert isinstance(answer.get_json()["error"], str)


@pytest.fixture(scope="session")
def sharp(tokenizer) -> Any:  # type: ignore[no-untyped-def]
    """The API over a tiny model whose answers move with single words (the default initialisation
    gives every word a delta near 0, which any delta would match), and that model."""
    model = tiny_model(0, initializer_range=0.5)
    server = Flask(__name__)
    server.register_blueprint(create_blueprint(ModelRegistry([Classifier("sharp", model, tokenizer)], {})))
    return SimpleNamespace(client=server.test_client(), model=model, tokenizer=tokenizer)


def p_toxic(model: Any, tokenizer: Any, text: str) -> float:
    """1 − P(neither), straight from the model."""
    with torch.inference_mode():
        logits = model(**tokenizer(text, return_tensors="pt")).logits
    return 1 - logits.softmax(dim=-1)[0, LABELS.index("neither")].item()


def test_api_explain_gives_each_words_change_in_p_toxic(sharp: Any) -> None:
    text = "you people are vermin, go away"
    body = post(sharp.client, {"text": text, "explain": True}).get_json()
    assert set(body) == {
        "label", "toxic", "scores", "model", "latency_ms", "truncated", "evidence", "evidence_truncated"
    }  # fmt: skip
    assert body["evidence_truncated"] is False
    assert [(e["word"], text[e["start"] : e["end"]]) for e in body["evidence"]] == [
        (word, word) for word in text.split()
    ]
    vermin = next(e for e in body["evidence"] if e["word"] == "vermin,")
    expected = p_toxic(sharp.model, sharp.tokenizer, text) - p_toxic(
        sharp.model, sharp.tokenizer, "you people are go away"
    )
    assert abs(expected) > 0.05  # the word matters to this model, so a wrong delta shows
    assert vermin["delta"] == pytest.approx(expected, abs=1e-5)
    # The verdict and scores are the same as without explain.
    plain = post(sharp.client, {"text": text}).get_json()
    assert (plain["label"], plain["scores"]) == (body["label"], body["scores"])
    assert 1 - body["scores"]["neither"] == pytest.approx(
        p_toxic(sharp.model, sharp.tokenizer, text), abs=1e-5
    )


def test_api_explains_a_small_batch_and_refuses_a_larger_one(sharp: Any) -> None:
    texts = ["you people are vermin", "lovely weather", "so annoying lol"]
    body = post(sharp.client, {"texts": texts, "explain": True}).get_json()
    for text, result in zip(texts, body["results"], strict=True):
        assert [e["word"] for e in result["evidence"]] == text.split()
        assert (
            result["evidence"] == post(sharp.client, {"text": text, "explain": True}).get_json()["evidence"]
        )
    assert post(sharp.client, {"texts": ["x y"] * MAX_EXPLAIN_BATCH, "explain": True}).status_code == 200
    refused = post(sharp.client, {"texts": ["x y"] * (MAX_EXPLAIN_BATCH + 1), "explain": True})
    assert refused.status_code == 400
    assert refused.get_json()["error"] == (
        f"explain takes at most {MAX_EXPLAIN_BATCH} texts per request, got {MAX_EXPLAIN_BATCH + 1}; "
        "split the batch, or leave explain out"
    )
    assert "evidence" not in post(sharp.client, {"texts": texts, "explain": False}).get_json()["results"][0]


@pytest.mark.parametrize("explain", ["yes", 1, None, [True]])
def test_api_explain_must_be_a_boolean(sharp: Any, explain: Any) -> None:
    answer = post(sharp.client, {"text": "hi", "explain": explain})
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "explain must be true or false"


def test_api_explains_only_what_the_model_read_of_a_long_text(client: Any) -> None:
    answer = post(client, {"text": "you are awful " * 7143, "explain": True})  # 100k characters
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["truncated"] is True and body["evidence_truncated"] is True
    assert 0 < len(body["evidence"]) <= 126  # 128 tokens with [CLS] and [SEP]
    assert [e["word"] for e in body["evidence"]] == ("you are awful " * 50).split()[: len(body["evidence"])]


def test_api_without_json_content_type_still_reads_json(client: Any) -> None:
    answer = client.post(
        "/api/classify", data='{"text": "hi"}', content_type="application/x-www-form-urlencoded"
    )
    assert answer.status_code == 200


def test_api_unknown_model_is_404(client: Any) -> None:
    answer = post(client, {"text": "hi", "model": "no-such-model"})
    assert answer.status_code == 404
    assert "no-such-model" in answer.get_json()["error"]


def test_api_body_over_1_mb_is_413_json(client: Any) -> None:
    answer = post(client, {"text": "a" * (1024 * 1024)})
    assert answer.status_code == 413
    assert "error" in answer.get_json()


def test_api_wrong_method_and_unknown_endpoint_are_json(client: Any) -> None:
    assert client.get("/api/classify").status_code == 405
    unknown = client.get("/api/nothing-here")
    assert unknown.status_code == 404
    assert "error" in unknown.get_json()


def test_api_lists_models_with_their_test_metrics(client: Any) -> None:
    body = client.get("/api/models").get_json()
    models = {model["name"]: model for model in body["models"]}
    assert set(models) == {STUDENT, TEACHER}
    assert body["default"] == TEACHER
    teacher = models[TEACHER]
    assert teacher["labels"] == LABELS
    assert teacher["non_toxic_label"] == "neither"
    assert teacher["max_length"] == 128
    assert teacher["results"]["test_accuracy"] == 0.9
    assert teacher["results"]["test_f1_hate_speech"] == 0.5


def test_api_gives_null_metrics_for_a_model_without_results(tokenizer) -> None:  # type: ignore[no-untyped-def]
    server = Flask(__name__)
    server.register_blueprint(
        create_blueprint(ModelRegistry([Classifier("org/hub-model", tiny_model(), tokenizer)], {}))
    )
    [model] = server.test_client().get("/api/models").get_json()["models"]
    assert (model["name"], model["results"]) == ("org/hub-model", None)


def test_api_is_correct_under_concurrent_requests(web: Any) -> None:
    texts = [f"comment {i} " + "so annoying " * (i % 7) for i in range(12)]
    expected = {
        (name, text): web.models.get(name).classify([text])[0]["scores"]
        for name in web.models.names
        for text in texts
    }
    failures: list[str] = []

    def hammer(worker: int) -> None:
        client = web.server.test_client()
        for i in range(12):
            name = web.models.names[(worker + i) % 2]
            text = texts[(worker * 5 + i) % len(texts)]
            answer = post(client, {"text": text, "model": name})
            if answer.status_code != 200:
                failures.append(f"{answer.status_code} {answer.get_data(as_text=True)}")
                continue
            scores = answer.get_json()["scores"]
            if any(abs(scores[label] - expected[name, text][label]) > 1e-5 for label in LABELS):
                failures.append(f"{name} {text!r}: {scores} != {expected[name, text]}")

    threads = [threading.Thread(target=hammer, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []


# --- start-up, gunicorn, browser (slow) ----------------------------------------------------------------


def app_env(**variables: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOXIC_MODELS": "", "TOXIC_NON_TOXIC_LABEL": "", **variables}


@pytest.mark.slow
def test_app_refuses_to_start_when_no_model_loads(tmp_path: Path) -> None:
    missing = tmp_path / "missing-model"
    done = subprocess.run(
        [sys.executable, "app/app.py", "--model", str(missing), "--port", str(free_port())],
        cwd=ROOT,
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert f"There is no folder {missing}" in done.stderr
    assert "Not starting: None of the 1 model(s) could be loaded" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.slow
def test_gunicorn_serves_the_app(runs: Path, tmp_path: Path) -> None:
    """The deployment command of app/README.md, run from the repository root."""
    port = free_port()
    script = Path(sys.executable).with_name("gunicorn")  # the console script, as the README runs it
    command = [str(script)] if script.exists() else [sys.executable, "-m", "gunicorn"]
    command += ["-w", "1", "--threads", "4", "--timeout", "120", "-b", f"127.0.0.1:{port}", "app.app:server"]
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            command, cwd=ROOT, env=app_env(TOXIC_RUNS=str(runs)), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=5) as answer:
                    names = [model["name"] for model in json.load(answer)["models"]]
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.5)
        assert names == [STUDENT, TEACHER]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/classify",
            data=json.dumps({"text": "I hate you"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert set(json.load(answer)) >= {"label", "toxic", "scores"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as answer:
            assert b"react-entry-point" in answer.read()
    finally:
        server.terminate()
        server.wait(timeout=60)


@pytest.mark.slow
def test_browser_classifies_a_comment(web: Any, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium chromium-driver)")
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait
    from werkzeug.serving import make_server

    http = make_server("127.0.0.1", free_port(), web.server, threaded=True)
    serving = threading.Thread(target=http.serve_forever, daemon=True)
    serving.start()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(f"http://127.0.0.1:{http.server_port}/")
        wait = WebDriverWait(driver, 60, ignored_exceptions=(StaleElementReferenceException,))
        box = wait.until(expected_conditions.element_to_be_clickable((By.ID, "classify-text")))
        rule = wait.until(lambda d: d.find_element(By.ID, "classify-rule").text or None)
        assert "Non-toxic label: neither" in str(rule)
        box.send_keys("I hate you")
        box.send_keys(Keys.ENTER)
        verdict = wait.until(expected_conditions.visibility_of_element_located((By.ID, "classify-verdict")))
        assert verdict.text in {"Toxic", "Not toxic"}
        wait.until(
            expected_conditions.presence_of_element_located(
                (By.CSS_SELECTOR, "#classify-result .js-plotly-plot")
            )
        )
        assert f"model {TEACHER}" in driver.find_element(By.ID, "classify-details").text
        # The button and the model selector: the same text through the other model.
        Select(driver.find_element(By.ID, "classify-model")).select_by_value(STUDENT)
        driver.find_element(By.ID, "classify-submit").click()
        wait.until(
            expected_conditions.text_to_be_present_in_element((By.ID, "classify-details"), f"model {STUDENT}")
        )
        assert driver.find_element(By.ID, "classify-text").get_attribute("value") == "I hate you"

        def shaded_words(d: Any) -> list[str] | None:
            found = d.find_elements(By.CSS_SELECTOR, "#classify-evidence .evidence-word")
            return [word.text for word in found] or None

        assert wait.until(shaded_words) == ["I", "hate", "you"]
        # HTML and emoji come back as typed, one shaded word each (chromedriver types only BMP characters).
        text = "<b>so</b> stupid ☹ &amp; <script>x</script>"
        box.clear()
        box.send_keys(text)
        box.send_keys(Keys.ENTER)
        wait.until(lambda d: shaded_words(d) == text.split())
        evidence = driver.find_element(By.ID, "classify-evidence")
        assert evidence.text == text
        assert evidence.find_elements(By.CSS_SELECTOR, "b, script") == []
        words = evidence.find_elements(By.CSS_SELECTOR, ".evidence-word")
        assert all(w.get_attribute("title").startswith("P(toxic) ") for w in words)
        assert "pushes toward toxic" in driver.find_element(By.ID, "classify-evidence-legend").text
        time.sleep(1)  # let the chart finish drawing before the screenshot
        assert driver.save_screenshot(str(tmp_path / "classify.png"))
        assert (tmp_path / "classify.png").stat().st_size > 10_000
        # Without "Show why", no evidence.
        driver.find_element(By.CSS_SELECTOR, "label[for='classify-explain']").click()
        driver.find_element(By.ID, "classify-submit").click()
        wait.until(lambda d: not d.find_elements(By.ID, "classify-evidence"))
        assert driver.find_element(By.ID, "classify-verdict").text in {"Toxic", "Not toxic"}
    finally:
        driver.quit()
        http.shutdown()
        serving.join(timeout=10)
