"""What a search has spent of its budget, read from the Optuna journal: the epochs every trial
reported (baselines and early-stopped trials included, each epoch once, whatever a resume ran
again) and the search's wall-clock seconds, kept as a study attribute across resumes.

Trials keep coming until one part of the budget is spent; the trials already running then
finish, so a search ends past its epoch budget by at most what those trials still train.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from tune.study import StudySpec

SECONDS = "search_seconds"  # the study's attribute: wall-clock seconds the search has run


def epochs_reported(trial) -> int:
    """The epochs one journal trial reported (its highest step)."""
    return max(trial.intermediate_values, default=0)


class Spent(NamedTuple):
    epochs: int
    seconds: float
    trials: int  # trials that reported at least one epoch
    finished: int  # trials the journal closed (lost ones not counted)


def spent(study, lost_attr: str) -> Spent:
    trials = study.get_trials(deepcopy=False)
    return Spent(sum(epochs_reported(t) for t in trials),
                 float(study.user_attrs.get(SECONDS, 0.0)),
                 sum(bool(t.intermediate_values) for t in trials),
                 sum(t.state.is_finished() and not t.user_attrs.get(lost_attr)
                     for t in trials))


def exhausted(spec: StudySpec, used: Spent) -> str | None:
    """Which part of the budget is spent, in words; None while trials may still come."""
    budget = spec.budget
    if budget.epochs is not None and used.epochs >= budget.epochs:
        return f"epoch budget spent ({used.epochs} of {budget.epochs} epochs)"
    if budget.time_s is not None and used.seconds >= budget.time_s:
        return f"time budget spent ({used.seconds:.0f} of {budget.time_s:.0f} s)"
    if spec.num_samples is not None and used.finished >= spec.num_samples:
        return f"all {spec.num_samples} trials finished"
    return None


class Clock:
    """The search's wall-clock seconds: what earlier runs of the driver recorded, plus this
    one's since its first trial was asked for (``SECONDS`` in the journal, written as results
    arrive; the question's runs before the search are not counted)."""

    def __init__(self):
        self.started: float | None = None
        self.before: float | None = None

    def start(self) -> None:
        if self.started is None:
            self.started = time.monotonic()

    def record(self, study) -> None:
        self.start()
        if self.before is None:
            self.before = float(study.user_attrs.get(SECONDS, 0.0))
        study.set_user_attr(SECONDS, self.before + time.monotonic() - self.started)

    def __getstate__(self) -> dict[str, Any]:
        return {"started": None, "before": None}  # a restored searcher starts a new session


def budget_text(spec: StudySpec) -> str:
    """The budget in words, as the console and the summary say it."""
    budget = spec.budget
    parts = [f"{budget.epochs} epochs" if budget.epochs is not None else "",
             f"{budget.time_s:.0f} s" if budget.time_s is not None else "",
             f"at most {spec.num_samples} trials" if spec.num_samples is not None else ""]
    return ", ".join(p for p in parts if p)
