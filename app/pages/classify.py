"""Classify page: type a comment, pick a model, see the verdict and every class's probability."""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html

from app import registry
from app.inference import Classifier, Prediction, text_problem

dash.register_page(__name__, path="/", name="Classify", title="Classify a comment", order=0)

TOXIC_COLOUR = "#dc3545"  # Bootstrap's danger and success colours, as in the verdict box
NON_TOXIC_COLOUR = "#198754"


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
    prevent_initial_call=True,
)
def classify_text(_clicks: int | None, _submits: int | None, text: Any, model_name: Any) -> list[Any]:
    if text is None or (isinstance(text, str) and not text.strip()):
        return [dbc.Alert("Type a comment first.", color="warning")]
    problem = text_problem(text)
    if problem:
        return [dbc.Alert(f"Cannot classify: {problem}.", color="warning")]
    classifier = registry.current().get(model_name) if isinstance(model_name, str) else None
    if classifier is None:
        return [dbc.Alert(f"Unknown model {model_name!r}: pick one from the list.", color="warning")]
    prediction = classifier.classify([text])[0]
    return _result(classifier, prediction)


def _result(classifier: Classifier, prediction: Prediction) -> list[Any]:
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
