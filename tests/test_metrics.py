"""distill.metrics: accuracy, per-class and macro F1, and the confusion matrix, from scikit-learn."""

import pytest

from distill.metrics import classification_metrics, confusion


def test_metrics_per_class_and_macro():
    labels = [0, 0, 1, 1, 1, 2]
    preds = [0, 1, 1, 1, 2, 2]
    m = classification_metrics(labels, preds, ["hate", "offensive", "neither"])
    f1_hate = 2 * 1 * 0.5 / 1.5  # precision 1, recall 1/2
    f1_off = 2 * (2 / 3) * (2 / 3) / (4 / 3)  # precision 2/3, recall 2/3
    f1_nei = 2 * 0.5 * 1 / 1.5  # precision 1/2, recall 1
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["f1_hate"] == pytest.approx(f1_hate)
    assert m["f1_offensive"] == pytest.approx(f1_off)
    assert m["recall_hate"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((f1_hate + f1_off + f1_nei) / 3)


def test_a_class_never_predicted_scores_zero_not_an_error():
    m = classification_metrics([0, 1, 1], [1, 1, 1], ["a", "b"])
    assert m["f1_a"] == 0.0
    assert m["macro_f1"] == pytest.approx(0.4)


def test_confusion_rows_are_true_classes():
    assert confusion([0, 0, 1, 2], [0, 1, 1, 1], 3) == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
