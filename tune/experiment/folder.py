"""The experiment folder of ``tune.run``: its layout, its study, its Optuna journal and its
trials, read back by summary, export, dashboard and evaluate.

Layout: ``study.yaml`` (the resolved study), ``optuna-journal.log`` (the Optuna study), Ray's
state (``tuner.pkl``, ``experiment_state-*.json``) and one ``trial_<id>/`` folder per trial
(``params.json``, ``result.json`` with one row per epoch, checkpoints, TensorBoard events).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tune.errors import UsageError
from tune.experiment.ends import TrialEnd
from tune.experiment.journal import (
    JOURNAL_FILE,
    RAY_ID,
    STUDY_AS_STARTED,
    journal_storage,
    recorded_end,
)
from tune.experiment.location import STUDY_FILE
from tune.experiment.trials import TrialRecord, ray_trial_statuses, read_trial
from tune.study import StudySpec, load_study


def short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def keys_apart(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The keys whose values differ between two mappings (a key one lacks counts), in order."""
    return [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]


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

    def trials(self) -> list[TrialRecord]:
        """Every trial with a params.json, best first (lowest best-epoch val RMSE)."""
        statuses = ray_trial_statuses(self.folder)
        told = self._journal_ends()
        asha = self.spec.scheduler is not None
        trials = []
        for folder in sorted(self.folder.glob("trial_*")):
            trial = read_trial(folder, statuses, self.spec.model)
            if trial is None:
                continue
            trial.end, trial.end_text = trial.how_it_ended(self.spec.max_t, asha,
                                                           told.get(trial.trial_id))
            trials.append(trial)
        return sorted(trials, key=lambda t: (t.best_val_rmse, t.trial_id))

    def _journal_ends(self) -> dict[str, TrialEnd]:
        """Ray trial id -> the end the journal recorded; {} without a journal."""
        try:
            trials = self.optuna_study().trials
        except UsageError:
            return {}
        return {t.user_attrs[RAY_ID]: recorded_end(t) for t in trials
                if RAY_ID in t.user_attrs and recorded_end(t) is not None}

    def check_unchanged(self) -> None:
        """Refuse to resume after study.yaml was edited: Ray and the journal go on with the
        search as it began, which the edited file no longer describes (a changed num_samples
        would never be met)."""
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
