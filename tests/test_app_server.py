"""The app as deployed: app/app.py refusing to start, and gunicorn serving it (slow: real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, STUDENT, TEACHER, free_port


def app_env(**variables: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOXIC_MODELS": "", "TOXIC_NON_TOXIC_LABEL": "", **variables}


@pytest.mark.slow
def test_app_refuses_to_start_when_no_model_loads(tmp_path: Path) -> None:
    missing = tmp_path / "missing-model"
    done = subprocess.run(
        [sys.executable, "app/app.py", "--model", str(missing), "--port", str(free_port())],
        cwd=ROOT,
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert f"There is no folder {missing}" in done.stderr
    assert "Not starting: None of the 1 model(s) could be loaded" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.slow
def test_gunicorn_serves_the_app(runs: Path, tmp_path: Path) -> None:
    """The deployment command of app/README.md, run from the repository root."""
    port = free_port()
    script = Path(sys.executable).with_name("gunicorn")  # the console script, as the README runs it
    command = [str(script)] if script.exists() else [sys.executable, "-m", "gunicorn"]
    command += ["-w", "1", "--threads", "4", "--timeout", "120", "-b", f"127.0.0.1:{port}", "app.app:server"]
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            command, cwd=ROOT, env=app_env(TOXIC_RUNS=str(runs)), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=5) as answer:
                    names = [model["name"] for model in json.load(answer)["models"]]
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.5)
        assert names == [STUDENT, TEACHER]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/classify",
            data=json.dumps({"text": "I hate you"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert set(json.load(answer)) >= {"label", "toxic", "scores"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as answer:
            assert b"react-entry-point" in answer.read()
    finally:
        server.terminate()
        server.wait(timeout=60)
