"""Classification metrics with scikit-learn (evaluate.load needs the Hub, unreachable offline)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
from transformers import EvalPrediction


def classification_metrics(labels: ArrayLike, predictions: ArrayLike, label_names: Sequence[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision/recall/F1, keyed `f1_<label name>` and so on."""
    ids = list(range(len(label_names)))
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, labels=ids, average=None, zero_division=0
    )
    metrics = {"accuracy": float(accuracy_score(labels, predictions)), "macro_f1": float(np.mean(f1))}
    for i, name in enumerate(label_names):
        metrics[f"f1_{name}"] = float(f1[i])
        metrics[f"precision_{name}"] = float(precision[i])
        metrics[f"recall_{name}"] = float(recall[i])
    return metrics


def make_compute_metrics(label_names: Sequence[str]) -> Callable[[EvalPrediction], dict]:
    """A `compute_metrics` for the Trainer over the given classes."""

    def compute_metrics(prediction: EvalPrediction) -> dict:
        logits = (
            prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        )
        return classification_metrics(prediction.label_ids, np.argmax(logits, axis=-1), label_names)

    return compute_metrics


def confusion(labels: ArrayLike, predictions: ArrayLike, num_labels: int) -> list[list[int]]:
    """Confusion matrix as nested lists (rows: true class, columns: predicted class)."""
    return confusion_matrix(labels, predictions, labels=list(range(num_labels))).tolist()
