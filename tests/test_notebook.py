"""notebooks/walkthrough.ipynb runs top to bottom on tiny runs: conftest.chain's teacher, students and report."""

import nbformat
import pytest
from conftest import ROOT
from nbclient import NotebookClient

pytestmark = pytest.mark.slow


def test_walkthrough_notebook_executes_on_tiny_runs(chain, monkeypatch):
    # The runs of test_pipeline.py's chain: a teacher, odd and even students, a LoRA student, a report.
    monkeypatch.setenv("WALKTHROUGH_RUNS", str(chain))
    monkeypatch.setenv("WALKTHROUGH_STUDENT", str(chain / "student-even"))

    notebook = nbformat.read(ROOT / "notebooks" / "walkthrough.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()

    text = "\n".join(
        str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "student layer 6 = teacher layer 12: True" in text and ": False" not in text
    assert "Even Layer" in text and "Teacher" in text  # the result tables
    images = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(images) == 3  # loss curves, confusion matrices, macro-F1 bars
    assert "hate_speech" in text  # the student's scores carry the class names
