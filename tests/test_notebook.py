"""notebooks/walkthrough.ipynb runs top to bottom on tiny fixtures: a teacher and a student trained here."""

import shutil

import nbformat
import pytest
from conftest import LABELS, ROOT, TINY_RUN, run_script
from nbclient import NotebookClient

pytestmark = pytest.mark.slow


def test_walkthrough_notebook_executes_on_tiny_runs(tmp_path, teacher_dir, csv_data, monkeypatch):
    runs = tmp_path / "outputs"
    base = tmp_path / "base"
    shutil.copytree(teacher_dir, base)
    run_script(
        "train_teacher", "--model_name_or_path", base, "--dataset", csv_data, "--class_names", *LABELS,
        *TINY_RUN, "--output_dir", runs / "teacher",
    )  # fmt: skip
    for seed in ("1", "2"):
        run_script(
            "distill", "--teacher", runs / "teacher", "--dataset", csv_data, "--layers", "even",
            "--seed", seed, *TINY_RUN, "--output_dir", runs / "student-even" / f"seed-{seed}",
        )  # fmt: skip
    monkeypatch.setenv("WALKTHROUGH_RUNS", str(runs))

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
