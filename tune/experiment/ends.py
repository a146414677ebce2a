"""How a trial ended, in one vocabulary for the journal, the summary and the console:
``TrialEnd``, the words each of them says for it, and ``trial_end``, the one rule that decides
it from what its reader knows. A new kind of end is added here alone."""

from __future__ import annotations

from enum import Enum
from typing import Any

# A result row's keys for a divergence (tune.trainable reports one such row, its metric NaN);
# REASON is also the journal's key of the end in words (tune.experiment.journal).
DIVERGED, REASON = "diverged", "stop_reason"


class RayStatus(str, Enum):
    """A trial's status in Ray's saved state; UNKNOWN where Ray saved none."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    TERMINATED = "TERMINATED"
    ERROR = "ERROR"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, status: Any) -> RayStatus:
        return {s.value: s for s in cls}.get(status, cls.UNKNOWN)


class TrialEnd(str, Enum):
    """Why a trial ended, or that it has not: the journal records one of these per trial
    (its value, on disk: old journals hold the same words)."""

    COMPLETED = "completed"
    EARLY = "early stop"  # the scheduler stopped it before the full budget
    DIVERGED = "diverged"
    ERROR = "error"
    LOST = "lost"  # the journal started it and Ray never saved it (the driver was killed)
    RUNNING = "running"
    PENDING = "pending"
    PAUSED = "paused"
    UNKNOWN = "unknown"

    @property
    def problem(self) -> bool:
        """A trial that ended without a usable result of its own making."""
        return self in (TrialEnd.DIVERGED, TrialEnd.ERROR)

    def summary_text(self, reason: str = "", asha: bool = True) -> str:
        """As the summary and the report say it; `reason`: the divergence's words, or the
        error's last line."""
        if self is TrialEnd.DIVERGED:
            return reason or self.value
        if self is TrialEnd.ERROR:
            return f"error: {reason or 'see error.txt'}"
        if self is TrialEnd.EARLY:
            return "ASHA stop" if asha else "stopped early"
        return self.value

    def journal_text(self, reason: str = "") -> str:
        """As the journal records it beside the end (optuna-dashboard shows it)."""
        if self is TrialEnd.DIVERGED:
            return reason or self.value
        if self is TrialEnd.LOST:
            return "lost: the driver stopped before Ray saved this trial"
        return self.value

    def console_text(self, epoch: int, folder: str = "") -> str:
        """As the console's line for a trial that ends says it; `folder`: the trial's."""
        if self is TrialEnd.DIVERGED:
            return f"diverged at epoch {epoch}"
        if self is TrialEnd.EARLY:
            return f"stopped early at epoch {epoch} (ASHA)"
        if self is TrialEnd.ERROR:
            return f"error after its retries; see {folder}/error.txt"
        return self.value


def diverged(row: dict[str, Any]) -> bool:
    """Whether a result row reports a divergence (it is no epoch)."""
    return bool(row.get(DIVERGED))


def divergence(reason: str) -> dict[str, Any]:
    """The keys of the result row that reports a divergence, with its words."""
    return {DIVERGED: 1.0, REASON: reason}


def trial_end(*, epochs: int, max_t: int, diverged: bool = False, error: bool = False,
              measured: bool = True, told: TrialEnd | None = None,
              status: RayStatus = RayStatus.TERMINATED) -> TrialEnd:
    """How a trial ended, from what its reader knows: whether a row reported a divergence,
    whether Ray reported an error, the epochs it ran of `max_t`, whether it ever reported a
    finite metric (`measured`, known once it ended), the end the journal recorded (`told`,
    the record: a row a kill cut from result.json does not make a completed trial an early
    stop) and Ray's status (TERMINATED: Ray ended it)."""
    if diverged:
        return TrialEnd.DIVERGED
    if error or status is RayStatus.ERROR or told is TrialEnd.ERROR:
        return TrialEnd.ERROR
    if not measured:
        return TrialEnd.DIVERGED
    if epochs >= max_t or told is TrialEnd.COMPLETED:
        return TrialEnd.COMPLETED
    if told is TrialEnd.EARLY or status is RayStatus.TERMINATED:
        return TrialEnd.EARLY
    return {RayStatus.RUNNING: TrialEnd.RUNNING, RayStatus.PENDING: TrialEnd.PENDING,
            RayStatus.PAUSED: TrialEnd.PAUSED}.get(status, TrialEnd.UNKNOWN)
