"""Compare page: the report that scripts/compare.py writes (results.md and its PNG plots)."""

from __future__ import annotations

import base64
import re
import shlex
from pathlib import Path
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from app.config import AppConfig

dash.register_page(__name__, path="/compare", name="Compare", title="Compare runs", order=1)

MAX_IMAGE_BYTES = 10 * 1024 * 1024  # inlined into the page, so keep it bounded


def layout(**_query: str) -> dbc.Container:
    # Read on every visit: the report may be written while the app runs.
    report = AppConfig.from_env().report_dir
    try:
        body = report_view(report, hint(AppConfig.from_env()))
    except OSError as err:  # a failing layout would break every page: Dash validates them all at once
        body = [dbc.Alert(f"Cannot read the report in {report}: {err}", color="warning")]
    return dbc.Container([html.H2("Compare runs", className="mt-4"), *body], class_name="mb-5")


def hint(config: AppConfig) -> str:
    """The command that writes the report this app reads, for the runs folder it was given."""
    runs, report = shlex.quote(str(config.runs)), shlex.quote(str(config.report_dir))
    return f"python scripts/compare.py --runs {runs} --output_dir {report}"


def report_view(report: Path, command: str) -> list[Any]:
    """results.md as Markdown, then every PNG plot; `command`, to write the report, if there is none."""
    markdown = report / "results.md"
    images = report_images(report)
    if not markdown.is_file() and not images:
        return [
            dbc.Alert(
                [
                    f"No report in {report} yet. Write one with ",
                    html.Code(command),
                    ", then reload this page.",
                ],
                color="info",
            )
        ]
    children: list[Any] = [html.P(f"Report folder: {report}", className="text-muted")]
    if markdown.is_file():
        # dcc.Markdown renders no raw HTML; the plots are shown below rather than as image links.
        text = markdown.read_text(encoding="utf-8", errors="replace")
        children.append(dcc.Markdown(_without_local_images(text, images), className="markdown"))
    for image in images:
        encoded = base64.b64encode(image.read_bytes()).decode("ascii")
        children.append(
            html.Figure(
                [
                    html.Img(
                        src=f"data:image/png;base64,{encoded}", alt=image.stem, style={"maxWidth": "100%"}
                    ),
                    html.Figcaption(image.name, className="text-muted small"),
                ],
                className="my-3",
            )
        )
    return children


def report_images(report: Path) -> list[Path]:
    """PNG files directly in `report` (not links out of it), small enough to inline, sorted by name."""
    if not report.is_dir():
        return []
    root = report.resolve()
    return sorted(
        path
        for path in report.glob("*.png")
        if path.is_file() and path.resolve().parent == root and path.stat().st_size <= MAX_IMAGE_BYTES
    )


def _without_local_images(markdown: str, images: list[Path]) -> str:
    # `![plot](accuracy.png)` would point the browser at a URL the app does not serve.
    names = {image.name for image in images}
    return re.sub(
        r"!\[[^\]]*\]\(([^)\s]+)\)", lambda m: "" if Path(m.group(1)).name in names else m.group(0), markdown
    )
