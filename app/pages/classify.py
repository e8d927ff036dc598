"""Classify page: type a comment, pick a model, see the verdict, every class's probability, and which
words pushed it toward toxic or not toxic."""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html

from app import registry
from app.inference import Classifier, ExplainedPrediction, Prediction, text_problem

dash.register_page(__name__, path="/", name="Classify", title="Classify a comment", order=0)

TOXIC_COLOUR = "#dc3545"  # Bootstrap's danger and success colours, as in the verdict box
NON_TOXIC_COLOUR = "#198754"
# A word's shade grows with the square root of its |delta| (small effects stay visible) up to full
# colour at FULL_SHADE; at most MAX_ALPHA opaque, so black text stays readable on it.
FULL_SHADE = 0.5
MAX_ALPHA = 0.7
LEGEND_STEPS = (0.05, 0.2, 0.5)


def layout(**_query: str) -> dbc.Container:
    models = registry.current()
    return dbc.Container(
        [
            html.H2("Is this comment toxic?", className="mt-4 mb-3"),
            # An Input, not a Textarea: dbc.Textarea submits on Enter but still types the newline.
            dbc.Input(
                id="classify-text",
                type="text",
                placeholder="Type a comment and press Enter",
                autofocus=True,
                size="lg",
                class_name="mb-2",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.InputGroup(
                            [
                                dbc.InputGroupText("Model"),
                                dbc.Select(
                                    id="classify-model",
                                    options=[{"label": name, "value": name} for name in models.names],
                                    value=models.default.name,
                                ),
                            ]
                        ),
                        md=8,
                    ),
                    dbc.Col(
                        dbc.Button("Classify", id="classify-submit", color="primary", n_clicks=0), md="auto"
                    ),
                    dbc.Col(
                        dbc.Switch(
                            id="classify-explain",
                            label="Show why (word evidence)",
                            value=True,
                            class_name="mt-2",
                        ),
                        md="auto",
                    ),
                ],
                class_name="g-2 mb-2",
            ),
            html.P(id="classify-rule", className="text-muted small"),
            dcc.Loading(html.Div(id="classify-result"), type="dot"),
        ],
        style={"maxWidth": "52rem"},
    )


@callback(Output("classify-rule", "children"), Input("classify-model", "value"))
def describe_rule(model_name: str | None) -> str:
    classifier = registry.current().get(model_name)
    if classifier is None:
        return ""
    toxic = ", ".join(label for label in classifier.labels if label != classifier.non_toxic_label)
    return (
        f"Non-toxic label: {classifier.non_toxic_label}. A comment is toxic when the most probable class "
        f"is any other ({toxic}). Inputs longer than {classifier.max_length} tokens are truncated."
    )


@callback(
    Output("classify-result", "children"),
    Input("classify-submit", "n_clicks"),
    Input("classify-text", "n_submit"),
    State("classify-text", "value"),
    State("classify-model", "value"),
    State("classify-explain", "value"),
    prevent_initial_call=True,
)
def classify_text(
    _clicks: int | None, _submits: int | None, text: Any, model_name: Any, explain: Any = True
) -> list[Any]:
    if text is None or (isinstance(text, str) and not text.strip()):
        return [dbc.Alert("Type a comment first.", color="warning")]
    problem = text_problem(text)
    if problem:
        return [dbc.Alert(f"Cannot classify: {problem}.", color="warning")]
    classifier = registry.current().get(model_name) if isinstance(model_name, str) else None
    if classifier is None:
        return [dbc.Alert(f"Unknown model {model_name!r}: pick one from the list.", color="warning")]
    if explain:
        explained = classifier.explain(text)
        return _result(classifier, explained, evidence_view(text, explained))
    return _result(classifier, classifier.classify([text])[0])


def _result(classifier: Classifier, prediction: Prediction, evidence: Any = None) -> list[Any]:
    label = prediction["label"]
    details = [
        html.Span(["Predicted class: ", html.B(label), f" ({prediction['scores'][label]:.1%})"]),
        html.Span(f" · model {classifier.name} · {prediction['latency_ms']:.0f} ms", className="text-muted"),
    ]
    if prediction["truncated"]:
        details.append(html.Span(f" · truncated to {classifier.max_length} tokens", className="text-muted"))
    return [
        dbc.Alert(
            html.H4("Toxic" if prediction["toxic"] else "Not toxic", className="mb-0", id="classify-verdict"),
            color="danger" if prediction["toxic"] else "success",
            class_name="mb-2",
        ),
        html.P(details, id="classify-details"),
        *([evidence] if evidence is not None else []),
        dcc.Graph(figure=_figure(classifier, prediction), config={"displayModeBar": False}),
    ]


def _figure(classifier: Classifier, prediction: Prediction) -> go.Figure:
    labels = classifier.labels
    probabilities = [prediction["scores"][label] for label in labels]
    colours = [NON_TOXIC_COLOUR if label == classifier.non_toxic_label else TOXIC_COLOUR for label in labels]
    figure = go.Figure(
        go.Bar(
            x=labels,
            y=probabilities,
            marker_color=colours,
            text=[f"{p:.1%}" for p in probabilities],
            textposition="outside",
        )
    )
    figure.update_layout(
        title="Class probabilities",
        yaxis={"range": [0, 1.1], "tickformat": ".0%"},
        height=320,
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
        plot_bgcolor="white",
    )
    return figure


def evidence_view(text: str, prediction: ExplainedPrediction) -> html.Div:
    """The text with each word the model read shaded by its evidence, and a legend. Every piece of the
    text is a string child of a Dash component, so it is shown as typed (escaped), never as HTML."""
    pieces: list[Any] = []
    position = 0
    for item in prediction["evidence"]:
        if item["start"] > position:  # whitespace, and words the model read no token of, as typed
            pieces.append(text[position : item["start"]])
        delta = item["delta"]
        data: dict[str, Any] = {"data-delta": f"{delta:.6f}"}  # for tests and scripts reading the page
        pieces.append(
            html.Span(
                item["word"],
                className="evidence-word",
                title=f"P(toxic) {_points(-delta)} without this word",
                style={"backgroundColor": shade(delta)},
                **data,
            )
        )
        position = item["end"]
    if position < len(text):
        unread = prediction["evidence_truncated"]
        pieces.append(html.Span(text[position:], className="evidence-unread") if unread else text[position:])
    children: list[Any] = [
        html.H5("Why", className="mt-3"),
        _legend(),
        html.Div(pieces, id="classify-evidence", className="evidence-text"),
    ]
    if prediction["evidence_truncated"]:
        children.append(
            html.P(
                "The text is longer than the model reads: the words after the last shaded one were cut "
                "off and have no evidence.",
                className="text-muted small",
                id="classify-evidence-note",
            )
        )
    return html.Div(children)


def shade(delta: float) -> str:
    """A word's background: toxic red for a word whose removal lowers P(toxic), green for one whose
    removal raises it, stronger for a bigger change."""
    colour = TOXIC_COLOUR if delta > 0 else NON_TOXIC_COLOUR
    strength = min(abs(delta) / FULL_SHADE, 1.0) ** 0.5
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {strength * MAX_ALPHA:.3f})"


def _legend() -> html.Div:
    def swatches(sign: int) -> list[Any]:
        return [
            html.Span(
                f"{step * 100:.0f}{'+' if step >= FULL_SHADE else ''} pts",
                className="evidence-word",
                style={"backgroundColor": shade(sign * step)},
            )
            for step in LEGEND_STEPS
        ]

    return html.Div(
        [
            html.Div([*swatches(1), " pushes toward toxic: without the word, P(toxic) is this much lower"]),
            html.Div(
                [*swatches(-1), " pushes toward not toxic: without the word, P(toxic) is this much higher"]
            ),
            html.Div(
                "P(toxic) = 1 − P(non-toxic class). Each word is removed in turn and the text classified "
                "again. Hover a word for its number; a word left white changed (almost) nothing.",
                className="text-muted",
            ),
        ],
        className="evidence-legend small mb-2",
        id="classify-evidence-legend",
    )


def _points(change: float) -> str:
    """A change of probability in percentage points, as "+12.3 pts"."""
    return f"{change * 100:+.1f} pts"
