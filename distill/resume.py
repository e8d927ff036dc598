"""What a run killed and resumed (as `scripts/experiment.py` does after any crash) must still record
about the whole run, not only about its last attempt.

The Trainer computes `train_loss` and `train_runtime` over the current process. Here the training time
of earlier attempts and their count travel in each checkpoint's trainer state (`RunClock`), the loss is
logged at every checkpoint (`LogAtCheckpoints`) so the saved log history covers every step, and the
whole run's figures are computed from those (`whole_run_metrics`).
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState


class RunClock(TrainerCallback, ExportableState):
    """Training time and attempts across resumes, saved in every checkpoint's trainer_state.json.

    The time is that of the work the final model holds: each earlier attempt up to the checkpoint it
    left, plus the attempt that finished. Work lost after a checkpoint to a kill is not counted.
    """

    def __init__(self) -> None:
        self.seconds_before = 0.0  # earlier attempts, up to the checkpoint this one resumed from
        self.attempts = 0
        self.first_step = 0  # the global step this attempt started at
        self._began: float | None = None

    @property
    def seconds(self) -> float:
        running = 0.0 if self._began is None else time.monotonic() - self._began
        return self.seconds_before + running

    def state(self) -> dict[str, Any]:
        return {"args": {}, "attributes": {"seconds": self.seconds, "attempts": self.attempts}}

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        # A resumed state holds what the checkpoint's attempts saved; a fresh one (or a checkpoint
        # written before this callback existed) holds nothing, and needs the entry for the next save.
        callbacks: dict[str, Any] = state.stateful_callbacks  # type: ignore[assignment]  # a dict once built
        saved = callbacks.setdefault(type(self).__name__, self.state())
        attributes = saved.get("attributes", {}) if isinstance(saved, dict) else {}
        self.seconds_before = float(attributes.get("seconds", 0.0))
        self.attempts = int(attributes.get("attempts", 0)) + 1
        self.first_step = state.global_step
        self._began = time.monotonic()


class LogAtCheckpoints(TrainerCallback):
    """Log the training loss at every checkpoint and at the last step, besides every --logging_steps.

    The Trainer drops the loss of steps run since the last log when it resumes, and never logs the
    steps after the last one: with these logs the log history covers every step of the run.
    """

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        # Runs after the Trainer's own flow callback, which has decided whether this step saves.
        if control.should_save or state.global_step >= state.max_steps:
            control.should_log = True


def logged_train_loss(log_history: list[dict[str, Any]]) -> float | None:
    """The mean training loss over every logged step: each log's `loss` is the mean over the steps
    since the one before, so it weighs by those steps."""
    total, steps, last_step = 0.0, 0, 0
    for entry in log_history:
        if "loss" in entry:
            covered = int(entry["step"]) - last_step
            total, steps, last_step = (
                total + float(entry["loss"]) * covered,
                steps + covered,
                int(entry["step"]),
            )
    return total / steps if steps else None


def whole_run_metrics(
    metrics: dict[str, Any], log_history: list[dict[str, Any]], clock: RunClock, global_step: int
) -> dict[str, Any]:
    """The Trainer's training metrics of this attempt, made those of the whole run: the loss from the
    full log history, the time and throughput over every attempt, and the number of attempts."""
    steps_now = global_step - clock.first_step
    seconds = clock.seconds
    whole = {**metrics, "train_runtime": round(seconds, 4), "train_attempts": clock.attempts}
    loss = logged_train_loss(log_history)
    if loss is not None:
        whole["train_loss"] = loss
    if steps_now > 0 and seconds > 0:
        # This attempt's samples/s times its runtime is its samples; the run's is that per step, all steps.
        samples = metrics.get("train_samples_per_second", 0.0) * metrics.get("train_runtime", 0.0)
        whole["train_samples_per_second"] = round(samples / steps_now * global_step / seconds, 3)
        whole["train_steps_per_second"] = round(global_step / seconds, 3)
    return whole
