"""distill.results: results.json written atomically, read with one-line errors, and finished runs found."""

import json
import multiprocessing as mp

import pytest

from distill.errors import UserError
from distill.results import find_runs, read_results, write_results


def test_write_then_read_round_trip(tmp_path):
    write_results(tmp_path / "run", {"test_macro_f1": 0.5, "layers": [1, 3]})
    assert read_results(tmp_path / "run") == {"test_macro_f1": 0.5, "layers": [1, 3]}
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["results.json"]


def test_missing_or_corrupt_results_name_the_problem(tmp_path):
    with pytest.raises(UserError, match="not a finished run"):
        read_results(tmp_path)
    (tmp_path / "results.json").write_text("{half")
    with pytest.raises(UserError, match="Cannot read"):
        read_results(tmp_path)


def _writer(path, n, started):
    started.set()
    for i in range(n):
        write_results(path, {"i": i, "payload": "x" * 200_000})


def test_a_reader_never_sees_a_partial_file(tmp_path):
    write_results(tmp_path, {"i": -1, "payload": ""})
    context = mp.get_context("spawn")
    started = context.Event()
    proc = context.Process(target=_writer, args=(tmp_path, 40, started))
    proc.start()
    # Reading starts with the writes: not during the writer's start-up (it imports the project, and
    # torch with it), when nothing is written and reading would only slow the start-up down.
    assert started.wait(timeout=300)
    reads = 0
    while proc.is_alive() or reads == 0:
        json.loads((tmp_path / "results.json").read_text())  # raises on a torn file
        reads += 1
    proc.join()
    assert proc.exitcode == 0 and reads > 0


def test_find_runs_skips_checkpoints_and_unfinished_runs(tmp_path, caplog):
    write_results(tmp_path / "a", {})
    write_results(tmp_path / "a" / "checkpoint-5", {})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_text("{}")
    (tmp_path / "b" / "model.safetensors").write_text("")
    assert find_runs(tmp_path) == [tmp_path / "a"]
    assert "unfinished run" in caplog.text
