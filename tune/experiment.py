"""The experiment folder of ``tune.run``: its layout, its study, its Optuna journal and its
trials, read back by summary, export, dashboard and evaluate.

Layout: ``study.yaml`` (the resolved study), ``optuna-journal.log`` (the Optuna study), Ray's
state (``tuner.pkl``, ``experiment_state-*.json``) and one ``trial_<id>/`` folder per trial
(``params.json``, ``result.json`` with one row per epoch, checkpoints, TensorBoard events).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tune.errors import UsageError
from tune.space import BASELINE_KEY, StudySpec, load_study

STUDY_FILE = "study.yaml"
JOURNAL_FILE = "optuna-journal.log"
LOCK_FILE = "driver.lock"
# User attributes of every trial in the journal (optuna-dashboard shows them).
RAY_ID, BASELINE, MODEL, STOP = "ray_trial_id", "baseline", "model", "stop_reason"
LOST = "lost"  # a trial the journal started and Ray never saved (the driver was killed)
BEST = "best_metrics"  # the target metrics of the trial's best epoch (with constraints on)
STUDY_AS_STARTED = "study_yaml"  # the study's user attribute: the resolved study at the start

_held: Path | None = None  # the experiment folder this process drives, while it does


@contextmanager
def driving(folder: Path, command: str = "tune.run") -> Iterator[Path]:
    """Hold an experiment folder's driver lock while the block runs: one driver per
    experiment (two would both ask the journal for trials and run num_samples twice).

    The lock is the kernel's (flock), so a killed driver never leaves it behind. The searcher
    and scheduler open the journal of the folder held here (``held_folder``).
    """
    global _held
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / LOCK_FILE, "a+")
    except OSError as err:
        raise UsageError(f"{folder}: cannot write there: {err.strerror}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise UsageError(f"{folder}: another command is working on this experiment "
                         f"({owner}); one experiment has one driver: wait for it, or stop it "
                         "first") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{command}, pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    _held = folder
    try:
        yield folder
    finally:
        _held = None
        handle.close()


def held_folder() -> Path:
    if _held is None:
        raise RuntimeError("no experiment folder is held: run inside experiment.driving()")
    return _held


def cut_partial_line(path: Path) -> None:
    """Drop a last line a kill cut short (it was never whole, so never read), so that the
    next record appended is not glued to it. Empty files are left as they are."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as file:
        file.seek(-1, os.SEEK_END)
        if file.read(1) == b"\n":
            return
        file.seek(0)
        data = file.read()
        file.truncate(data.rfind(b"\n") + 1)


def repair_after_kill(folder: Path) -> None:
    """The append-only files of an experiment, each cut back to its last whole line."""
    cut_partial_line(folder / JOURNAL_FILE)
    for trial in folder.glob("trial_*"):
        for name in ("result.json", "progress.csv"):
            cut_partial_line(trial / name)


def short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)


def write_json(path: Path, data: Any) -> None:
    """Write a report whole or not at all (a temporary file renamed into place)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))  # paths and numpy scalars
    tmp.replace(path)


def evaluation_file(folder: Path, split: str) -> Path:
    """Where tune.evaluate keeps a split's scores (written once, after the search)."""
    return Path(folder) / f"evaluation-{split}.json"


CONFIRM_VERSION = 2  # confirm.json's layout: the question's comparisons with fresh seeds


def confirm_file(folder: Path) -> Path:
    """Where tune.confirm keeps its seed statistics."""
    return Path(folder) / "confirm.json"


def read_confirmation(folder: Path) -> tuple[dict[str, Any] | None, str]:
    """confirm.json as tune.confirm writes it, or (None, why it cannot be read: "" when there
    is none)."""
    path = confirm_file(folder)
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError) as err:
        return None, f"{path.name} is unreadable ({err})"
    try:
        if report["version"] != CONFIRM_VERSION:
            raise ValueError(f"version {report['version']!r}, this reader's is "
                             f"{CONFIRM_VERSION}")
        for entry in report["comparisons"]:
            for key in ("comparison", "effect_m", "ci95_m", "p_holm", "outcome", "n_places"):
                entry[key]  # noqa: B018 -- each key this report reads must be there
        report["seeds"], report["test"]
    except (KeyError, TypeError, ValueError) as err:
        return None, (f"{path.name} is not a confirmation this version writes ({type(err).__name__}"
                      f": {err}); run python -m tune.confirm again to replace it")
    return report, ""


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


def ray_trial_statuses(experiment: Path) -> dict[str, str]:
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


def stop_reason(trial: TrialSummary, max_t: int, scheduler: str, told: str = "") -> str:
    """Why a trial ended. `told` is what the journal recorded when it did (the record: a
    row a kill cut from result.json does not make a completed trial an early stop)."""
    diverged = [r for r in trial.rows if r.get("diverged")]
    if diverged:
        return diverged[-1].get("stop_reason", "diverged")
    if trial.status == "ERROR" or told == "error":
        return f"error: {trial.error or 'see error.txt'}"
    if trial.epochs_run >= max_t or told == "completed":
        return "completed"
    if told == "early stop":
        return "ASHA stop" if scheduler == "asha" else "stopped early"
    if trial.status == "TERMINATED":
        return "ASHA stop" if scheduler == "asha" else "stopped early"
    return trial.status.lower() if trial.status != "unknown" else "unknown"


class Experiment:
    """One experiment folder: refuses a folder that is not one, with one line."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser().resolve()
        if not (self.folder / STUDY_FILE).is_file():
            inside = sorted((p for p in self.folder.glob(f"*/{STUDY_FILE}")),
                            key=lambda p: p.stat().st_mtime)
            held = (f"; it holds these experiments, newest last: "
                    f"{', '.join(p.parent.name for p in inside)}" if inside else "")
            raise UsageError(f"{self.folder}: not an experiment folder of tune.run "
                             f"(no {STUDY_FILE}){held}")
        self.spec: StudySpec = load_study(self.folder / STUDY_FILE)

    def trials(self) -> list[TrialSummary]:
        """Every trial with a params.json, best first (lowest best-epoch val RMSE)."""
        statuses = ray_trial_statuses(self.folder)
        told = self._journal_reasons()
        max_t = self.spec.max_t
        trials = []
        for folder in sorted(self.folder.glob("trial_*")):
            try:
                params = json.loads((folder / "params.json").read_text())
            except (OSError, ValueError):  # a trial still starting, or a write the disk cut
                continue
            rows = read_rows(folder / "result.json")
            trial_id = rows[0]["trial_id"] if rows else folder.name.removeprefix("trial_")
            trial = TrialSummary(trial_id=trial_id, folder=folder,
                                 params=params, rows=rows,
                                 status=statuses.get(trial_id, "unknown"),
                                 error=_last_error_line(folder),
                                 fixed_model=self.spec.model)
            trial.stop_reason = stop_reason(trial, max_t, self.spec.scheduler["type"],
                                            told.get(trial_id, ""))
            trials.append(trial)
        return sorted(trials, key=lambda t: (t.best_val_rmse, t.trial_id))

    def _journal_reasons(self) -> dict[str, str]:
        """Ray trial id -> the stop reason the journal recorded; {} without a journal."""
        try:
            trials = self.optuna_study().trials
        except UsageError:
            return {}
        return {t.user_attrs[RAY_ID]: t.user_attrs[STOP] for t in trials
                if RAY_ID in t.user_attrs and STOP in t.user_attrs}

    def baselines_and_top(self, top: int) -> list[TrialSummary]:
        """Every baseline with a result, then the `top` best searched trials: what evaluate
        scores and confirm re-trains."""
        ranked = [t for t in self.trials() if t.best]
        return [t for t in ranked if t.baseline] + [t for t in ranked if not t.baseline][:top]

    def check_unchanged(self) -> None:
        """Refuse to resume after study.yaml was edited: Ray and the journal go on with the
        search as it began, and a changed num_samples had left --resume saying "incomplete"
        for ever."""
        import yaml

        try:
            started = self.optuna_study().user_attrs.get(STUDY_AS_STARTED)
        except UsageError:
            return  # no study yet: nothing began
        if started is None:
            return
        # as values: the header comment names the file it was resolved from, which moves
        before, now = yaml.safe_load(started), yaml.safe_load(self.spec.to_yaml())
        if before == now:
            return
        changed = ", ".join(f"{k}: {short(before.get(k))} -> {short(now.get(k))}"
                            for k in dict.fromkeys([*before, *now]) if before.get(k) != now.get(k))
        raise UsageError(f"{self.folder / STUDY_FILE}: edited since the search began "
                         f"({changed}); "
                         "a resume continues the search as it began: restore the file, or "
                         "start a new search with python -m tune.run --space")

    def optuna_study(self):
        import optuna

        journal = self.folder / JOURNAL_FILE
        if not journal.is_file():
            raise UsageError(f"{self.folder}: no Optuna journal ({JOURNAL_FILE}); the search "
                             "never started")
        try:
            return optuna.load_study(study_name=self.spec.name,
                                     storage=journal_storage(self.folder))
        except (ValueError, KeyError) as err:  # a record cut or edited in the middle
            raise UsageError(f"{journal}: the Optuna journal is unreadable ({err}); only a "
                             "record cut at its end can be repaired (tune.run --resume drops "
                             "it)") from None
