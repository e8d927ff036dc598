"""JSON API on the app's Flask server: POST /api/classify and GET /api/models.

Bad input is answered 4xx with {"error": "..."}, never 500: 400 for a body that is not a JSON object
(invalid UTF-8 included) or lacks a usable text, or asks for evidence of too many texts, 404 for an
unknown model, 413 for a body over 1 MB.

`"explain": true` adds word-level evidence (`evidence`, `evidence_truncated`; see distill.explain) to
each answer. It costs one more sequence to classify per word the model reads, so a batch asking for
it is limited to MAX_EXPLAIN_BATCH texts.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from app.inference import text_problem
from app.registry import ModelRegistry

MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH = 256
# A text's evidence costs up to max_length sequences (one per word read): 8 texts at max_length 64 are
# 512 sequences, twice a full batch of MAX_BATCH without evidence.
MAX_EXPLAIN_BATCH = 8
ENDPOINTS = {"classify": "POST", "models": "GET"}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def register_api(server: Flask, registry: ModelRegistry) -> None:
    """Add the API routes for `registry` to `server`, with its body limit and JSON errors."""
    server.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    server.register_blueprint(create_blueprint(registry))

    @server.errorhandler(HTTPException)
    def _json_http_errors(err: HTTPException) -> Any:
        # Werkzeug's own errors (413 for a big body, 405) as JSON on the API; the pages keep HTML.
        if request.path.startswith("/api/") and err.code is not None and err.code >= 400:
            return jsonify(error=err.description or err.name), err.code
        return err


def create_blueprint(registry: ModelRegistry) -> Blueprint:
    api = Blueprint("api", __name__, url_prefix="/api")

    @api.errorhandler(ApiError)
    def _api_error(err: ApiError) -> tuple[Response, int]:
        return jsonify(error=str(err)), err.status

    @api.get("/models")
    def models() -> Response:
        return jsonify(models=registry.describe(), default=registry.default.name)

    @api.post("/classify")
    def classify() -> Response:
        body = _json_body()
        if not isinstance(body, dict):
            raise ApiError(400, 'the body must be a JSON object such as {"text": "..."}')
        texts, batch = _texts(body)
        explain = body.get("explain", False)
        if not isinstance(explain, bool):
            raise ApiError(400, "explain must be true or false")
        if explain and len(texts) > MAX_EXPLAIN_BATCH:
            raise ApiError(
                400,
                f"explain takes at most {MAX_EXPLAIN_BATCH} texts per request, got {len(texts)}; "
                "split the batch, or leave explain out",
            )
        model_name = body.get("model")
        if model_name is not None and not isinstance(model_name, str):
            raise ApiError(400, "model must be a string")
        classifier = registry.get(model_name)
        if classifier is None:
            raise ApiError(404, f"unknown model {model_name!r}; loaded: {', '.join(registry.names)}")
        started = time.perf_counter()
        predictions = [classifier.explain(text) for text in texts] if explain else classifier.classify(texts)
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        if batch:
            return jsonify(results=predictions, model=classifier.name, latency_ms=latency_ms)
        return jsonify(**predictions[0], model=classifier.name)

    @api.route("/<path:endpoint>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def unknown(endpoint: str) -> Response:
        # Without this, the pages' catch-all route would answer unknown API paths (and
        # GET /api/classify) with the app's HTML.
        if endpoint in ENDPOINTS:
            raise ApiError(405, f"use {ENDPOINTS[endpoint]} /api/{endpoint}")
        raise ApiError(404, "no such endpoint; see GET /api/models and POST /api/classify")

    return api


def _json_body() -> Any:
    """The parsed body; None for invalid JSON or UTF-8, whatever the Content-Type says."""
    # A chunked body (no Content-Length) is cut at the limit by Werkzeug rather than refused.
    if request.content_length is None and len(request.get_data(cache=True)) >= MAX_BODY_BYTES:
        raise ApiError(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return request.get_json(force=True, silent=True)
    except RecursionError:  # "[[[[...": nested deeper than Python's JSON parser goes
        return None


def _texts(body: dict[str, Any]) -> tuple[list[str], bool]:
    """The texts to classify, and whether they came as a batch ("texts") rather than one "text"."""
    if ("text" in body) == ("texts" in body):
        raise ApiError(400, 'give exactly one of "text" (a string) or "texts" (a list of strings)')
    if "text" in body:
        problem = text_problem(body["text"])
        if problem:
            raise ApiError(400, problem)
        return [body["text"]], False
    texts = body["texts"]
    if not isinstance(texts, list) or not texts:
        raise ApiError(400, "texts must be a non-empty list of strings")
    if len(texts) > MAX_BATCH:
        raise ApiError(400, f"at most {MAX_BATCH} texts per request, got {len(texts)}")
    for i, text in enumerate(texts):
        problem = text_problem(text)
        if problem:
            raise ApiError(400, f"texts[{i}]: {problem}")
    return texts, True
