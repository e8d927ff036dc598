"""The reference a user would otherwise pick: TF-IDF n-grams + logistic regression with balanced
class weights (scikit-learn), trained on exactly the project's split of a dataset."""

from __future__ import annotations

import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline, make_pipeline

from distill.data import Splits
from distill.metrics import classification_metrics, confusion

NAME = "TF-IDF + LR"


def tfidf_baseline(splits: Splits, seed: int = 42) -> tuple[Pipeline, dict]:
    """Fit on train; report train/validation/test metrics under the same keys as the neural runs."""
    train, validation, test = (splits.data[s] for s in ("train", "validation", "test"))
    labels = list(range(splits.num_labels))
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(class_weight="balanced", max_iter=2000, random_state=seed),
    )
    start = time.monotonic()
    model.fit(train["text"], train["label"])
    metrics: dict = {"train_runtime": time.monotonic() - start}
    for prefix, split in (("train", train), ("eval", validation), ("test", test)):
        probabilities = model.predict_proba(split["text"])
        predictions = np.argmax(probabilities, axis=-1)
        metrics[f"{prefix}_loss"] = float(log_loss(split["label"], probabilities, labels=labels))
        if prefix != "train":
            scores = classification_metrics(split["label"], predictions, splits.label_names)
            metrics.update({f"{prefix}_{k}": v for k, v in scores.items()})
    test_predictions = model.predict(test["text"])
    metrics["test_confusion_matrix"] = confusion(test["label"], test_predictions, splits.num_labels)
    classifier = model[-1]
    size = int(classifier.coef_.size + classifier.intercept_.size)
    metrics.update({"num_parameters": size, "trainable_parameters": size})
    return model, metrics
