"""distill.plots: loss curves with one line and band per method, row-normalised confusion matrices, and
imports that go one way (report uses plots, never the reverse)."""

import ast
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from fake_runs import write_runs
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex

import distill
from distill import plots
from distill.report import build_report, confusion_sum, label_names, loss_histories


@pytest.fixture
def runs(tmp_path):
    return write_runs(tmp_path / "outputs")


# --- plots: one colour and band per method, row-normalised confusion, one-way imports ---------------------


def test_loss_curves_draw_one_line_and_legend_entry_per_method_with_a_band_over_seeds(runs):
    histories = loss_histories(build_report(runs).runs)
    fig = plots.loss_curves_figure(histories)
    ax = fig.axes[0]
    try:
        # 17 runs, 7 methods: one legend entry each, in report order, with its number of runs.
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            "Teacher (n=1)",
            "Top-K (n=3)",
            "Bottom-K (n=3)",
            "Odd Layer (n=3)",
            "Even Layer (n=3)",
            "Layers 2,5,11 (n=1)",
            "LoRA (even) (n=3)",
        ]
        line_colours = [to_hex(line.get_color()) for line in ax.lines]
        assert len(ax.lines) == 7 and len(set(line_colours)) == 7
        # The mean over seeds 1-3 at steps 10 and 20.
        odd = ax.lines[3]
        assert list(odd.get_xdata()) == [10, 20]
        assert list(odd.get_ydata()) == pytest.approx([1.02, 0.52])
        # A band for each of the five methods with several runs, in its line's colour, spanning the seeds.
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        band_colours = [to_hex(c.get_facecolor()[0]) for c in bands]
        assert len(bands) == 5
        assert band_colours == [c for c, n in zip(line_colours, [1, 3, 3, 3, 3, 1, 3], strict=True) if n > 1]
        odd_band = bands[2].get_paths()[0].vertices
        assert odd_band[:, 1].min() == pytest.approx(0.51) and odd_band[:, 1].max() == pytest.approx(1.03)
    finally:
        plt.close(fig)


def test_loss_band_aligns_runs_logged_at_different_steps():
    band = plots.loss_band(
        [
            ([10, 20, 30], [1.0, 0.8, 0.6]),
            ([10, 30], [0.9, 0.5]),  # interpolated to 0.7 at step 20
            ([20, 10], [0.4, 1.1]),  # out of order; ends at step 20, so it has no say at step 30
        ]
    )
    assert list(band.steps) == [10, 20, 30] and band.n == 3
    assert band.mean == pytest.approx([1.0, (0.8 + 0.7 + 0.4) / 3, 0.55])
    assert band.low == pytest.approx([0.9, 0.4, 0.5])
    assert band.high == pytest.approx([1.1, 0.8, 0.6])


def test_confusion_matrices_show_row_shares_and_counts(runs):
    report_runs = build_report(runs).runs
    fig = plots.confusion_figure(confusion_sum(report_runs), label_names(report_runs))
    try:
        odd = next(ax for ax in fig.axes if ax.get_title() == "Odd Layer")
        # Three seeds of [[1, 1, 0], [0, 5, 1], [0, 1, 3]]: shares of each true class's row.
        shares = np.asarray(odd.images[0].get_array())
        assert shares.sum(axis=1) == pytest.approx([1, 1, 1])
        assert shares[1] == pytest.approx([0, 15 / 18, 3 / 18])
        texts = [t.get_text() for t in odd.texts]
        assert texts[:3] == ["0.50\n(3)", "0.50\n(3)", "0.00\n(0)"]
        assert "0.83\n(15)" in texts and "0.75\n(9)" in texts
        assert "true" in odd.get_ylabel() and "predicted" in odd.get_xlabel()
        assert "rows are true classes" in fig._suptitle.get_text() and "sum to 1" in fig._suptitle.get_text()
    finally:
        plt.close(fig)
    # A class absent from the test set keeps a row of zeros rather than dividing by zero.
    assert plots.row_shares(np.array([[0, 0], [1, 3]])) == pytest.approx(np.array([[0, 0], [0.25, 0.75]]))


def _distill_imports(path: Path) -> set[str]:
    """The distill modules a file imports anywhere, inside functions too, by short name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("distill.")}
        elif isinstance(node, ast.ImportFrom):
            module = (
                "distill" + ("." + node.module if node.module else "") if node.level else node.module or ""
            )
            if module == "distill":
                found |= {a.name for a in node.names}
            elif module.startswith("distill."):
                found.add(module.split(".")[1])
    return found


def test_plots_does_not_import_report_and_no_distill_modules_import_in_a_cycle():
    package = Path(distill.__file__).parent
    assert "plots" in _distill_imports(package / "report.py")  # the function-level import is seen
    assert "report" not in _distill_imports(package / "plots.py")

    graph = {p.stem: _distill_imports(p) for p in package.glob("*.py")}

    def cycle_from(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        for imported in sorted(graph.get(module, ())):
            if found := cycle_from(imported, [*path, module]):
                return found
        return None

    cycles = [c for m in sorted(graph) if (c := cycle_from(m, []))]
    assert not cycles, f"import cycles: {cycles}"
