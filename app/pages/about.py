"""About page: the models being served, then app/README.md (how the app works, runs and deploys)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from app import registry

dash.register_page(__name__, path="/about", name="About", title="About", order=2)

README = Path(__file__).resolve().parents[1] / "README.md"
_IMAGE = re.compile(r"!\[[^\]]*\]\((?P<path>[^)\s]+)\)")


def layout(**_query: str) -> dbc.Container:
    return dbc.Container(
        [
            html.H2("Models being served", className="mt-4"),
            models_table(registry.current().describe()),
            dcc.Markdown(_readme(), className="markdown mt-4"),
        ],
        class_name="mb-5",
        style={"maxWidth": "60rem"},
    )


def models_table(models: list[dict[str, Any]]) -> dbc.Table:
    header = [
        "model",
        "loaded from",
        "classes",
        "non-toxic label",
        "max tokens",
        "test accuracy",
        "test macro-F1",
    ]
    rows = []
    for model in models:
        results = model["results"] or {}
        rows.append(
            html.Tr(
                [
                    html.Td(model["name"] + (" (default)" if model["default"] else "")),
                    html.Td(html.Code(model["source"])),
                    html.Td(", ".join(model["labels"])),
                    html.Td(model["non_toxic_label"]),
                    html.Td(model["max_length"]),
                    html.Td(_metric(results.get("test_accuracy"))),
                    html.Td(_metric(results.get("test_macro_f1"))),
                ]
            )
        )
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h) for h in header])), html.Tbody(rows)],
        bordered=True,
        hover=True,
        size="sm",
        responsive=True,
    )


def _readme() -> str:
    try:
        text = README.read_text(encoding="utf-8")
    except OSError as err:  # a broken layout would break every page: Dash validates them all at once
        return f"(Cannot read {README}: {err.strerror}.)"
    # Its screenshots are files of the repository, which the app does not serve: name them instead.
    return _IMAGE.sub(lambda m: f"*(screenshot in the repository: {m['path']})*", text)


def _metric(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "n/a"
