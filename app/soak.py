"""Soak-test the app under gunicorn, on this machine only: good and bad input, latency, worker memory.

    python app/soak.py --runs outputs
    python app/soak.py --model outputs/teacher outputs/student-even --clients 50 --requests 20

Starts gunicorn on a free port of 127.0.0.1 (and stops it), warms it up, then sends CLIENTS concurrent
clients x REQUESTS requests each, a fixed mix of good input (tweets, a batch, emoji, 100k characters)
and bad input (empty text, invalid UTF-8, wrong types, non-JSON, a body over 1 MB, an unknown model,
too many texts). The gunicorn workers' resident memory (VmRSS in /proc) is sampled before, during and
after. Prints the answers by status code and by kind of input, p50/p95 latency and the memory, and
exits 1 when any request got a 5xx, no answer, or a status other than the one its input calls for,
when a worker was replaced, when memory grew by more than --max_memory_growth, or when the requests
did not finish within --max_seconds. Linux only (it reads /proc).
"""

# ruff: noqa: E402  (the import path is fixed before the project's packages are imported)

import sys
from pathlib import Path

# `python app/soak.py` puts app/ first on the import path, where app/app.py would shadow the `app`
# package; put the repository root there instead, so `import app.benchmark_app` resolves.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from app.api import MAX_BATCH, MAX_BODY_BYTES
from app.benchmark_app import (
    HOST,
    ROOT,
    TWEETS,
    Answer,
    checked_args,
    free_port,
    load_parser,
    percentile,
    post,
    print_status_counts,
    stop,
    wait_until_ready,
)


@dataclass(frozen=True)
class Case:
    """One kind of input: its request body and the status a correct server answers it with."""

    name: str
    expected: int
    body: bytes | None = None  # None: a tweet in {"text": ...} for the model the schedule picks


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


GOOD = Case("tweet", 200)
# One client's 20 requests: half good, half bad. Clients start at different offsets, so every kind of
# input is in flight at once, next to the others.
SCHEDULE: list[Case] = [
    GOOD,
    Case("empty text", 400, _json({"text": ""})),
    GOOD,
    Case("emoji", 200, _json({"text": "you 🤡 are such a 💩 lol 🔥🔥 ✨ \u200d👩\u200d👩\u200d👧"})),
    GOOD,
    Case("invalid UTF-8", 400, b'{"text": "caf\xe9 \xff\xfe"}'),
    GOOD,
    Case("100k characters", 200, _json({"text": "you are awful " * 7143})),  # answered truncated
    GOOD,
    Case("wrong type", 400, _json({"text": 42})),
    GOOD,
    Case("non-JSON", 400, b"text=I hate you"),
    GOOD,
    Case("oversized body", 413, _json({"text": "a" * MAX_BODY_BYTES})),
    GOOD,
    Case("unknown model", 404, _json({"text": "hello", "model": "no-such-model"})),
    Case("batch", 200, _json({"texts": TWEETS[:8]})),
    Case("texts not a list", 400, _json({"texts": "I hate you"})),
    GOOD,
    Case("too many texts", 400, _json({"texts": ["hi"] * (MAX_BATCH + 1)})),
]
CASES = {case.name: case for case in SCHEDULE}


@dataclass
class Memory:
    """Total VmRSS of the gunicorn workers, in KiB: settled before the soak, peak during, settled after."""

    before: int
    peak: int
    after: int
    workers_before: set[int]
    workers_after: set[int]
    samples: list[int] = field(default_factory=list)

    @property
    def growth(self) -> float:
        return self.after / self.before - 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # One forward pass uses every core; more threads than cores per worker only oversubscribes them.
    threads = str(max(1, (os.cpu_count() or 1) // args.workers))
    env = {
        "OMP_NUM_THREADS": threads,
        **os.environ,
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),  # a soak test needs no network
        "TOXIC_RUNS": str(args.runs),
        "TOXIC_MODELS": ",".join(args.model or []),
        "TOXIC_QUANTIZE": args.quantize or "",
    }
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "--threads", str(args.threads)]
    command += ["--timeout", "120", "-b", f"{HOST}:{port}", "app.app:server"]
    with tempfile.TemporaryFile(mode="w+") as log:
        server = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stopping it stops its workers too
        )
        try:
            models = wait_until_ready(port, server, args.startup_timeout)
            print(
                f"gunicorn: {args.workers} workers x {args.threads} threads on {HOST}:{port}, pid {server.pid}"
            )
            print(f"models: {', '.join(models)}")
            answers, memory, seconds, unsent = soak(server.pid, port, models, args)
        except RuntimeError as err:
            log.seek(0)
            print(f"error: {err}\n--- gunicorn log ---\n{log.read()[-4000:]}", file=sys.stderr)
            return 1
        finally:
            stop(server)
        report(answers, memory, seconds, args.clients, args.requests)
        failures = verdict(answers, memory, unsent, args.max_memory_growth)
        if failures:
            log.seek(0)
            tail = log.read()[-3000:]
            print("\nFAIL\n" + "\n".join(f"- {failure}" for failure in failures))
            print(f"--- gunicorn log (last lines) ---\n{tail}")
            return 1
    print("\nPASS: no 5xx, every input answered as expected, memory stable")
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = load_parser(__doc__)
    parser.add_argument(
        "--max_seconds",
        type=float,
        default=600,
        help="stop sending after this many seconds of soak; unsent requests fail it (default: %(default)s)",
    )
    parser.add_argument(
        "--max_memory_growth",
        type=float,
        default=0.30,
        help="largest allowed growth of the workers' total RSS, as a fraction (default: %(default)s)",
    )
    if not Path("/proc/self/status").exists():
        parser.error("the soak test reads worker memory from /proc, which this system does not have")
    return checked_args(parser, argv)


def soak(
    master: int, port: int, models: list[str], args: argparse.Namespace
) -> tuple[list[Answer], Memory, float, int]:
    """Warm up, then run the clients while sampling memory. Returns answers, memory, seconds, unsent."""
    # The first requests of each kind fill the tokenizers' and allocators' caches in every worker; that
    # one-off growth is not a leak, so "before" is measured after a warm-up pass of the whole schedule.
    warm_up = args.workers * args.threads
    run_clients(port, models, warm_up, len(SCHEDULE), args.timeout, deadline=None)
    workers_before, before = settle(master, args.workers)
    print(
        f"warm-up: {warm_up * len(SCHEDULE)} requests; worker RSS {mib(before)} MiB (pids {sorted(workers_before)})"
    )

    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            samples.append(sum(worker_rss(master).values()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        answers = run_clients(
            port, models, args.clients, args.requests, args.timeout, deadline=started + args.max_seconds
        )
    finally:
        done.set()
        sampler.join()
    seconds = time.monotonic() - started
    workers_after, after = settle(master, args.workers)
    memory = Memory(before, max([before, after, *samples]), after, workers_before, workers_after, samples)
    return answers, memory, seconds, args.clients * args.requests - len(answers)


def run_clients(
    port: int, models: list[str], clients: int, requests: int, timeout: float, deadline: float | None
) -> list[Answer]:
    """`clients` threads sending `requests` each, in schedule order; none starts a request after `deadline`."""

    def client(c: int) -> list[Answer]:
        answers = []
        for r in range(requests):
            if deadline is not None and time.monotonic() > deadline:
                break
            case = SCHEDULE[(c + r) % len(SCHEDULE)]
            body = case.body
            if body is None:
                body = _json(
                    {"text": TWEETS[(c * requests + r) % len(TWEETS)], "model": models[c % len(models)]}
                )
            answers.append(post(port, body, case.name, timeout))  # `model` of an Answer holds the case
        return answers

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return [answer for answers in pool.map(client, range(clients)) for answer in answers]


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


def verdict(answers: list[Answer], memory: Memory, unsent: int, max_growth: float) -> list[str]:
    """Why the soak failed; empty if it passed."""
    failures = []
    server_errors = [a for a in answers if a.status.startswith("5")]
    if server_errors:
        kinds = Counter(f"{a.model} -> {a.status}" for a in server_errors)
        failures.append(f"{len(server_errors)} server errors (5xx): {dict(kinds)}")
    unexpected = Counter(
        f"{a.model}: {a.status} (expected {CASES[a.model].expected})"
        for a in answers
        if not a.status.startswith("5") and a.status != str(CASES[a.model].expected)
    )
    if unexpected:
        failures.append(f"{sum(unexpected.values())} unexpected answers: {dict(unexpected)}")
    if unsent:
        failures.append(f"{unsent} requests not sent: the soak ran past --max_seconds")
    if memory.workers_after != memory.workers_before:
        failures.append(
            f"workers were replaced (pids {sorted(memory.workers_before)} -> {sorted(memory.workers_after)}): "
            "one crashed or timed out"
        )
    if memory.growth > max_growth:
        failures.append(
            f"worker memory grew {memory.growth:.1%} ({mib(memory.before)} -> {mib(memory.after)} MiB), "
            f"more than {max_growth:.0%}"
        )
    return failures


def report(answers: list[Answer], memory: Memory, seconds: float, clients: int, requests: int) -> None:
    print(
        f"\n{len(answers)} of {clients * requests} requests ({clients} clients x {requests}) in {seconds:.1f} s: "
        f"{len(answers) / max(seconds, 1e-9):.1f} requests/s"
    )
    print_status_counts(answers)

    by_case: dict[str, list[Answer]] = defaultdict(list)
    for answer in answers:
        by_case[answer.model].append(answer)
    width = max(len(name) for name in CASES)
    print(f"\n{'input':<{width}}  expected  requests  statuses          p50 ms   p95 ms")
    for name, case in CASES.items():
        group = by_case.get(name, [])
        if not group:
            continue
        statuses = ",".join(f"{s}x{n}" for s, n in sorted(Counter(a.status for a in group).items()))
        latencies = [a.seconds * 1000 for a in group]
        print(
            f"{name:<{width}}  {case.expected:>8}  {len(group):>8}  {statuses:<16}  "
            f"{percentile(latencies, 50):>7.1f}  {percentile(latencies, 95):>7.1f}"
        )
    if answers:
        latencies = [a.seconds * 1000 for a in answers]
        print(
            f"{'all':<{width}}  {'':>8}  {len(answers):>8}  {'':<16}  "
            f"{percentile(latencies, 50):>7.1f}  {percentile(latencies, 95):>7.1f}"
        )
    print(
        f"\nworker RSS: before {mib(memory.before)} MiB, peak {mib(memory.peak)} MiB during "
        f"({len(memory.samples)} samples), after {mib(memory.after)} MiB: {memory.growth:+.1%}"
    )


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


if __name__ == "__main__":
    sys.exit(main())
