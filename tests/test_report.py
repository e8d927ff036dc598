"""distill.report: finished runs read, grouped into rows by what tells them apart, summarised over seeds,
and written as tables; the rows of the A6/A7 sections and the learning-rate searches."""

import json
import re

import pytest
from fake_runs import fake_run, write_runs
from PIL import Image

from distill.errors import UserError
from distill.report import (
    build_report,
    learning_rate_table,
    load_runs,
    rate_searches,
    write_report,
)


@pytest.fixture
def runs(tmp_path):
    return write_runs(tmp_path / "outputs")


def test_summary_means_stds_and_rows(runs):
    report = build_report(runs)
    s = report.summary
    assert s.loc["Odd Layer", "test_macro_f1_mean"] == pytest.approx(0.65)
    assert s.loc["Odd Layer", "test_macro_f1_std"] == pytest.approx(0.05)  # sample std of .60 .70 .65
    assert s.loc["Even Layer", "test_macro_f1_mean"] == pytest.approx(0.70)
    assert s.loc["Odd Layer", "n"] == 3 and s.loc["Teacher", "n"] == 1
    assert s.loc["Odd Layer", "seeds"] == [1, 2, 3]
    # Runs recorded as results.json alone (no weights): the size comes from the parameter count.
    assert not list(runs.rglob("*.safetensors"))
    assert s.loc["Odd Layer", "size_mb_mean"] == pytest.approx(1000 * 4 / 10**6)
    assert list(s.index) == [
        "Teacher",
        "Top-K",
        "Bottom-K",
        "Odd Layer",
        "Even Layer",
        "Layers 2,5,11",
        "LoRA (even)",
    ]
    md = report.markdown
    a7 = md.split("## A7")[1].split("## A6")[0]
    assert re.search(
        r"\| Odd Layer \| 0\.7000 ± 0\.1000 \| accuracy 0\.9000 ± 0\.0000, macro-F1 0\.6500 ± 0\.0500 \(n=3\) \|",
        a7,
    )
    assert "| LoRA (even) |" in a7 and "| Teacher |" in a7
    a6 = md.split("## A6")[1].split("## All")[0]
    table_rows = [line for line in a6.splitlines() if line.startswith("|")][2:]
    assert [row.split("|")[1].strip() for row in table_rows] == [
        "Top-K (1-6)",
        "Bottom-K (7-12)",
        "Odd",
        "Even",
    ]


def test_report_files_and_readable_plots(runs, tmp_path):
    written = write_report(build_report(runs), tmp_path / "report")
    names = {p.name for p in written}
    assert {
        "results.md",
        "results.csv",
        "summary.json",
        "loss_curves.png",
        "confusion_matrices.png",
        "macro_f1.png",
    } <= names
    for path in written:
        if path.suffix == ".png":
            with Image.open(path) as image:
                assert image.size[0] > 300 and image.size[1] > 200
    rows = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert {r["method"] for r in rows} >= {"Teacher", "Odd Layer", "LoRA (even)"}


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="No finished runs"):
        load_runs(tmp_path)


def test_runs_on_another_test_split_are_refused(runs):
    fake_run(runs, "stray", "distill", "odd", 9, 0.9, split="zzz")
    with pytest.raises(UserError, match=r"different test split.*stray"):
        load_runs(runs)


def test_weighted_and_unweighted_runs_are_reported_apart_across_several_roots(tmp_path):
    weighted, unweighted = tmp_path / "experiment", tmp_path / "unweighted"
    for seed, f1 in [(1, 0.70), (2, 0.74)]:
        fake_run(weighted, f"teacher-{seed}", "teacher", None, seed, f1, class_weights=[5.0, 0.4, 2.0])
        fake_run(weighted, f"even-{seed}", "distill", "even", seed, f1 - 0.02, class_weights=[5.0, 0.4, 2.0])
        fake_run(unweighted, f"teacher-{seed}", "teacher", None, seed, f1 - 0.1)
        # Distilled from the unweighted teacher: a difference that goes with the weighting, not named apart.
        teacher = {"teacher": str(unweighted / "teacher-1")}
        fake_run(unweighted, f"even-{seed}", "distill", "even", seed, f1 - 0.12, arguments=teacher)
    fake_run(weighted, "baseline-tfidf", "baseline", None, 42, 0.72)

    report = build_report([weighted, unweighted])
    s = report.summary
    assert s.loc["Teacher · class-weighted", "test_macro_f1_mean"] == pytest.approx(0.72)
    assert s.loc["Teacher · unweighted", "test_macro_f1_mean"] == pytest.approx(0.62)
    assert s.loc["Even Layer · unweighted", "n"] == 2
    assert "Baseline" in s.index  # a baseline keeps its own name, untagged
    a6 = report.markdown.split("## A6")[1].split("## All")[0]
    assert "| Even · class-weighted |" in a6 and "| Even · unweighted |" in a6
    a7 = report.markdown.split("## A7")[1].split("## A6")[0]
    assert "| Teacher · unweighted |" in a7

    # One kind of weighting only: plain names, as in a single experiment.
    assert "Teacher" in build_report(weighted).summary.index


def test_class_weight_section_pairs_seeds_and_shows_the_rarest_class(tmp_path):
    weighted, unweighted = tmp_path / "experiment", tmp_path / "unweighted"
    # Neither class is first in the label order, so the section must find the rarest by its weight.
    weights = [1.0, 0.4, 6.0]
    for seed, f1 in [(1, 0.70), (2, 0.74), (3, 0.90)]:
        fake_run(weighted, f"teacher-{seed}", "teacher", None, seed, f1, class_weights=weights)
    for seed in (1, 2):  # seed 3 has no unweighted twin, so it is left out of the change
        fake_run(unweighted, f"teacher-{seed}", "teacher", None, seed, 0.60 - seed / 100)
    fake_run(weighted, "odd", "distill", "odd", 1, 0.7, class_weights=weights)  # weighted only: no rows
    # Odd students at another alpha, with and without weights: a pair of their own, named by the alpha.
    alpha = {"alpha": 0.9}
    fake_run(weighted, "odd-0.9", "distill", "odd", 1, 0.7, class_weights=weights, arguments=alpha)
    fake_run(unweighted, "odd-0.9", "distill", "odd", 1, 0.6, arguments={**alpha, "teacher": "unweighted"})
    fake_run(weighted, "baseline-tfidf", "baseline", None, 42, 0.72)

    section = build_report([weighted, unweighted]).markdown.split("## Class weights")[1]
    header, _, *rows = [line for line in section.splitlines() if line.startswith("|")]
    assert header.split(" | ")[-2:] == ["F1 neither", "Recall neither |"]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert [row[:3] for row in cells] == [
        ["Teacher", "class-weighted", "3"],
        ["Teacher", "unweighted", "2"],
        ["Teacher", "change, same seeds", "2"],
        ["Odd Layer · α 0.9", "class-weighted", "1"],
        ["Odd Layer · α 0.9", "unweighted", "1"],
        ["Odd Layer · α 0.9", "change, same seeds", "1"],
        ["Baseline (reference)", "balanced", "1"],
    ]
    # Changes per seed: 0.70 - 0.59 = 0.11 and 0.74 - 0.58 = 0.16; mean 0.135, sample std 0.0354.
    assert cells[2][4] == "+0.1350 ± 0.0354"
    assert cells[0][4] == "0.7800 ± 0.1058"
    assert cells[5][4] == "+0.1000"
    assert cells[6][4] == "0.7200"

    # Runs of one kind only: no such section.
    assert "## Class weights" not in build_report(weighted).markdown


def test_runs_of_one_method_at_several_learning_rates_get_a_row_each(runs, tmp_path):
    search = tmp_path / "lora-lr"
    for seed, f1 in [(1, 0.64), (2, 0.66)]:
        fake_run(search, f"lora-even/seed-{seed}", "lora", "even", seed, f1, lr=5e-4)
    s = build_report([runs, search]).summary
    assert s.loc["LoRA (even) · lr 5e-05", "n"] == 3  # the fixture's LoRA runs
    assert s.loc["LoRA (even) · lr 0.0005", "test_macro_f1_mean"] == pytest.approx(0.65)
    assert "Odd Layer" in s.index  # one learning rate: the plain name


def test_runs_of_one_method_in_two_precisions_get_a_row_each(runs, tmp_path):
    reduced = tmp_path / "bf16"
    for seed, f1 in [(1, 0.70), (2, 0.72)]:
        fake_run(reduced, f"student-odd/seed-{seed}", "distill", "odd", seed, f1, precision="bf16")
    s = build_report([runs, reduced]).summary
    assert s.loc["Odd Layer · bf16", "n"] == 2
    assert s.loc["Odd Layer · bf16", "test_macro_f1_mean"] == pytest.approx(0.71)
    assert "Odd Layer · fp32" in s.index and "Odd Layer" not in s.index
    assert "Teacher" in s.index  # one precision: the plain name


def test_runs_that_differ_only_in_alpha_get_a_row_each(runs, tmp_path):
    other = tmp_path / "alpha"
    for seed, f1 in [(1, 0.80), (2, 0.82)]:
        fake_run(other, f"student-even/seed-{seed}", "distill", "even", seed, f1, arguments={"alpha": 0.9})
    s = build_report([runs, other]).summary
    assert s.loc["Even Layer · α 0.5", "n"] == 3  # the fixture's even students, at the default 0.5
    assert s.loc["Even Layer · α 0.9", "n"] == 2
    assert s.loc["Even Layer · α 0.9", "test_macro_f1_mean"] == pytest.approx(0.81)
    assert "Even Layer" not in s.index
    assert "Odd Layer" in s.index  # one alpha among the odd students: the plain name


@pytest.mark.parametrize(
    ("arguments", "training", "fixture_row", "other_row"),
    [
        ({"max_train_samples": 2000}, {}, "max_train_samples all", "max_train_samples 2000"),
        ({"teacher": "outputs/teacher-2"}, {}, "teacher outputs/teacher", "teacher outputs/teacher-2"),
        ({"temperature": 4.0}, {}, "T 2", "T 4"),
        ({"cosine_weight": 0.5}, {}, "cosine_weight 0", "cosine_weight 0.5"),
        ({"pkd_weight": 1.0, "pkd_targets": "2,4,6,8,10,12"}, {}, "pkd_weight 0", "pkd_weight 1"),
        ({"max_length": 128}, {}, "max_length 64", "max_length 128"),
        ({}, {"num_train_epochs": 3.0}, "1 epoch", "3 epochs"),
        ({}, {"max_steps": 100}, "1 epoch", "100 steps"),  # --max_steps overrides the epochs
    ],
)
def test_runs_that_trained_differently_get_a_row_each(
    runs, tmp_path, arguments, training, fixture_row, other_row
):
    other = tmp_path / "other"
    for seed in (1, 2):
        fake_run(other, f"even-{seed}", "distill", "even", seed, 0.9, arguments=arguments, training=training)
    s = build_report([runs, other]).summary
    assert s.loc[f"Even Layer · {fixture_row}", "n"] == 3
    assert s.loc[f"Even Layer · {other_row}", "n"] == 2


def test_students_of_two_builds_of_one_teacher_get_a_row_each(runs, tmp_path):
    # The same teacher folder, retrained (on another CPU: other weights). Students are grouped by the
    # weights their records name, not by the folder.
    rebuilt = tmp_path / "rebuilt"
    for seed, f1 in [(1, 0.80), (2, 0.82)]:
        fake_run(
            rebuilt, f"even-{seed}", "distill", "even", seed, f1, record={"teacher_fingerprint": "49aa4bb0"}
        )
    s = build_report([runs, rebuilt]).summary
    assert s.loc["Even Layer · teacher weights unrecorded", "n"] == 3  # the fixture's, recorded before
    assert s.loc["Even Layer · teacher weights 49aa4bb0", "n"] == 2
    assert s.loc["Even Layer · teacher weights 49aa4bb0", "test_macro_f1_mean"] == pytest.approx(0.81)
    assert "Odd Layer" in s.index  # one teacher build among the odd students: the plain name


def test_settings_that_change_no_weight_keep_runs_in_one_row(runs, tmp_path):
    other = tmp_path / "other"
    for seed in (4, 5):
        fake_run(
            other,
            f"even-{seed}",
            "distill",
            "even",
            seed,
            0.9,
            # Recorded before layer matching existed (no pkd_* fields) counts as without it.
            arguments={"no_teacher_cache": True, "pkd_weight": 0.0, "pkd_targets": None},
            # 8 examples × 2 accumulation steps is one update of 16, like the fixture's batches of 16.
            training={
                "per_device_train_batch_size": 8,
                "gradient_accumulation_steps": 2,
                "per_device_eval_batch_size": 128,
                "logging_steps": 1,
                "data_seed": 7,
            },
        )
        # LoRA learns from hard labels: its --alpha and --temperature change nothing without --kd.
        fake_run(
            other, f"lora-{seed}", "lora", "even", seed, 0.5, arguments={"alpha": 0.9, "temperature": 5.0}
        )
    s = build_report([runs, other]).summary
    assert s.loc["Even Layer", "n"] == 5 and s.loc["LoRA (even)", "n"] == 5
    assert s.loc["Even Layer", "seeds"] == [1, 2, 3, 4, 5]


def test_layer_matching_targets_count_only_where_it_is_on_and_default_to_the_copied_layers(tmp_path):
    even = [2, 4, 6, 8, 10, 12]
    for seed, weight, targets in [
        (1, 1.0, None),  # the default: the layers the student was copied from
        (2, 1.0, "2,4,6,8,10,12"),  # the same choice, spelled out
        (3, 1.0, "1,3,5,7,9,11"),
        (4, 0.0, "1,3,5,7,9,11"),  # matching off: its targets change nothing
        (5, 0.0, None),
    ]:
        pkd = {"pkd_weight": weight, "pkd_targets": targets}
        fake_run(tmp_path, f"even-{seed}", "distill", "even", seed, 0.7, layers=even, arguments=pkd)
    s = build_report(tmp_path).summary
    assert s.loc["Even Layer · pkd_weight 1 · pkd_targets 2,4,6,8,10,12", "seeds"] == [1, 2]
    assert s.loc["Even Layer · pkd_weight 1 · pkd_targets 1,3,5,7,9,11", "seeds"] == [3]
    assert s.loc["Even Layer · pkd_weight 0", "seeds"] == [4, 5]


def test_a_row_names_only_the_settings_that_tell_it_apart_and_searches_stay_within_them(runs, tmp_path):
    other = tmp_path / "other"
    for seed, eval_f1 in [(1, 0.9), (2, 0.5)]:  # the fixture's rate, 5e-5, scores 0.6 on validation
        fake_run(other, f"lr-1e-4/even-{seed}", "distill", "even", seed, 0.7, lr=1e-4, eval_f1=eval_f1)
        fake_run(
            other, f"alpha-0.9/even-{seed}", "distill", "even", seed, 0.7, lr=1e-4, arguments={"alpha": 0.9}
        )
    report = build_report([runs, other])
    assert [name for name in report.summary.index if name.startswith("Even Layer")] == [
        "Even Layer · α 0.5 · lr 0.0001",
        "Even Layer · α 0.5 · lr 5e-05",
        "Even Layer · α 0.9",  # one rate at this alpha: no rate in its name
    ]
    # A rate search compares only runs alike in everything else: not the α 0.9 runs.
    [search] = rate_searches(report.runs)
    assert (search.method, sorted(search.runs), search.chosen) == ("Even Layer · α 0.5", [5e-5, 1e-4], 1e-4)


def test_a7_shows_the_rate_chosen_on_validation_at_the_search_seed_and_the_equal_rate(runs, tmp_path):
    search = tmp_path / "lora-lr"
    # Seed 1 of every rate chooses: 5e-4 (0.64) beats 1e-3 (0.63), although 5e-4's later seeds score
    # lower on validation, and 1e-3 scores best on test. Neither may sway the choice.
    for rate, seed, eval_f1, test_f1 in [
        (2e-4, 1, 0.55, 0.50),
        (5e-4, 1, 0.64, 0.60),
        (5e-4, 2, 0.58, 0.61),
        (5e-4, 3, 0.57, 0.62),
        (1e-3, 1, 0.63, 0.90),
    ]:
        fake_run(
            search,
            f"lr-{rate:g}/lora-even/seed-{seed}",
            "lora",
            "even",
            seed,
            test_f1,
            lr=rate,
            eval_f1=eval_f1,
        )
    report = build_report([runs, search])
    [lora] = rate_searches(report.runs)
    assert (lora.method, lora.seed, lora.chosen) == ("LoRA (even)", 1, 5e-4)
    a7 = markdown_rows(report.markdown, "## A7")
    shown = [row[0] for row in a7]
    assert "LoRA (even) · lr 0.0005" in shown and "LoRA (even) · lr 5e-05" in shown  # chosen, equal rate
    assert "LoRA (even) · lr 0.001" not in shown and "LoRA (even) · lr 0.0002" not in shown
    table = learning_rate_table([lora])
    assert table["Learning rate"].tolist() == ["5e-05", "0.0002", "0.0005", "0.001"]
    assert table["Chosen"].tolist() == ["", "", "yes", ""]
    assert table["n"].tolist() == [3, 1, 3, 1]
    assert "## Learning rates" in report.markdown
    # The plots show what A7 shows; the search's other rates stay in the tables and the CSV.
    assert sorted(report.left_out) == ["LoRA (even) · lr 0.0002", "LoRA (even) · lr 0.001"]
    write_report(report, tmp_path / "report")
    assert "LoRA (even) · lr 0.001" in (tmp_path / "report" / "results.csv").read_text()


def markdown_rows(markdown: str, heading: str) -> list[list[str]]:
    """The data rows of the tables in the section under `heading`, as cells."""
    section = markdown.split(heading, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_a_report_written_inside_its_runs_folder_is_not_read_back_as_a_run(runs):
    write_report(build_report(runs), runs / "report")
    again = build_report(runs)  # e.g. compare.py re-run after experiment.py wrote outputs/report
    assert len(again.runs) == len(build_report(runs).runs) == 17
