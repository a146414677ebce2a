"""An experiment's Optuna journal: its file, its storage, the user attributes tune keeps on its
trials (optuna-dashboard shows them), and the repair of the append-only files a kill cut."""

from __future__ import annotations

import os
from pathlib import Path

from tune.experiment.ends import REASON, TrialEnd

JOURNAL_FILE = "optuna-journal.log"

# User attributes of every trial in the journal (and BASELINE_KEY: the baseline it runs).
RAY_ID, MODEL = "ray_trial_id", "model"
END = "stop"  # a TrialEnd's value; REASON beside it: the end in words (with the error)
LOST = "lost"  # True on a trial the journal started and Ray never saved (read by tune.budget)
BEST = "best_metrics"  # the target metrics of the trial's best epoch (with constraints on)
STUDY_AS_STARTED = "study_yaml"  # the study's user attribute: the resolved study at the start


def journal_storage(folder: Path):
    """The Optuna storage of an experiment: a journal file that several processes may share."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(Path(folder) / JOURNAL_FILE)))


def record_end(trial, end: TrialEnd, reason: str = "") -> None:
    """Write how a trial ended on its journal trial (an ``optuna.trial.Trial``)."""
    if end is TrialEnd.LOST:
        trial.set_user_attr(LOST, True)
    trial.set_user_attr(END, end.value)
    trial.set_user_attr(REASON, end.journal_text(reason))


def recorded_end(frozen) -> TrialEnd | None:
    """How the journal says a trial (an ``optuna.trial.FrozenTrial``) ended; None before."""
    value = frozen.user_attrs.get(END)
    return None if value is None else TrialEnd(value)


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
