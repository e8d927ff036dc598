"""The flags' own checks (distill.args): what RunArguments refuses before anything loads."""

from __future__ import annotations

import pytest
from transformers import TrainingArguments

from distill import cli
from distill.args import RunArguments
from distill.errors import UserError


def test_several_gpus_in_one_process_are_refused_for_accelerate_launch(monkeypatch, tmp_path):
    # Simulated: two GPUs visible to a process started without a launcher. The Trainer would wrap the
    # model in DataParallel and multiply ClassificationLoss by 2 (a loss of 2.20 for a CE of 1.10).
    monkeypatch.setattr(TrainingArguments, "n_gpu", property(lambda self: 2))
    with pytest.raises(
        UserError, match=r"2 GPUs .*DataParallel.*accelerate launch --multi_gpu --num_processes 2"
    ):
        cli.parse_args((RunArguments,), ["--output_dir", str(tmp_path)])


def test_one_device_is_accepted(tmp_path):
    (args,) = cli.parse_args((RunArguments,), ["--output_dir", str(tmp_path)])
    assert args.n_gpu <= 1
