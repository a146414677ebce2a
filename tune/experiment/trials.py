"""An experiment's trials as their folders and Ray's saved state hold them (``TrialRecord``),
read back by summary, export, dashboard and evaluate, and the row files they are read from."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tune.experiment.ends import REASON, RayStatus, TrialEnd, diverged, trial_end
from tune.numbers import finite
from tune.private_api import saved_trial_statuses
from tune.study import BASELINE_KEY


@dataclass
class TrialRecord:
    """One trial of an experiment: its parameters, its rows (one per epoch), Ray's status and
    how it ended."""

    trial_id: str
    folder: Path
    params: dict[str, Any]
    rows: list[dict[str, Any]]
    status: RayStatus = RayStatus.UNKNOWN
    error: str = ""  # the last line of its error.txt
    fixed_model: str = "base_residual"  # the study's model where a trial does not set one
    end: TrialEnd = TrialEnd.UNKNOWN
    end_text: str = ""  # the end in words (TrialEnd.summary_text)
    best: dict[str, Any] | None = field(default=None)  # the row of the best finite val_rmse

    def __post_init__(self) -> None:
        self.status = RayStatus.of(self.status)
        if self.best is None:
            rows = [r for r in self.rows if finite(r.get("val_rmse"))]
            self.best = min(rows, key=lambda r: r["val_rmse"]) if rows else None

    @property
    def baseline(self) -> str | None:
        return self.params.get(BASELINE_KEY)

    @property
    def model(self) -> str:
        return self.params.get("model", self.fixed_model)

    @property
    def epochs_run(self) -> int:
        return sum(not diverged(r) for r in self.rows)  # the divergence report is no epoch

    @property
    def best_val_rmse(self) -> float:
        return self.best["val_rmse"] if self.best else math.inf

    @property
    def label(self) -> str:
        return f"{self.trial_id} ({self.baseline})" if self.baseline else self.trial_id

    def how_it_ended(self, max_t: int, asha: bool, told: TrialEnd | None = None
                     ) -> tuple[TrialEnd, str]:
        """Its end and the end in words; `told`: what the journal recorded when it ended."""
        divergences = [r for r in self.rows if diverged(r)]
        end = trial_end(diverged=bool(divergences), epochs=self.epochs_run, max_t=max_t,
                        told=told, status=self.status)
        reason = divergences[-1].get(REASON, "") if divergences else self.error
        return end, end.summary_text(reason, asha)


def numbered_folders(folder: Path, name: str) -> list[Path]:
    """`name`, then `name`-2, `name`-3 ... inside `folder` (the runs of each confirmation),
    in that order."""
    found = {1 if f.name == name else int(f.name.rpartition("-")[2]): f
             for f in Path(folder).glob(f"{name}*") if f.is_dir() and (
                 f.name == name or f.name.removeprefix(f"{name}-").isdigit())}
    return [found[n] for n in sorted(found)]


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a crash mid-write
                continue
    return rows


def ray_trial_statuses(experiment: Path) -> dict[str, RayStatus]:
    """trial id -> status from Ray's newest saved state (best effort: Ray's format)."""
    return {trial_id: RayStatus.of(status)
            for trial_id, status in saved_trial_statuses(experiment).items()}


def last_error_line(folder: Path) -> str:
    path = folder / "error.txt"
    if not path.is_file():
        return ""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()
             if line.strip()]
    return lines[-1][:300] if lines else "unknown error"


def read_trial(folder: Path, statuses: dict[str, RayStatus], fixed_model: str
               ) -> TrialRecord | None:
    """The trial of a trial folder; None while it has no params.json."""
    try:
        params = json.loads((folder / "params.json").read_text())
    except (OSError, ValueError):  # a trial still starting, or a write the disk cut
        return None
    rows = read_rows(folder / "result.json")
    trial_id = rows[0]["trial_id"] if rows else folder.name.removeprefix("trial_")
    return TrialRecord(trial_id=trial_id, folder=folder, params=params, rows=rows,
                       status=statuses.get(trial_id, RayStatus.UNKNOWN),
                       error=last_error_line(folder), fixed_model=fixed_model)
