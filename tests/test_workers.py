"""distill.workers: each measurement in a process of its own, whose peak memory is its own, and which
exits cleanly. Run from small scripts, as the benchmark runs them: the resource tracker speaks at exit."""

import textwrap
from pathlib import Path

from conftest import LEAK, run_in_interpreter


def script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "measure.py"
    path.write_text("from distill.workers import in_fresh_process\n" + textwrap.dedent(body))
    return path


def test_a_measurement_worker_exits_cleanly(tmp_path):
    # A worker makes a semaphore (as tqdm does for its first progress bar) and takes a moment to exit:
    # killed instead of shut down, it would not unlink it, and the resource tracker would report a leak.
    done = run_in_interpreter(
        script(
            tmp_path,
            """
            import multiprocessing as mp
            import time


            def makes_a_semaphore():
                global LOCK
                LOCK = mp.RLock()
                mp.util.Finalize(LOCK, time.sleep, (0.5,), exitpriority=10)
                return {"samples_per_second": 1.0}


            if __name__ == "__main__":
                print(in_fresh_process(makes_a_semaphore)["samples_per_second"])
            """,
        )
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1.0\n"
    assert LEAK not in done.stderr


def test_each_measurement_reports_the_peak_memory_of_its_own_process(tmp_path):
    # The first worker touches 300 MiB; the second, started after it, must not report that peak.
    done = run_in_interpreter(
        script(
            tmp_path,
            """
            import os


            def allocates(mib):
                block = bytearray(mib * 2**20)  # zero-filled: every page touched
                return {"pid": os.getpid(), "size": len(block)}


            if __name__ == "__main__":
                big = in_fresh_process(allocates, 300)
                small = in_fresh_process(allocates, 1)
                print(big["peak_rss_mib"], small["peak_rss_mib"], len({big["pid"], small["pid"], os.getpid()}))
            """,
        )
    )
    assert done.returncode == 0, done.stderr
    big, small, processes = done.stdout.split()
    assert float(big) >= 300 > float(small) and processes == "3", done.stdout
