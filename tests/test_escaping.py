"""User input is never rendered as HTML: the Classify page shows what was typed as plain text, and the
JSON API answers in JSON, never HTML."""

from __future__ import annotations

from typing import Any

from conftest import TEACHER

HOSTILE = ["<script>alert(1)</script>", '<img src=x onerror="alert(1)">', "<b>bold</b> &amp; [link](javascript:alert(1))"]  # fmt: skip


def classify_through_dash(client: Any, text: str, model: str) -> tuple[int, Any]:
    """What the Classify button's callback answers: a post to the endpoint the browser calls for it,
    through the app that tests/conftest.py imports once (Dash registers its callbacks once per process)."""
    answer = client.post("/_dash-update-component", json={
        "output": "classify-result.children",
        "outputs": {"id": "classify-result", "property": "children"},
        "inputs": [{"id": "classify-submit", "property": "n_clicks", "value": 1},
                   {"id": "classify-text", "property": "n_submit", "value": None}],
        "changedPropIds": ["classify-submit.n_clicks"],
        "state": [{"id": "classify-text", "property": "value", "value": text},
                  {"id": "classify-model", "property": "value", "value": model},
                  {"id": "classify-explain", "property": "value", "value": True}],
    })  # fmt: skip
    return answer.status_code, answer.get_json()


def components(node: Any, path: str = "") -> list[tuple[str, str, Any]]:
    """(path, component type, props) of every Dash component in a JSON layout."""
    found = []
    if isinstance(node, dict):
        if "type" in node and isinstance(node.get("props"), dict):
            found.append((path, node["type"], node["props"]))
        for key, value in node.items():
            found += components(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += components(value, f"{path}[{i}]")
    return found


def strings(node: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """(path of keys, value) of every string in a JSON document; list positions are left out of paths."""
    if isinstance(node, str):
        return [(path, node)]
    if isinstance(node, list):
        return [found for value in node for found in strings(value, path)]
    if isinstance(node, dict):
        return [found for key, value in node.items() for found in strings(value, (*path, key))]
    return []


def test_classify_page_shows_input_only_as_plain_text(client: Any) -> None:
    cases = [(text, TEACHER) for text in HOSTILE] + [("hello", name) for name in HOSTILE]
    answers = [classify_through_dash(client, text, name) for text, name in cases]
    echoed = 0
    for (text, name), (status, body) in zip(cases, answers, strict=True):
        assert status == 200, body
        for path, kind, props in components(body):
            assert not props.get("dangerously_allow_html"), (path, kind)
            assert kind not in {"Markdown", "Iframe", "Script"}, (path, kind)
        hostile = text if text in HOSTILE else name
        for path, value in strings(body):
            if hostile in value:
                # A string child is a React text node: shown as typed, never parsed as markup.
                assert path[-2:] == ("props", "children"), path
                echoed += 1
    assert echoed >= len(HOSTILE)  # the unknown model's name is shown back, so the check above ran


def test_api_answers_are_json_never_html(api):
    for body, status in (
        ({"text": HOSTILE[0]}, 200),
        ({"texts": HOSTILE}, 200),
        ({"text": "hi", "model": HOSTILE[1]}, 404),
    ):
        answer = api.post("/api/classify", json=body)
        assert (answer.status_code, answer.mimetype) == (status, "application/json")
        if status == 200:
            assert "<" not in answer.get_data(as_text=True)  # the input is not echoed back at all
    assert api.get(f"/api/{HOSTILE[0]}").mimetype == "application/json"
