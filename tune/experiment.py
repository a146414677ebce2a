"""The experiment folder of ``tune.run``: its layout, its study, its Optuna journal and its
trials, read back by summary, export, dashboard and evaluate.

Layout: ``study.yaml`` (the resolved study), ``optuna-journal.log`` (the Optuna study), Ray's
state (``tuner.pkl``, ``experiment_state-*.json``) and one ``trial_<id>/`` folder per trial
(``params.json``, ``result.json`` with one row per epoch, checkpoints, TensorBoard events).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tune.errors import UsageError
from tune.space import BASELINE_KEY, StudySpec, load_study

STUDY_FILE = "study.yaml"
JOURNAL_FILE = "optuna-journal.log"


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)


def write_json(path: Path, data: Any) -> None:
    """Write a report whole or not at all (a temporary file renamed into place)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def evaluation_file(folder: Path, split: str) -> Path:
    """Where tune.evaluate keeps a split's scores (written once, after the search)."""
    return Path(folder) / f"evaluation-{split}.json"


def confirm_file(folder: Path) -> Path:
    """Where tune.confirm keeps its seed statistics."""
    return Path(folder) / "confirm.json"


def journal_storage(folder: Path):
    """The Optuna storage of an experiment: a journal file that several processes may share."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(Path(folder) / JOURNAL_FILE)))


@dataclass
class TrialSummary:
    trial_id: str
    folder: Path
    params: dict[str, Any]
    rows: list[dict[str, Any]]
    status: str  # Ray's: TERMINATED, ERROR, RUNNING, PENDING, PAUSED, or unknown
    error: str = ""
    fixed_model: str = "base_residual"  # the study's model where a trial does not set one
    stop_reason: str = ""
    best: dict[str, Any] | None = field(default=None)  # the row of the best finite val_rmse

    def __post_init__(self) -> None:
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
        return sum(not r.get("diverged") for r in self.rows)  # the divergence report is no epoch

    @property
    def best_val_rmse(self) -> float:
        return self.best["val_rmse"] if self.best else math.inf

    @property
    def label(self) -> str:
        return f"{self.trial_id} ({self.baseline})" if self.baseline else self.trial_id


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a crash mid-write
                continue
    return rows


def _ray_statuses(experiment: Path) -> dict[str, str]:
    """trial id -> status from Ray's newest experiment state (best effort: Ray's format)."""
    states = sorted(experiment.glob("experiment_state-*.json"))
    if not states:
        return {}
    try:
        data = json.loads(states[-1].read_text())
        trials = [json.loads(entry[0]) for entry in data["trial_data"]]
        return {t["trial_id"]: t["status"] for t in trials}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return {}


def _last_error_line(folder: Path) -> str:
    path = folder / "error.txt"
    if not path.is_file():
        return ""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()
             if line.strip()]
    return lines[-1][:300] if lines else "unknown error"


def stop_reason(trial: TrialSummary, max_t: int, scheduler: str) -> str:
    diverged = [r for r in trial.rows if r.get("diverged")]
    if diverged:
        return diverged[-1].get("stop_reason", "diverged")
    if trial.status == "ERROR":
        return f"error: {trial.error or 'see error.txt'}"
    if trial.epochs_run >= max_t:
        return "completed"
    if trial.status == "TERMINATED":
        return "ASHA stop" if scheduler == "asha" else "stopped early"
    return trial.status.lower() if trial.status != "unknown" else "unknown"


class Experiment:
    """One experiment folder: refuses a folder that is not one, with one line."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser().resolve()
        if not (self.folder / STUDY_FILE).is_file():
            raise UsageError(f"{self.folder}: not an experiment folder of tune.run "
                             f"(no {STUDY_FILE})")
        self.spec: StudySpec = load_study(self.folder / STUDY_FILE)

    @property
    def max_t(self) -> int:
        """Epochs of a trial that runs its full budget."""
        if "max_t" in self.spec.scheduler:
            return self.spec.scheduler["max_t"]
        return self.spec.trial_config(self.spec.low_corner()).epochs

    def trials(self) -> list[TrialSummary]:
        """Every trial with a params.json, best first (lowest best-epoch val RMSE)."""
        statuses = _ray_statuses(self.folder)
        max_t = self.max_t
        trials = []
        for folder in sorted(self.folder.glob("trial_*")):
            params_file = folder / "params.json"
            if not params_file.is_file():
                continue
            rows = read_rows(folder / "result.json")
            trial_id = rows[0]["trial_id"] if rows else folder.name.removeprefix("trial_")
            trial = TrialSummary(trial_id=trial_id, folder=folder,
                                 params=json.loads(params_file.read_text()), rows=rows,
                                 status=statuses.get(trial_id, "unknown"),
                                 error=_last_error_line(folder),
                                 fixed_model=self.spec.fixed.get("model", "base_residual"))
            trial.stop_reason = stop_reason(trial, max_t, self.spec.scheduler["type"])
            trials.append(trial)
        return sorted(trials, key=lambda t: (t.best_val_rmse, t.trial_id))

    def baselines_and_top(self, top: int) -> list[TrialSummary]:
        """Every baseline with a result, then the `top` best searched trials: what evaluate
        scores and confirm re-trains."""
        ranked = [t for t in self.trials() if t.best]
        return [t for t in ranked if t.baseline] + [t for t in ranked if not t.baseline][:top]

    def optuna_study(self):
        import optuna

        return optuna.load_study(study_name=self.spec.name,
                                 storage=journal_storage(self.folder))
