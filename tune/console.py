"""What a person reads while trials run: a line when a trial ends (completed, stopped early at
epoch k, diverged, error) or goes on from a checkpoint, and after `every_s` seconds without a
line, one naming each running trial and its epoch. Ray's own tables and the workers' logs
stay off unless a command is given --verbose (RunConfig's verbose)."""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from ray.tune import Callback

from tune.console_text import console_text
from tune.experiment import diverged, trial_end
from tune.study import BASELINE_KEY, run_label


def trial_name(trial) -> str:
    """A baseline's name, a fold run's label, else Ray's trial id."""
    config = trial.config or {}
    return run_label(config) or config.get(BASELINE_KEY) or trial.trial_id


class ConsoleProgress(Callback):
    """One line per trial end (or resumption), and a periodic line of the running trials; the
    best val RMSE said is the best epoch's, as the summary and the journal rank trials."""

    def __init__(self, budget: int, total: int | None, every_s: float = 60.0,
                 out: TextIO | None = None):
        self.budget, self.total, self.every_s = budget, total, every_s
        self.out = out
        self.best: dict[str, tuple[float, int]] = {}  # trial id -> (best val RMSE, its epoch)
        self.epoch: dict[str, int] = {}
        self.running: dict[str, Any] = {}
        self.last_line = time.monotonic()
        self.done = 0

    def say(self, text: str) -> None:
        print(console_text(text), file=self.out or sys.stdout, flush=True)
        self.last_line = time.monotonic()  # the periodic line fills silences only

    def _best(self, trial) -> str:
        value, epoch = self.best.get(trial.trial_id, (math.nan, 0))
        return f"best val RMSE {value:.4f} m at epoch {epoch}" if epoch else "no result"

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        """Silent for a new trial (the periodic line names it); a trial that goes on from a
        checkpoint says so."""
        self.running[trial.trial_id] = trial
        resumed = self.epoch.get(trial.trial_id) or (trial.last_result or {}).get(
            "training_iteration")
        if resumed:
            self.say(f"{trial_name(trial)}: goes on from epoch {resumed}")

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        epoch = int(result.get("training_iteration", 0))
        self.epoch[trial.trial_id] = epoch
        value = result.get("val_rmse", math.nan)
        if isinstance(value, float) and math.isfinite(value) and (
                value < self.best.get(trial.trial_id, (math.inf, 0))[0]):
            self.best[trial.trial_id] = (value, epoch)
        if time.monotonic() - self.last_line >= self.every_s:
            done = f"{self.done} of {self.total}" if self.total else f"{self.done}"
            self.say(f"  {done} done; running: " + "; ".join(
                f"{trial_name(t)} epoch {self.epoch.get(t.trial_id, 0)}/{self.budget}"
                + (f" (best {self.best[t.trial_id][0]:.3f} m)" if t.trial_id in self.best
                   else "") for t in self.running.values()))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.running.pop(trial.trial_id, None)
        self.done += 1
        last = trial.last_result or {}
        epoch = int(last.get("training_iteration", self.epoch.get(trial.trial_id, 0)))
        end = trial_end(diverged=diverged(last), epochs=epoch, max_t=self.budget)
        self.say(f"{trial_name(trial)}: {end.console_text(epoch)}, {self._best(trial)}")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.running.pop(trial.trial_id, None)
        self.done += 1
        epoch = self.epoch.get(trial.trial_id, 0)
        end = trial_end(error=True, epochs=epoch, max_t=self.budget)
        self.say(f"{trial_name(trial)}: {end.console_text(epoch, trial.path)}")
