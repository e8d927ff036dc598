"""distill.baseline: TF-IDF + logistic regression, the linear model every network must beat, and its row in the report."""

import json

import pytest
from conftest import LABELS, run_script

from distill.data import load_splits
from distill.report import build_report


def test_baseline_learns_the_small_data(csv_data):
    from distill.baseline import tfidf_baseline

    splits = load_splits(str(csv_data))
    model, metrics = tfidf_baseline(splits)
    assert metrics["test_macro_f1"] == 1.0  # each class has its own words
    assert set(model.predict(["lovely weather at the beach"])) == {2}
    assert sum(map(sum, metrics["test_confusion_matrix"])) == len(splits.data["test"])


def test_baseline_is_the_same_at_every_seed(csv_data):
    """Why the reports show it with n=1: its solver draws no random numbers, so a second seed would be
    a copy of the first run, not a second sample."""
    from distill.baseline import tfidf_baseline

    splits = load_splits(str(csv_data))
    (a, _), (b, _) = tfidf_baseline(splits, seed=1), tfidf_baseline(splits, seed=2)
    assert (a[-1].coef_ == b[-1].coef_).all() and (a[-1].intercept_ == b[-1].intercept_).all()


@pytest.mark.slow
def test_baseline_script_row_appears_in_the_report(csv_data, tmp_path, teacher_dir):
    from conftest import TINY_RUN

    out = tmp_path / "runs"
    run_script("baseline", "--dataset", csv_data, "--output_dir", out / "baseline-tfidf")
    results = json.loads((out / "baseline-tfidf" / "results.json").read_text())
    assert results["method"] == "baseline" and "test_f1_hate_speech" in results
    run_script(
        "train_teacher",
        "--model_name_or_path",
        teacher_dir,
        "--dataset",
        csv_data,
        "--class_names",
        *LABELS,
        "--output_dir",
        out / "teacher",
        "--class_weights",
        "balanced",
        *TINY_RUN,
    )
    teacher = json.loads((out / "teacher" / "results.json").read_text())
    assert teacher["class_weights"] == pytest.approx([1.0, 1.0, 1.0], rel=0.2)
    assert teacher["test_split_hash"] == results["test_split_hash"]
    report = build_report(out)
    assert "TF-IDF + LR" in report.summary.index
    assert "| TF-IDF + LR |" in report.markdown.split("## A7")[1].split("## A6")[0]
