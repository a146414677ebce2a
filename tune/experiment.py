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
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlparse

from baseres.cli import command_line
from baseres.config import one_line
from tune.errors import UsageError
from tune.study import BASELINE_KEY, StudySpec, load_study

STUDY_FILE = "study.yaml"
JOURNAL_FILE = "optuna-journal.log"
LOCK_FILE = "driver.lock"
# User attributes of every trial in the journal (optuna-dashboard shows them).
RAY_ID, BASELINE, MODEL = "ray_trial_id", "baseline", "model"
STOP, STOP_TEXT = "stop", "stop_reason"  # a Stop's value; the reason in words (with the error)
LOST = "lost"  # a trial the journal started and Ray never saved (the driver was killed)
BEST = "best_metrics"  # the target metrics of the trial's best epoch (with constraints on)
STUDY_AS_STARTED = "study_yaml"  # the study's user attribute: the resolved study at the start

MIN_FREE_BYTES = 200 * 2**20  # below this a search cannot write a few checkpoints

_held: Path | None = None  # the experiment folder this process drives, while it does


# ------------------------------------------------------------------------ where it lives
def is_uri(storage: str) -> bool:
    return "://" in storage


def local_path(location: str) -> Path | None:
    """A plain path, or the path of a file:// URI (e.g. an NFS mount every node shares) as
    Ray's filesystem (pyarrow) reads it, percent-escapes decoded, so that both write one
    folder; None for remote storage such as s3://. A URI pyarrow cannot parse is refused."""
    if not is_uri(location):
        return Path(location)
    if urlparse(location).scheme != "file":
        return None
    from pyarrow.fs import FileSystem

    try:
        return Path(FileSystem.from_uri(location)[1])
    except ValueError as err:  # pyarrow's ArrowInvalid, before Ray would fail on it
        raise UsageError(one_line(
            f"{location}: Ray's filesystem (pyarrow) cannot read this file:// URI ({err}); "
            "percent-encode its path (a space as %20) or give a plain path")) from None


@dataclass(frozen=True)
class Location:
    """Where an experiment lives: <storage>/<name>, under a local folder or a URI (s3://,
    file:// on a shared mount), and the local folder that holds its study.yaml and Optuna
    journal (a journal needs a local file)."""

    storage: str  # an absolute local path or a URI (Ray refuses relative paths)
    name: str

    @classmethod
    def of(cls, experiment: str) -> Location:
        """The location of an experiment given as one path or URI (--resume's)."""
        if not is_uri(experiment):
            experiment = str(Path(experiment).expanduser().resolve())
        storage, _, name = experiment.rstrip("/").rpartition("/")
        return cls(storage or "/", name)  # "/" itself: no name, and so no experiment

    @property
    def uri(self) -> str:
        return f"{self.storage.rstrip('/')}/{self.name}"

    @property
    def local(self) -> Path | None:
        """The folder itself where this machine reaches it; None on remote storage."""
        return local_path(self.uri)

    @property
    def state_folder(self) -> Path:
        """Where study.yaml and the journal live: the folder itself when this machine reaches
        it, else ./results/<name>."""
        local = self.local
        return (local if local is not None else Path("results", self.name)).resolve()

    def child(self, name: str) -> Location:
        """A run inside this experiment (the question's, the confirmation's)."""
        return Location(self.uri, name)

    def __str__(self) -> str:
        return self.uri


def resolve_storage(storage: str) -> str:
    """Absolute local path or URI (Ray refuses relative paths: trials run in their own dirs)."""
    if is_uri(storage):
        return storage
    return str(Path(storage).expanduser().resolve())


def free_name(storage: str, name: str) -> str:
    """`name`, or name-2, name-3 ... when a search already lives there (nothing is overwritten)."""
    local = local_path(storage)
    if local is None:
        return name
    candidate, number = name, 1
    while (local / candidate).exists():
        number += 1
        candidate = f"{name}-{number}"
    return candidate


def check_writable(folder: Path) -> None:
    """Fail before any trial starts when results could not be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"x" * 4096)
        probe.unlink()
    except OSError as err:
        raise UsageError(f"--storage {folder}: cannot write there: {err.strerror}") from None
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise UsageError(f"--storage {folder}: at least {MIN_FREE_BYTES // 2**20} MiB free space "
                         f"is needed, but {free // 2**20} MiB is left")


def new_location(storage: str, name: str, chosen: bool) -> Location:
    """Create the experiment folder, exclusively: two searches started at once never share
    one. A name the user chose must be free; the study's name becomes name-2, -3 ..."""
    storage = resolve_storage(storage)
    local = local_path(storage)
    if local is None:
        return Location(storage, name)
    check_writable(local)
    candidate = name if chosen else free_name(storage, name)
    while True:
        try:
            (local / candidate).mkdir()
            return Location(storage, candidate)
        except FileExistsError:
            if chosen and not (local / name / STUDY_FILE).is_file():
                raise UsageError(f"--name {name}: {local / name} already exists and holds no "
                                 f"search to resume (no {STUDY_FILE}); choose another "
                                 "--name") from None
            if chosen:
                raise UsageError(f"--name {name}: {local / name} already exists; finish its "
                                 f"search with {command_line('--resume', local / name)}, or "
                                 "choose another --name") from None
            candidate = free_name(storage, name)


def placed_line(location: Location, name: str) -> str:
    """Where a new experiment goes, said first; when `name` (the study's, no --name given)
    was taken (by make run's link to its newest experiment, or an earlier search), by what."""
    line = f"experiment: {location}"
    taken = local_path(location.storage)
    if location.name == name or taken is None:
        return line
    taken /= name
    what = (f"a link to {os.readlink(taken)}" if taken.is_symlink()
            else "an earlier experiment")
    # two lines: the path alone may take most of a console's width
    return (f"{line}\n  (the study is named {name!r}; {taken} is taken: {what}; --name "
            "chooses another)")


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
    """A measured number: an int or float, not inf or NaN. A bool is no measurement (True
    would pass as 1), nor is None or text (a record's missing or failed value)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)


def journal_storage(folder: Path):
    """The Optuna storage of an experiment: a journal file that several processes may share."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(Path(folder) / JOURNAL_FILE)))


class Stop(str, Enum):
    """Why a trial ended, or that it has not: the journal records one of these per trial."""

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
        return self in (Stop.DIVERGED, Stop.ERROR)


class Stopped(NamedTuple):
    kind: Stop
    text: str  # as reports show it: the scheduler's name for an early stop, the error


def keys_apart(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The keys whose values differ between two mappings (a key one lacks counts), in order."""
    return [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]


@dataclass
class TrialSummary:
    trial_id: str
    folder: Path
    params: dict[str, Any]
    rows: list[dict[str, Any]]
    status: str  # Ray's: TERMINATED, ERROR, RUNNING, PENDING, PAUSED, or unknown
    error: str = ""
    fixed_model: str = "base_residual"  # the study's model where a trial does not set one
    stop: Stop = Stop.UNKNOWN
    stop_reason: str = ""  # the stop in words (Stopped.text)
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


def stopped(trial: TrialSummary, max_t: int, asha: bool, told: Stop | None = None) -> Stopped:
    """Why a trial ended. `told` is what the journal recorded when it did (the record: a
    row a kill cut from result.json does not make a completed trial an early stop)."""
    diverged = [r for r in trial.rows if r.get("diverged")]
    if diverged:
        return Stopped(Stop.DIVERGED, diverged[-1].get(STOP_TEXT, Stop.DIVERGED.value))
    if trial.status == "ERROR" or told is Stop.ERROR:
        return Stopped(Stop.ERROR, f"error: {trial.error or 'see error.txt'}")
    if trial.epochs_run >= max_t or told is Stop.COMPLETED:
        return Stopped(Stop.COMPLETED, Stop.COMPLETED.value)
    if told is Stop.EARLY or trial.status == "TERMINATED":
        return Stopped(Stop.EARLY, "ASHA stop" if asha else "stopped early")
    kind = {s.name: s for s in Stop}.get(trial.status, Stop.UNKNOWN)  # Ray's RUNNING, ...
    return Stopped(kind, kind.value)


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
        self._study = None  # the journal's study, loaded once (its trials stay current)

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
            trial.stop, trial.stop_reason = stopped(trial, max_t, self.spec.scheduler is not None,
                                                    told.get(trial_id))
            trials.append(trial)
        return sorted(trials, key=lambda t: (t.best_val_rmse, t.trial_id))

    def _journal_reasons(self) -> dict[str, Stop]:
        """Ray trial id -> the stop the journal recorded; {} without a journal."""
        try:
            trials = self.optuna_study().trials
        except UsageError:
            return {}
        return {t.user_attrs[RAY_ID]: Stop(t.user_attrs[STOP]) for t in trials
                if RAY_ID in t.user_attrs and STOP in t.user_attrs}

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
                            for k in keys_apart(before, now))
        raise UsageError(f"{self.folder / STUDY_FILE}: edited since the search began "
                         f"({changed}); "
                         "a resume continues the search as it began: restore the file, or "
                         "start a new search with python -m tune.run --space")

    def optuna_study(self):
        """The Optuna study of the journal; a report reads it several times, loads it once."""
        import optuna

        if self._study is not None:
            return self._study
        journal = self.folder / JOURNAL_FILE
        if not journal.is_file():
            raise UsageError(f"{self.folder}: no Optuna journal ({JOURNAL_FILE}); the search "
                             "never started")
        try:
            self._study = optuna.load_study(study_name=self.spec.name,
                                            storage=journal_storage(self.folder))
            return self._study
        except (ValueError, KeyError) as err:  # a record cut or edited in the middle
            raise UsageError(f"{journal}: the Optuna journal is unreadable ({err}); only a "
                             "record cut at its end can be repaired (tune.run --resume drops "
                             "it)") from None
