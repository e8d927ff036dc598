"""app/api.py: the JSON API, through Flask's test client."""

from __future__ import annotations

import io
import json
import threading
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from conftest import LABELS, STUDENT, TEACHER, tiny_model
from flask import Flask

from app.api import MAX_BATCH, MAX_EXPLAIN_BATCH, create_blueprint
from app.inference import Classifier
from app.registry import ModelRegistry


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


def chunked_post(api, body: bytes):  # type: ignore[no-untyped-def]
    """POST `body` as gunicorn hands a chunked request to the app: no Content-Length, the stream ending
    where the body does (wsgi.input_terminated)."""
    return api.post(
        "/api/classify",
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )


def test_a_small_chunked_body_is_read_whole(api):
    assert chunked_post(api, json.dumps({"text": "I hate you"}).encode()).status_code == 200


def test_a_chunked_body_over_1_mb_is_413(api):
    answer = chunked_post(api, json.dumps({"text": "a" * (2 * 1024 * 1024)}).encode())
    assert (answer.status_code, answer.mimetype) == (413, "application/json")
