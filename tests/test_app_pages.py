"""app/pages: the Classify, Compare and About pages, their callbacks called directly."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import dash
import dash_bootstrap_components as dbc
import pytest
from conftest import LABELS, STUDENT, TEACHER
from dash import dcc, html


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
