"""Load-test the app under gunicorn, on this machine only: concurrent clients against 127.0.0.1.

    python app/benchmark_app.py --runs outputs
    python app/benchmark_app.py --model outputs/teacher outputs/student-even --clients 50 --requests 20
    python app/benchmark_app.py --model outputs/student-even --quantize int8

Starts gunicorn on a free local port (and stops it), sends CLIENTS concurrent clients x REQUESTS
requests each (short tweets spread over the models, every 10th request a bad one), then prints the
answers by status code and the p50/p95 latency per model, as the client saw it and as the model took.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # the benchmark never sends traffic anywhere else
BAD = "(bad request)"

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
# Bad requests: (body bytes, model). Each must be answered 4xx, never 500.
BAD_BODIES = [
    b'{"text": ""}',
    b'{"text": "   "}',
    b'{"comment": "missing the text field"}',
    b'{"text": 42}',
    b"not json at all",
    b'{"text": "\xff\xfe invalid utf-8"}',
    b'{"text": "hello", "model": "no-such-model"}',
]


@dataclass
class Answer:
    model: str
    status: str  # an HTTP status code, or "timeout" / "error" when no answer came
    seconds: float
    model_ms: float | None


def main() -> None:
    args = parse_args()
    env = {**os.environ, "TOXIC_RUNS": str(args.runs), "TOXIC_MODELS": ",".join(args.model or [])}
    env["TOXIC_QUANTIZE"] = args.quantize or ""
    port = free_port()
    with tempfile.TemporaryFile(mode="w+") as log:
        command = [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "--threads", str(args.threads)]
        command += ["--timeout", "120", "-b", f"{HOST}:{port}", "app.app:server"]
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
            print(f"gunicorn: {args.workers} workers x {args.threads} threads on {HOST}:{port}")
            print(f"models: {', '.join(models)}")
            started = time.perf_counter()
            answers = run_clients(port, models, args.clients, args.requests, args.timeout)
            report(answers, time.perf_counter() - started, args.clients, args.requests)
        except RuntimeError as err:
            log.seek(0)
            print(f"error: {err}\n--- gunicorn log ---\n{log.read()[-4000:]}", file=sys.stderr)
            sys.exit(1)
        finally:
            stop(server)


def load_parser(description: str | None) -> argparse.ArgumentParser:
    """The flags of a load run against the app under gunicorn (shared with app/soak.py)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", nargs="+", action="extend", help="model folders or Hub ids (default: runs)"
    )
    parser.add_argument(
        "--runs", type=Path, default=Path("outputs"), help="folder of runs (default: %(default)s)"
    )
    parser.add_argument(
        "--quantize", choices=["int8"], help="serve the models int8-quantized (TOXIC_QUANTIZE; default: fp32)"
    )
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=20, help="requests per client (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default: %(default)s)")
    parser.add_argument(
        "--timeout", type=float, default=60, help="seconds per request (default: %(default)s)"
    )
    parser.add_argument("--startup_timeout", type=float, default=300, help="seconds to wait for the server")
    return parser


def checked_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse, check the counts, and make model paths absolute (gunicorn runs in the repository root)."""
    args = parser.parse_args(argv)
    if args.clients < 1 or args.requests < 1 or args.workers < 1 or args.threads < 1:
        parser.error("--clients, --requests, --workers and --threads must be at least 1")
    args.runs = args.runs.resolve()
    args.model = [str(Path(m).resolve()) if Path(m).exists() else m for m in args.model or []]
    return args


def parse_args() -> argparse.Namespace:
    return checked_args(load_parser(__doc__))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_until_ready(port: int, server: subprocess.Popen, timeout: float) -> list[str]:
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


def run_clients(port: int, models: list[str], clients: int, requests: int, timeout: float) -> list[Answer]:
    def client(c: int) -> list[Answer]:
        answers = []
        for r in range(requests):
            i = c * requests + r
            if i % 10 == 9:
                answers.append(post(port, BAD_BODIES[(i // 10) % len(BAD_BODIES)], BAD, timeout))
            else:
                model = models[(c + r) % len(models)]
                body = json.dumps({"text": TWEETS[i % len(TWEETS)], "model": model}).encode()
                answers.append(post(port, body, model, timeout))
        return answers

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return [answer for answers in pool.map(client, range(clients)) for answer in answers]


def post(port: int, body: bytes, model: str, timeout: float) -> Answer:
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
    return Answer(model, status, time.perf_counter() - started, model_ms)


def print_status_counts(answers: list[Answer]) -> None:
    print("\nstatus  count")
    for status, count in sorted(Counter(a.status for a in answers).items()):
        print(f"{status:<7} {count}")


def report(answers: list[Answer], seconds: float, clients: int, requests: int) -> None:
    print(
        f"\n{len(answers)} requests ({clients} clients x {requests}) in {seconds:.1f} s: "
        f"{len(answers) / seconds:.1f} requests/s"
    )
    print_status_counts(answers)
    by_model: dict[str, list[Answer]] = defaultdict(list)
    for answer in answers:
        by_model[answer.model].append(answer)
    width = max(len(name) for name in by_model)
    print(f"\n{'model':<{width}}  requests  statuses          p50 ms   p95 ms   model p50 ms")
    for name, group in by_model.items():
        statuses = ",".join(f"{s}x{n}" for s, n in sorted(Counter(a.status for a in group).items()))
        latencies = [a.seconds * 1000 for a in group]
        model_ms = [a.model_ms for a in group if a.model_ms is not None]
        model_p50 = f"{percentile(model_ms, 50):.1f}" if model_ms else "-"
        print(
            f"{name:<{width}}  {len(group):>8}  {statuses:<16}  {percentile(latencies, 50):>7.1f}  "
            f"{percentile(latencies, 95):>7.1f}  {model_p50:>12}"
        )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def stop(server: subprocess.Popen) -> None:
    """Stop the gunicorn started here: SIGTERM to its process group, SIGKILL if it lingers."""
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


if __name__ == "__main__":
    main()
