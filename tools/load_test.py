"""Load-test the app under gunicorn, on this machine only: concurrent clients against 127.0.0.1.

    python tools/load_test.py benchmark --model outputs/student-even --clients 50 --requests 20
    python tools/load_test.py soak --runs outputs

Each mode starts gunicorn on a free local port (and stops it) and sends CLIENTS concurrent clients x
REQUESTS requests each; `python tools/load_test.py MODE --help` says what it sends and reports.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python tools/load_test.py` puts tools/ first on the import path; put the repository root there
# instead, for the `tools` package and the app's input limits (app.api).
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT), *(p for p in sys.path if Path(p or ".").resolve() != _ROOT / "tools")]

import argparse
import functools
import inspect
import json
import math
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

from tools.gunicorn_harness import Answer, Server, run_clients, settle, under_gunicorn, worker_rss

TWEETS = [
    "I hate you",
    "you are such an idiot lol",
    "lovely weather at the beach today",
    "this traffic is so damn annoying",
    "congrats on the new job!!",
    "shut up you stupid b*tch",
    "can't wait for the game tonight",
    "these people are trash and should leave",
    "just finished my coffee, back to work",
    "wtf is wrong with you",
    "happy birthday sis, love you",
    "that referee is blind as hell",
]


def as_json(value: object) -> bytes:
    return json.dumps(value).encode()


# --- reports -------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def by_label(answers: list[Answer]) -> dict[str, list[Answer]]:
    groups: dict[str, list[Answer]] = defaultdict(list)
    for answer in answers:
        groups[answer.label].append(answer)
    return groups


def statuses(group: list[Answer]) -> str:
    """How often each status came, as "200x18,400x2"."""
    return ",".join(f"{s}x{n}" for s, n in sorted(Counter(a.status for a in group).items()))


def latency_columns(group: list[Answer]) -> str:
    """The p50 and p95 latency the clients saw, in ms, as two right-aligned columns."""
    latencies = [a.seconds * 1000 for a in group]
    return f"{percentile(latencies, 50):>7.1f}  {percentile(latencies, 95):>7.1f}"


def print_status_counts(answers: list[Answer]) -> None:
    print("\nstatus  count")
    for status, count in sorted(Counter(a.status for a in answers).items()):
        print(f"{status:<7} {count}")


# --- benchmark: throughput and latency per model -------------------------------------------------------------

BAD = "(bad request)"
# Bad requests' bodies. Each must be answered 4xx, never 500.
BAD_BODIES = [
    b'{"text": ""}',
    b'{"text": "   "}',
    b'{"comment": "missing the text field"}',
    b'{"text": 42}',
    b"not json at all",
    b'{"text": "\xff\xfe invalid utf-8"}',
    b'{"text": "hello", "model": "no-such-model"}',
]


def benchmark(args: argparse.Namespace) -> int:
    """Throughput and p50/p95 latency of the app under gunicorn.

    Starts gunicorn on a free local port (and stops it), sends CLIENTS concurrent clients x REQUESTS
    requests each (short tweets spread over the models, every 10th request a bad one), then prints the
    answers by status code and the p50/p95 latency per model, as the client saw it and as the model took.

        python tools/load_test.py benchmark --runs outputs
        python tools/load_test.py benchmark --model outputs/teacher outputs/student-even --clients 50 --requests 20
        python tools/load_test.py benchmark --model outputs/student-even --quantize int8
    """
    done = under_gunicorn(args, functools.partial(benchmark_load, args))
    if done is None:
        return 1
    (answers, seconds), _ = done
    benchmark_report(answers, seconds, args.clients, args.requests)
    return 0


def benchmark_load(args: argparse.Namespace, server: Server) -> tuple[list[Answer], float]:
    """The answers, and the seconds they took."""
    pick = functools.partial(benchmark_request, server.models, args.requests)
    started = time.perf_counter()
    answers = run_clients(server.port, args.clients, args.requests, pick, args.timeout)
    return answers, time.perf_counter() - started


def benchmark_request(models: list[str], requests: int, c: int, r: int) -> tuple[bytes, str]:
    """Client c's request r: a tweet for each model in turn; every 10th request of all a bad one."""
    i = c * requests + r
    if i % 10 == 9:
        return BAD_BODIES[(i // 10) % len(BAD_BODIES)], BAD
    model = models[(c + r) % len(models)]
    return as_json({"text": TWEETS[i % len(TWEETS)], "model": model}), model


def benchmark_report(answers: list[Answer], seconds: float, clients: int, requests: int) -> None:
    print(
        f"\n{len(answers)} requests ({clients} clients x {requests}) in {seconds:.1f} s: "
        f"{len(answers) / seconds:.1f} requests/s"
    )
    print_status_counts(answers)
    by_model = by_label(answers)
    width = max(len(name) for name in by_model)
    print(f"\n{'model':<{width}}  requests  statuses          p50 ms   p95 ms   model p50 ms")
    for name, group in by_model.items():
        model_ms = [a.model_ms for a in group if a.model_ms is not None]
        model_p50 = f"{percentile(model_ms, 50):.1f}" if model_ms else "-"
        print(
            f"{name:<{width}}  {len(group):>8}  {statuses(group):<16}  {latency_columns(group)}  {model_p50:>12}"
        )


# --- soak: good and bad input, every answer as expected, worker memory stable -------------------------------


@dataclass(frozen=True)
class Case:
    """One kind of input: its request body and the status a correct server answers it with."""

    name: str
    expected: int
    body: bytes | None = None  # None: a tweet in {"text": ...} for the model the schedule picks


@functools.cache
def schedule() -> list[Case]:
    """One client's 20 requests: half good, half bad. Clients start at different offsets, so every kind
    of input is in flight at once, next to the others."""
    # Imported here: app.api pulls in torch, which the benchmark mode and --help do without.
    from app.api import MAX_BATCH, MAX_BODY_BYTES

    good = Case("tweet", 200)
    return [
        good,
        Case("empty text", 400, as_json({"text": ""})),
        good,
        Case("emoji", 200, as_json({"text": "you 🤡 are such a 💩 lol 🔥🔥 ✨ \u200d👩\u200d👩\u200d👧"})),
        good,
        Case("invalid UTF-8", 400, b'{"text": "caf\xe9 \xff\xfe"}'),
        good,
        Case("100k characters", 200, as_json({"text": "you are awful " * 7143})),  # answered truncated
        good,
        Case("wrong type", 400, as_json({"text": 42})),
        good,
        Case("non-JSON", 400, b"text=I hate you"),
        good,
        Case("oversized body", 413, as_json({"text": "a" * MAX_BODY_BYTES})),
        good,
        Case("unknown model", 404, as_json({"text": "hello", "model": "no-such-model"})),
        Case("batch", 200, as_json({"texts": TWEETS[:8]})),
        Case("texts not a list", 400, as_json({"texts": "I hate you"})),
        good,
        Case("too many texts", 400, as_json({"texts": ["hi"] * (MAX_BATCH + 1)})),
    ]


def cases() -> dict[str, Case]:
    return {case.name: case for case in schedule()}


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


@dataclass
class Soak:
    answers: list[Answer]
    memory: Memory
    seconds: float
    unsent: int  # requests not started before --max_seconds ran out


def soak(args: argparse.Namespace) -> int:
    """Soak test of the app under gunicorn: good and bad input, latency, worker memory.

    Starts gunicorn on a free port of 127.0.0.1 (and stops it), warms it up, then sends CLIENTS concurrent
    clients x REQUESTS requests each, a fixed mix of good input (tweets, a batch, emoji, 100k characters)
    and bad input (empty text, invalid UTF-8, wrong types, non-JSON, a body over 1 MB, an unknown model,
    too many texts). The gunicorn workers' resident memory (VmRSS in /proc) is sampled before, during and
    after. Prints the answers by status code and by kind of input, p50/p95 latency and the memory, and
    exits 1 when any request got a 5xx, no answer, or a status other than the one its input calls for,
    when a worker was replaced, when memory grew by more than --max_memory_growth, or when the requests
    did not finish within --max_seconds. Linux only (it reads /proc).

        python tools/load_test.py soak --runs outputs
        python tools/load_test.py soak --model outputs/teacher outputs/student-even --clients 50 --requests 20
    """
    done = under_gunicorn(args, functools.partial(soak_load, args), soak_env(args.workers))
    if done is None:
        return 1
    result, log = done
    soak_report(result, args.clients, args.requests)
    failures = verdict(result.answers, result.memory, result.unsent, args.max_memory_growth)
    if failures:
        print("\nFAIL\n" + "\n".join(f"- {failure}" for failure in failures))
        print(f"--- gunicorn log (last lines) ---\n{log[-3000:]}")
        return 1
    print("\nPASS: no 5xx, every input answered as expected, memory stable")
    return 0


def soak_env(workers: int) -> dict[str, str]:
    # One forward pass uses every core; more threads than cores per worker only oversubscribes them.
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    return {"OMP_NUM_THREADS": threads, "HF_HUB_OFFLINE": "1"}  # a soak test needs no network


def soak_request(models: list[str], requests: int, c: int, r: int) -> tuple[bytes, str]:
    """Client c's request r: the schedule from the client's own offset; the answer is counted by case."""
    case = schedule()[(c + r) % len(schedule())]
    body = case.body
    if body is None:
        body = as_json({"text": TWEETS[(c * requests + r) % len(TWEETS)], "model": models[c % len(models)]})
    return body, case.name


def soak_load(args: argparse.Namespace, server: Server) -> Soak:
    """Warm up, then run the clients while sampling the workers' memory."""
    # The first requests of each kind fill the tokenizers' and allocators' caches in every worker; that
    # one-off growth is not a leak, so "before" is measured after a warm-up pass of the whole schedule.
    warm_up, rounds = args.workers * args.threads, len(schedule())
    pick = functools.partial(soak_request, server.models, rounds)
    run_clients(server.port, warm_up, rounds, pick, args.timeout)
    workers_before, before = settle(server.pid, args.workers)
    print(
        f"warm-up: {warm_up * rounds} requests; worker RSS {mib(before)} MiB (pids {sorted(workers_before)})"
    )

    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            samples.append(sum(worker_rss(server.pid).values()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    pick = functools.partial(soak_request, server.models, args.requests)
    try:
        answers = run_clients(
            server.port, args.clients, args.requests, pick, args.timeout, deadline=started + args.max_seconds
        )
    finally:
        done.set()
        sampler.join()
    seconds = time.monotonic() - started
    workers_after, after = settle(server.pid, args.workers)
    memory = Memory(before, max([before, after, *samples]), after, workers_before, workers_after, samples)
    return Soak(answers, memory, seconds, args.clients * args.requests - len(answers))


def verdict(answers: list[Answer], memory: Memory, unsent: int, max_growth: float) -> list[str]:
    """Why the soak failed; empty if it passed."""
    expected = {name: str(case.expected) for name, case in cases().items()}
    failures = []
    server_errors = [a for a in answers if a.status.startswith("5")]
    if server_errors:
        kinds = Counter(f"{a.label} -> {a.status}" for a in server_errors)
        failures.append(f"{len(server_errors)} server errors (5xx): {dict(kinds)}")
    unexpected = Counter(
        f"{a.label}: {a.status} (expected {expected[a.label]})"
        for a in answers
        if not a.status.startswith("5") and a.status != expected[a.label]
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


def soak_report(result: Soak, clients: int, requests: int) -> None:
    answers, memory = result.answers, result.memory
    print(
        f"\n{len(answers)} of {clients * requests} requests ({clients} clients x {requests}) in "
        f"{result.seconds:.1f} s: {len(answers) / max(result.seconds, 1e-9):.1f} requests/s"
    )
    print_status_counts(answers)

    by_case = by_label(answers)
    width = max(len(name) for name in cases())
    print(f"\n{'input':<{width}}  expected  requests  statuses          p50 ms   p95 ms")
    for name, case in cases().items():
        group = by_case.get(name, [])
        if group:
            print(
                f"{name:<{width}}  {case.expected:>8}  {len(group):>8}  {statuses(group):<16}  "
                f"{latency_columns(group)}"
            )
    if answers:
        print(f"{'all':<{width}}  {'':>8}  {len(answers):>8}  {'':<16}  {latency_columns(answers)}")
    print(
        f"\nworker RSS: before {mib(memory.before)} MiB, peak {mib(memory.peak)} MiB during "
        f"({len(memory.samples)} samples), after {mib(memory.after)} MiB: {memory.growth:+.1%}"
    )


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


# --- command line --------------------------------------------------------------------------------------------

Number = TypeVar("Number", int, float)
Mode = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """Exact flag names only; a bad flag ends in one line and exit status 2, as in the project's scripts."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (`{self.prog} --help` lists the flags)\n")


def positive(kind: Callable[[str], Number]) -> Callable[[str], Number]:
    """An argparse type: a `kind` above 0; anything else ends in one line and exit status 2."""

    def convert(text: str) -> Number:
        value = kind(text)
        if not value > 0:  # `not >` refuses NaN too
            raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
        return value

    convert.__name__ = getattr(kind, "__name__", "number")  # argparse says "invalid int value: 'x'"
    return convert


def load_flags() -> Parser:
    """The flags both modes take: what to serve, how gunicorn serves it, and how hard to load it."""
    count, seconds = positive(int), positive(float)
    flags = Parser(add_help=False)
    flags.add_argument(
        "--model", nargs="+", action="extend", default=[], help="model folders or Hub ids (default: runs)"
    )
    flags.add_argument(
        "--runs", type=Path, default=Path("outputs"), help="folder of runs (default: %(default)s)"
    )
    flags.add_argument(
        "--quantize", choices=["int8"], help="serve the models int8-quantized (TOXIC_QUANTIZE; default: fp32)"
    )
    flags.add_argument("--clients", type=count, default=50, help="concurrent clients (default: %(default)s)")
    flags.add_argument(
        "--requests", type=count, default=20, help="requests per client (default: %(default)s)"
    )
    flags.add_argument("--workers", type=count, default=2, help="gunicorn workers (default: %(default)s)")
    flags.add_argument("--threads", type=count, default=4, help="threads per worker (default: %(default)s)")
    flags.add_argument(
        "--timeout", type=seconds, default=60, help="seconds per request (default: %(default)s)"
    )
    flags.add_argument(
        "--startup_timeout",
        type=seconds,
        default=300,
        help="seconds to wait for the server (default: %(default)s)",
    )
    return flags


def add_mode(modes: argparse._SubParsersAction[Parser], run: Mode) -> Parser:
    """A subcommand named after `run`, with the shared flags; its docstring is its help."""
    doc = inspect.getdoc(run) or ""
    mode = modes.add_parser(
        run.__name__,
        parents=[load_flags()],
        help=doc.partition("\n")[0],
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode.set_defaults(run=run)
    return mode


def build_parser() -> Parser:
    parser = Parser(
        prog="tools/load_test.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    modes = parser.add_subparsers(title="modes", required=True, metavar="MODE")
    add_mode(modes, benchmark)
    soak_flags = add_mode(modes, soak)
    soak_flags.add_argument(
        "--max_seconds",
        type=positive(float),
        default=600,
        help="stop sending after this many seconds of soak; unsent requests fail it (default: %(default)s)",
    )
    soak_flags.add_argument(
        "--max_memory_growth",
        type=positive(float),
        default=0.30,
        help="largest allowed growth of the workers' total RSS, as a fraction (default: %(default)s)",
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The flags, with paths made absolute: gunicorn runs in the repository root."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.run is soak and not Path("/proc/self/status").exists():
        parser.error("the soak test reads worker memory from /proc, which this system does not have")
    args.runs = args.runs.resolve()
    args.model = [str(Path(m).resolve()) if Path(m).exists() else m for m in args.model]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
