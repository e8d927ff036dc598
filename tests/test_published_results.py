"""The README's figures are checkable: docs/ rebuilds exactly from the committed runs, and the README's
tables are the report's (or the benchmark's) own rows."""

import re
import subprocess
import sys

import pytest
from conftest import ROOT

TEXT_FILES = ["results.md", "results.csv", "summary.json"]
# Each published report, with the --runs that rebuild it (the README's commands, run from the repo root).
REPORTS = {
    "docs/results": ["docs/results/runs"],
    "docs/class-weights": ["docs/results/runs", "docs/class-weights/runs"],
    "docs/speed": ["docs/speed/runs"],
}


def test_the_committed_runs_are_records_not_weights():
    files = {p.name for report in REPORTS for p in (ROOT / report / "runs").rglob("*") if p.is_file()}
    assert files == {"results.json"}


@pytest.mark.slow
@pytest.mark.parametrize("report", sorted(REPORTS))
def test_compare_rebuilds_the_published_report_exactly_from_the_committed_runs(report, tmp_path):
    subprocess.run(
        [sys.executable, "scripts/compare.py", "--runs", *REPORTS[report], "--output_dir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    published = ROOT / report
    for name in TEXT_FILES:
        assert (tmp_path / name).read_text() == (published / name).read_text(), f"{report}/{name} is stale"
    # The plots are checked by name only: their bytes depend on the installed fonts.
    assert {p.name for p in tmp_path.glob("*.png")} == {p.name for p in published.glob("*.png")}


def readme_tables(heading: str) -> list[str]:
    """The table rows under the README heading `heading`, up to the next heading."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split(f"\n{heading}\n", 1)[1]
    section = re.split(r"\n#{1,4} ", section, maxsplit=1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


@pytest.mark.parametrize(
    ("heading", "record"),
    [
        ("#### A7: distillation vs LoRA (test set; mean ± std over seeds)", "docs/results/results.md"),
        ("#### A6: which teacher layers to start from (validation set)", "docs/results/results.md"),
        ("#### All methods, with per-class test F1", "docs/results/results.md"),
        ("#### Learning rates: chosen on validation", "docs/results/results.md"),
        ("### Class weights: learning the rare hate-speech class", "docs/class-weights/results.md"),
        ("#### bf16 quality: the even student in fp32 and in bf16", "docs/speed/results.md"),
        # The speed tables are those the benchmark printed in the same run (its JSON is beside them).
        ("### Training: where the speed comes from", "docs/speed/benchmark.md"),
        ("### Serving", "docs/speed/benchmark.md"),
    ],
)
def test_the_readme_tables_are_rows_of_the_published_report(heading, record):
    rows = readme_tables(heading)
    assert len(rows) >= 3, f"no table under {heading!r}"
    published = (ROOT / record).read_text().splitlines()
    assert [row for row in rows if row not in published] == []
