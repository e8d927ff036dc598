"""The app under gunicorn and a pool of clients to load it, for tools/load_test.py.

One launcher (`under_gunicorn`: a free port of 127.0.0.1, the server in its own process group, stopped
on leaving, its log kept for errors), one client pool (`run_clients`), and the gunicorn workers'
memory as /proc shows it. Nothing here sends traffic anywhere but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # the load test never sends traffic anywhere else
LOG_TAIL = 4000  # characters of gunicorn's log shown when something went wrong


# --- the client pool ----------------------------------------------------------------------------------------


@dataclass
class Answer:
    label: str  # what was asked: the model (benchmark), or the kind of input (soak)
    status: str  # an HTTP status code, or "timeout" / "error" when no answer came
    seconds: float
    model_ms: float | None


# (client, request number) -> the body to POST and the label its answer is counted under.
Pick = Callable[[int, int], tuple[bytes, str]]


def run_clients(
    port: int, clients: int, requests: int, pick: Pick, timeout: float, deadline: float | None = None
) -> list[Answer]:
    """`clients` threads sending `requests` each, as `pick` says; none starts a request after `deadline`."""

    def client(c: int) -> list[Answer]:
        answers = []
        for r in range(requests):
            if deadline is not None and time.monotonic() > deadline:
                break
            body, label = pick(c, r)
            answers.append(post(port, body, label, timeout))
        return answers

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return [answer for answers in pool.map(client, range(clients)) for answer in answers]


def post(port: int, body: bytes, label: str, timeout: float) -> Answer:
    request = urllib.request.Request(
        f"http://{HOST}:{port}/api/classify", data=body, headers={"Content-Type": "application/json"}
    )
    started = time.perf_counter()
    model_ms = None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status = str(answer.status)
            model_ms = json.load(answer).get("latency_ms")
    except urllib.error.HTTPError as err:
        status = str(err.code)
    except TimeoutError:
        status = "timeout"
    except (OSError, ValueError):
        status = "error"
    return Answer(label, status, time.perf_counter() - started, model_ms)


# --- the gunicorn launcher ----------------------------------------------------------------------------------


@dataclass
class Server:
    pid: int  # gunicorn's master; the workers are its children
    port: int
    models: list[str]


T = TypeVar("T")


def under_gunicorn(
    args: argparse.Namespace, load: Callable[[Server], T], env: dict[str, str] | None = None
) -> tuple[T, str] | None:
    """`load(server)` against the app under gunicorn, and the tail of gunicorn's log; None, after printing
    why, when the server failed. `env` holds defaults that the caller's environment overrides."""
    with tempfile.TemporaryFile(mode="w+") as log:
        try:
            with gunicorn(args, env or {}, log) as server:
                result = load(server)
        except RuntimeError as err:
            print(f"error: {err}\n--- gunicorn log ---\n{tail(log)}", file=sys.stderr)
            return None
        return result, tail(log)


@contextmanager
def gunicorn(args: argparse.Namespace, env: dict[str, str], log: IO[str]) -> Iterator[Server]:
    """The app under gunicorn on a free port, once it answers; stopped on leaving."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "--threads", str(args.threads)]
    command += ["--timeout", "120", "-b", f"{HOST}:{port}", "app.app:server"]
    env = {**env, **os.environ, "TOXIC_RUNS": str(args.runs), "TOXIC_MODELS": ",".join(args.model)}
    env["TOXIC_QUANTIZE"] = args.quantize or ""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so stopping it stops its workers too
    )
    try:
        models = wait_until_ready(port, process, args.startup_timeout)
        print(
            f"gunicorn: {args.workers} workers x {args.threads} threads on {HOST}:{port}, pid {process.pid}"
        )
        print(f"models: {', '.join(models)}")
        yield Server(process.pid, port, models)
    finally:
        stop(process)


def tail(log: IO[str]) -> str:
    log.seek(0)
    return log.read()[-LOG_TAIL:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_until_ready(port: int, server: subprocess.Popen[bytes], timeout: float) -> list[str]:
    """The loaded models' names, once GET /api/models answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {server.returncode} before serving")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/api/models", timeout=5) as answer:
                return [model["name"] for model in json.load(answer)["models"]]
        except (OSError, ValueError):
            time.sleep(0.5)
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s")


def stop(server: subprocess.Popen[bytes]) -> None:
    """Stop the gunicorn started here: SIGTERM to its process group, SIGKILL if it lingers."""
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


# --- the workers' memory -----------------------------------------------------------------------------------


def worker_pids(master: int) -> set[int]:
    """The gunicorn workers: the master's child processes."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # Field 4 is the parent pid; split after the ")" that ends the command name, which may hold spaces.
            parent = int(stat.read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):  # the process exited while being read
            continue
        if parent == master:
            children.add(int(stat.parent.name))
    return children


def worker_rss(master: int) -> dict[int, int]:
    """VmRSS in KiB of each current worker."""
    rss = {}
    for pid in worker_pids(master):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[pid] = int(line.split()[1])
    return rss


def settle(master: int, workers: int, timeout: float = 60) -> tuple[set[int], int]:
    """The workers and their total RSS once all are up and memory stopped moving (within 1% over 1 s).

    Workers load their models independently after the first one answers, and freed memory is returned
    to the system with a delay, so a single reading right after start-up or load would mislead.
    """
    deadline = time.monotonic() + timeout
    previous = -1
    while True:
        rss = worker_rss(master)
        total = sum(rss.values())
        if len(rss) == workers and abs(total - previous) <= 0.01 * total:
            return set(rss), total
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker memory did not settle within {timeout:.0f} s: {rss}")
        previous = total
        time.sleep(1)
