"""The published figures are checkable: docs/ rebuilds exactly from the committed runs, and the tables of
the README and the docs pages are the report's (or the benchmark's) own rows."""

import re
from collections import defaultdict

import pytest
from conftest import ROOT, run_script

from distill.experiment import choose_learning_rate
from distill.results import find_runs, read_results

TEXT_FILES = ["results.md", "results.csv", "summary.json"]
# Each published report, with the --runs that rebuild it (the commands of docs/results/README.md and
# docs/speed.md, run from the repo root).
REPORTS = {
    "docs/results": ["docs/results/runs"],
    "docs/class-weights": ["docs/results/runs", "docs/class-weights/runs"],
    "docs/speed": ["docs/speed/runs"],
    "docs/full": ["docs/full/runs"],
}
# Records kept beside a report but outside it: the full corpus's first build of its teacher.
SIDE_RECORDS = ["docs/full/xeon-teacher"]


def test_the_committed_runs_are_records_not_weights():
    folders = [ROOT / report / "runs" for report in REPORTS] + [ROOT / side for side in SIDE_RECORDS]
    assert all(folder.is_dir() for folder in folders)
    files = {p.name for folder in folders for p in folder.rglob("*") if p.is_file()}
    assert files == {"results.json"}


def test_the_full_corpus_grid_is_whole():
    # What the full-corpus README claims of its runs: every training tweet, bf16, one teacher build,
    # three seeds of every method (TF-IDF + LR draws no random numbers: one run), each LoRA body's rate
    # chosen on validation at seed 1 over three rates and only that rate run at seeds 2 and 3.
    root = ROOT / "docs" / "full" / "runs"
    records = {run.relative_to(root).as_posix(): read_results(run) for run in find_runs(root)}
    teacher = records["teacher"]["weights_fingerprint"]
    assert len({r["test_split_hash"] for r in records.values()}) == 1
    assert all(r["split_sizes"]["train"] >= 19_000 for r in records.values())
    networks = {name: r for name, r in records.items() if r["method"] != "baseline"}
    assert all(r["precision"] == "bf16" for r in networks.values())
    assert all(r["teacher_fingerprint"] == teacher for name, r in networks.items() if "teacher" not in name)
    seeds = defaultdict(set)
    for name, r in networks.items():
        seeds["teacher" if name.startswith("teacher") else name.rsplit("/seed-", 1)[0]].add(r["seed"])
    assert seeds.pop("teacher") == {42, 1, 2}
    students = {arm: found for arm, found in seeds.items() if not arm.startswith("lora-lr-")}
    assert set(students) == {f"student-{k}" for k in ("top", "bottom", "odd", "even", "top-pkd", "odd-pkd")}
    assert all(found == {1, 2, 3} for found in students.values())
    for body in ("lora-even", "lora-all"):
        trials = {
            float(arm.split("/")[0].removeprefix("lora-lr-")): arm for arm in seeds if arm.endswith(body)
        }
        assert len(trials) >= 3 and all(1 in seeds[arm] for arm in trials.values())
        chosen = choose_learning_rate({rate: records[f"{arm}/seed-1"] for rate, arm in trials.items()})
        assert {rate for rate, arm in trials.items() if seeds[arm] == {1, 2, 3}} == {chosen}
    assert [r["method"] for r in records.values()].count("baseline") == 1


@pytest.mark.slow
@pytest.mark.parametrize("report", sorted(REPORTS))
def test_compare_rebuilds_the_published_report_exactly_from_the_committed_runs(report, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the report names its --runs as given, relative to the repository root
    run_script("compare", "--runs", *REPORTS[report], "--output_dir", tmp_path)
    published = ROOT / report
    for name in TEXT_FILES:
        assert (tmp_path / name).read_text() == (published / name).read_text(), f"{report}/{name} is stale"
    # The plots are checked by name only: their bytes depend on the installed fonts.
    assert {p.name for p in tmp_path.glob("*.png")} == {p.name for p in published.glob("*.png")}


def tables_under(page: str, heading: str) -> list[str]:
    """The table rows of `page` under the heading `heading`, up to the next heading; lines inside code
    blocks are neither headings nor table rows."""
    lines = (ROOT / page).read_text().splitlines()
    assert lines.count(heading) == 1, f"{page} has {lines.count(heading)} headings {heading!r}"
    rows, fenced = [], False
    for line in lines[lines.index(heading) + 1 :]:
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            break
        elif not fenced and line.startswith("|"):
            rows.append(line)
    return rows


# Each table of the docs, where it now lives, and the published report its rows come from.
TABLES = [
    # The README's headline tables: the full corpus.
    ("README.md", "### A7: distillation vs LoRA (test set)", "docs/full/results.md"),
    ("README.md", "### A6: which teacher layers to start from (validation set)", "docs/full/results.md"),
    ("README.md", "### All methods, with per-class test F1", "docs/full/results.md"),
    ("README.md", "### LoRA's learning rate, chosen on validation at seed 1", "docs/full/results.md"),
    (
        "docs/results/README.md",
        "### A7: distillation vs LoRA (test set; mean ± std over seeds)",
        "docs/results/results.md",
    ),
    (
        "docs/results/README.md",
        "### A6: which teacher layers to start from (validation set)",
        "docs/results/results.md",
    ),
    ("docs/results/README.md", "### All methods, with per-class test F1", "docs/results/results.md"),
    ("docs/results/README.md", "### Learning rates: chosen on validation", "docs/results/results.md"),
    (
        "docs/results/README.md",
        "## Class weights: learning the rare hate-speech class",
        "docs/class-weights/results.md",
    ),
    (
        "docs/full/README.md",
        "## Layer matching: what it adds (test set; mean ± std over 3 seeds)",
        "docs/full/results.md",
    ),
    ("docs/speed.md", "### bf16 quality: the even student in fp32 and in bf16", "docs/speed/results.md"),
    # The speed tables are those the benchmark printed in the same run (its JSON is beside them).
    ("docs/speed.md", "## Training: where the speed comes from", "docs/speed/benchmark.md"),
    ("docs/speed.md", "## Serving", "docs/speed/benchmark.md"),
]


@pytest.mark.parametrize(("page", "heading", "record"), TABLES)
def test_the_published_tables_are_rows_of_the_published_report(page, heading, record):
    rows = tables_under(page, heading)
    assert len(rows) >= 3, f"no table under {heading!r} in {page}"
    published = (ROOT / record).read_text().splitlines()
    assert [row for row in rows if row not in published] == []
