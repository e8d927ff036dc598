"""Run a measurement in a fresh process, with that process's peak memory, and leave nothing behind."""

from __future__ import annotations

import multiprocessing as mp
import resource
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

# Workers fork from one server process that has imported the measured function's module (and so, for
# the benchmark, torch and transformers) once: as fresh as spawn's (none inherits the caller's models,
# threads or memory), without spawn's seconds of imports per measurement.
_WORKERS = mp.get_context("forkserver")


def in_fresh_process(fn: Callable[..., dict], *args: Any, **kwargs: Any) -> dict:
    """Run `fn(*args, **kwargs)` in a new process; add its peak resident memory (and GPU peak, if any).

    The worker is shut down, not terminated: it exits on its own and runs its exit handlers, which
    unlink the semaphores made in it (tqdm's lock for the first progress bar) and unregister them
    from the resource tracker it shares with this process. A multiprocessing.Pool's `with` block
    terminate()s its worker instead (SIGTERM, no handlers), and the tracker then warns of "leaked
    semaphore objects" at exit. A worker that dies (out of memory) raises BrokenProcessPool here,
    where Pool.apply would wait forever.
    """
    # Read when the server starts, at the first call: later calls reuse it and its imports.
    _WORKERS.set_forkserver_preload([fn.__module__])
    with ProcessPoolExecutor(max_workers=1, mp_context=_WORKERS) as pool:
        return pool.submit(_measured, fn, *args, **kwargs).result()


def _measured(fn: Callable[..., dict], *args: Any, **kwargs: Any) -> dict:
    result = fn(*args, **kwargs)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    torch = sys.modules.get("torch")  # only where the measured code used it: importing it takes seconds
    if torch is not None and torch.cuda.is_available():
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result
