"""distill.cli: what every script does around its main(): flags read by their exact names, a mistake as a
UserError, and a clean exit from a distributed run."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest
from conftest import ROOT, free_port

from distill import cli
from distill.args import DistillationArguments, RunArguments
from distill.errors import UserError


@dataclass
class Options:
    layers: str = "even"
    verbose: bool = False


def test_flags_are_read_by_their_exact_names() -> None:
    (options,) = cli.parse_args(Options, ["--layers", "odd", "--verbose"])
    assert options == Options(layers="odd", verbose=True)
    with pytest.raises(
        UserError, match=r"^Unknown argument\(s\): --layer odd\. `--help` lists every flag\.$"
    ):
        cli.parse_args(Options, ["--layer", "odd"])  # an abbreviation of --layers: refused, not guessed


def test_the_trainers_own_checks_become_one_line_user_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    flags = ["--output_dir", str(tmp_path), "--save_strategy", "steps", "--eval_strategy", "epoch"]
    with pytest.raises(UserError) as err:
        cli.parse_args((DistillationArguments, RunArguments), flags)
    assert "--load_best_model_at_end requires" in str(err.value) and "\n" not in str(err.value)


def test_a_leading_positional_argument_is_read_as_a_flag() -> None:
    assert cli.with_positional(["outputs/run", "--split", "test"], "--run") == [
        "--run", "outputs/run", "--split", "test"
    ]  # fmt: skip
    assert cli.with_positional(["--run", "outputs/run"], "--run") == ["--run", "outputs/run"]
    assert cli.with_positional([], "--run") == []


@pytest.mark.slow
def test_a_finished_script_leaves_the_process_group(tmp_path):
    # A rank that exits with the group alive can abort at shutdown (gloo's threads), failing a run
    # that had succeeded; cli.run must tear the group down once main() returns.
    code = (
        "import torch.distributed as dist\n"
        "from distill import cli\n"
        "dist.init_process_group('gloo')\n"
        "cli.run(lambda: None)\n"
        "print('still initialized:', dist.is_initialized())\n"
    )
    env = {**os.environ, "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "still initialized: False"
