"""The search policy objects the driver hands to Ray Tune, kept on the experiment's Optuna
journal: StudySearcher (Optuna's ask and tell, inside Ray's trial factory StudySearchGenerator)
and BaselinesRunFull (ASHA).

The journal is the one record of the search. Ray saves its own state every few seconds and
restores it on ``--resume``; anything both keep would disagree after a kill, so none of these
keeps what the journal holds, and each reopens the journal of the folder this driver holds
(handed to it, ``experiment.HoldsFolder``), never a path saved in Ray's state (a moved
experiment must not write into the original's journal or folder).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher, SearchGenerator

from tune.budget import Clock, exhausted, spent
from tune.experiment import (
    BEST,
    JOURNAL_FILE,
    LOST,
    MODEL,
    RAY_ID,
    REASON,
    STUDY_AS_STARTED,
    HoldsFolder,
    TrialEnd,
    diverged,
    journal_storage,
    ray_trial_statuses,
    record_end,
    trial_end,
)
from tune.numbers import finite
from tune.private_api import (
    asha_max_t,
    asha_record,
    asha_time_attr,
    generator_experiment,
    storage_id,
    storage_placed,
)
from tune.study import BASELINE_KEY, Relative, StudySpec


def make_sampler(spec: StudySpec, seen: int = 0):
    """The study's sampler. A resumed search draws from seed + trials seen, so its random
    proposals are not the ones the first run already tried."""
    import optuna

    sampler = spec.sampler
    seed = sampler.seed + seen
    if sampler.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler.type == "qmc":
        return optuna.samplers.QMCSampler(seed=seed)
    with warnings.catch_warnings():  # multivariate and constant_liar are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # TPE reads a trial's constraints (Trial.set_constraint) wherever a study has them.
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=sampler.n_startup_trials,
                                          multivariate=sampler.multivariate,
                                          constant_liar=sampler.constant_liar)


def note_for_dashboard(trial, text: str) -> None:
    """optuna-dashboard numbers trials 0, 1, ...; everything else names them by Ray id or
    baseline: its note for the trial says both, when optuna-dashboard is installed."""
    try:
        from optuna_dashboard import save_note
    except ImportError:
        return
    save_note(trial, text)


def create_study(spec: StudySpec, folder: Path) -> None:
    """A new experiment's Optuna study in the experiment `folder`: the objective named after
    the metric, and the baselines enqueued in the study's order, each under its name."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its "A new study created" line
    study = optuna.create_study(storage=journal_storage(folder), study_name=spec.name,
                                direction="minimize")  # StudySpec.mode
    with warnings.catch_warnings():  # experimental since Optuna 3.2, stable in use
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([spec.metric])
    study.set_user_attr(STUDY_AS_STARTED, spec.to_yaml())  # a resume checks study.yaml against it
    for name in spec.baselines:
        enqueue_baseline(study, spec, name)


def enqueue_baseline(study, spec: StudySpec, name: str) -> None:
    point = spec.baselines[name]
    in_space = {k: v for k, v in point.items() if k in spec.space}
    # A baseline of another model (the U-Net) sets none of the searched keys: it is no point
    # of the searched space and gets no parameters, or TPE would learn from it.
    study.enqueue_trial(in_space, user_attrs={BASELINE_KEY: name,
                                              MODEL: point.get("model", spec.model)})


class StudySearcher(HoldsFolder, Searcher):
    """Ray Tune's searcher for a study: Optuna's ask and tell on the experiment's journal.

    Ray's OptunaSearch is not used because it pickles the study, with the journal's absolute
    path, into Ray's state (a moved experiment wrote into the original's journal); keeps
    which baseline comes next in state seconds older than the journal (after a kill a TPE
    sample ran as ``seed_after``); stores early-stopped trials COMPLETE; and cannot run a
    baseline outside the searched space. Here the baselines wait in the journal's queue under
    their names, an early-stopped trial is PRUNED with every epoch's value, and on resume
    every trial the journal holds as running but Ray never saved is closed as FAIL (``lost``),
    a lost baseline queued again.
    """

    def __init__(self, spec: StudySpec, folder: Path):
        super().__init__(metric=spec.metric, mode=spec.mode)
        self.hold(folder)
        self.spec = spec
        self.live: dict[str, int] = {}  # Ray trial id -> Optuna trial number, trials Ray knows
        self._study = None
        self._handles: dict[str, Any] = {}  # Ray trial id -> optuna.Trial, to report to
        self.clock = Clock()

    @property
    def study(self):
        if self._study is None:
            import optuna

            study = optuna.load_study(study_name=self.spec.name,
                                      storage=journal_storage(self.folder))
            study.sampler = make_sampler(self.spec, len(study.get_trials(deepcopy=False)))
            self._study = study
        return self._study

    def suggest(self, trial_id: str) -> dict[str, Any]:
        import optuna

        waiting = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        name = waiting[0].user_attrs.get(BASELINE_KEY) if waiting else None
        self.clock.start()
        if name is None and exhausted(self.spec, spent(self.study, LOST)):
            return Searcher.FINISHED  # the trials still running finish; no new one starts
        outside = name is not None and not any(k in self.spec.space
                                               for k in self.spec.baselines[name])
        trial = self.study.ask() if outside else self.study.ask(dict(self.spec.space))
        self.live[trial_id] = trial.number
        self._handles[trial_id] = trial
        trial.set_user_attr(RAY_ID, trial_id)
        note_for_dashboard(trial, f"{name} (baseline), Ray trial {trial_id}" if name
                           else f"Ray trial {trial_id}")
        if name is None:
            trial.set_user_attr(MODEL, self.spec.model)
            return {"model": self.spec.model, **trial.params}
        return {**trial.params, **self.spec.baselines[name], BASELINE_KEY: name}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.clock.record(self.study)
        value, step = result.get(self.metric), result.get("training_iteration")
        if trial_id not in self.live or not finite(value) or step is None:
            return
        frozen = self._frozen(trial_id)
        # A trial resumed after the journal closed it, or an epoch run again from an older
        # checkpoint: the journal keeps what it was told first.
        if frozen.state.is_finished() or step in frozen.intermediate_values:
            return
        earlier = [v for v in frozen.intermediate_values.values() if finite(v)]
        self._trial(trial_id).report(value, step)
        if self.spec.sampler.constraints and (not earlier or value < min(earlier)):
            # The best epoch's target metrics, which the constraints judge as the summary does.
            self._trial(trial_id).set_user_attr(BEST, {
                m: result[m] for m in self.spec.targets["minimum"] if finite(result.get(m))})

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        import optuna

        if trial_id not in self.live or self._frozen(trial_id).state.is_finished():
            return
        number = self.live[trial_id]
        result = result or {}
        # Ray hands a trial's last result to on_trial_complete alone, not to on_trial_result.
        self.on_trial_result(trial_id, result)
        frozen = self._frozen(trial_id)  # with that epoch and the best epoch's metrics
        values = [v for v in frozen.intermediate_values.values() if finite(v)]
        end = trial_end(diverged=diverged(result), error=error, measured=bool(values),
                        epochs=result.get("training_iteration", 0), max_t=self.spec.max_t)
        states = optuna.trial.TrialState
        state = {TrialEnd.COMPLETED: states.COMPLETE, TrialEnd.EARLY: states.PRUNED}.get(
            end, states.FAIL)
        # The best epoch's value, as the summary ranks and tune.evaluate scores trials.
        value = min(values) if end is TrialEnd.COMPLETED else None
        record_end(self._trial(trial_id), end, result.get(REASON, ""))
        if self.spec.sampler.constraints and state != optuna.trial.TrialState.FAIL:
            attrs = frozen.user_attrs
            for name, violation in self.violations(attrs.get(BEST, {}),
                                                   attrs.get(BASELINE_KEY)).items():
                self._trial(trial_id).set_constraint(name, violation)
        self.study.tell(number, value, state=state)
        del self.live[trial_id], self._handles[trial_id]

    def violations(self, best: dict[str, float], baseline: str | None = None
                   ) -> dict[str, float]:
        """How far a trial's best epoch misses each minimum target bound (<= 0: met), named
        after the bound (optuna-dashboard shows the names). A bound relative to a baseline
        counts as met until that baseline has finished, and so does a metric the trial has no
        value of."""
        import optuna

        finished = {t.user_attrs.get(BASELINE_KEY): t.user_attrs.get(BEST, {}) for t in
                    self.study.get_trials(deepcopy=False,
                                          states=(optuna.trial.TrialState.COMPLETE,))}
        if baseline is not None:  # a baseline finishing now is judged against itself too
            finished[baseline] = best
        out = {}
        for metric, bounds in self.spec.targets["minimum"].items():
            value = best.get(metric)
            for sign, relation, bound in zip((-1.0, 1.0), (">=", "<="), bounds):
                if bound is None:
                    continue
                name = f"{metric} {relation} {bound}"
                if isinstance(bound, Relative):
                    bound = bound.resolve(finished, metric)
                out[name] = 0.0 if bound is None or value is None else sign * (value - bound)
        return out

    def _frozen(self, trial_id: str):
        return self.study.get_trials(deepcopy=False)[self.live[trial_id]]

    def _trial(self, trial_id: str):
        if trial_id not in self._handles:  # a trial Ray resumed
            import optuna

            self._handles[trial_id] = optuna.trial.Trial(self.study,
                                                         storage_id(self._frozen(trial_id)))
        return self._handles[trial_id]

    # Ray saves the searcher beside its trial list and restores it only where that file
    # exists, which a kill while Ray copies its state can cut (docs/failure-modes.md): what it
    # would hold (which journal trials Ray knows) is read back from the journal and Ray's
    # trial list instead.
    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_bytes(b"")

    def restore(self, checkpoint_path: str) -> None:
        import optuna

        known = ray_trial_statuses(Path(checkpoint_path).parent)
        self._study, self._handles = None, {}
        running = self.study.get_trials(deepcopy=False,
                                        states=(optuna.trial.TrialState.RUNNING,))
        self.live = {t.user_attrs[RAY_ID]: t.number for t in running
                     if t.user_attrs.get(RAY_ID) in known}
        self.close_lost_trials()

    def close_lost_trials(self) -> list[int]:
        """Trials the journal started after Ray's last save: Ray will not run them, so they
        are closed as FAIL, and a baseline among them waits in the queue again."""
        import optuna

        known = set(self.live.values())
        lost = [t for t in self.study.get_trials(deepcopy=False,
                                                  states=(optuna.trial.TrialState.RUNNING,))
                if t.number not in known]
        for trial in lost:
            record_end(optuna.trial.Trial(self.study, storage_id(trial)), TrialEnd.LOST)
            self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            if trial.user_attrs.get(BASELINE_KEY):
                enqueue_baseline(self.study, self.spec, trial.user_attrs[BASELINE_KEY])
        return [t.number for t in lost]

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "_study": None, "_handles": {}}  # reopened, never pickled


class StudySearchGenerator(HoldsFolder, SearchGenerator):
    """Ray's trial factory around the StudySearcher, at most the study's
    max_concurrent_trials at once (Ray's ConcurrencyLimiter, which Ray adds itself only around
    a bare searcher).

    Ray saves the experiment it creates trials for, the folder it started in included, and a
    restored generator went on creating trials there: resumed from a copy or a new place, a
    search wrote its new trials into the original folder. A restored generator here creates
    them in the folder this driver holds.
    """

    def __init__(self, spec: StudySpec, folder: Path):
        self.study_searcher = StudySearcher(spec, folder)
        super().__init__(ConcurrencyLimiter(self.study_searcher,
                                            max_concurrent=spec.max_concurrent_trials))
        self.hold(folder)

    def hold(self, folder: Path) -> None:
        super().hold(folder)
        self.study_searcher.hold(folder)

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        experiment = generator_experiment(self)
        experiment.spec["storage"] = storage_placed(experiment.spec["storage"], self.folder)


class BaselinesRunFull(HoldsFolder, ASHAScheduler):
    """ASHA that never stops a baseline before max_t, and that remembers across a resume.

    ASHA lets whatever reaches a rung first go on and compares later trials with it; a
    baseline stopped at epoch 2 in one run and trained for 12 in the next (both seen with the
    same study) is no reference point. A baseline's results still enter the rungs.

    Ray does not save a scheduler's state: after a resume its rungs were empty and trials it
    would have stopped ran to max_t. The rungs are rebuilt from the journal, where every
    trial's every epoch is (the searcher reports each), before the first decision.
    """

    def __init__(self, study_name: str, folder: Path | None = None, **kwargs):
        """`folder`: the experiment folder its driver holds, or handed later (``hold``)."""
        super().__init__(**kwargs)
        if folder is not None:
            self.hold(folder)
        self.study_name = study_name
        self._replayed = False

    def on_trial_add(self, tune_controller, trial) -> None:
        super().on_trial_add(tune_controller, trial)
        self._replay_journal()

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        self._replay_journal()
        decision = super().on_trial_result(tune_controller, trial, result)
        if (decision == TrialScheduler.STOP and trial.config.get(BASELINE_KEY)
                and result.get(asha_time_attr(self), 0) < asha_max_t(self)):
            return TrialScheduler.CONTINUE
        return decision

    def _replay_journal(self) -> None:
        if self._replayed:
            return
        self._replayed = True
        import optuna

        if not (self.folder / JOURNAL_FILE).is_file():
            return
        study = optuna.load_study(study_name=self.study_name,
                                  storage=journal_storage(self.folder))
        for frozen in study.get_trials(deepcopy=False):
            trial_id = frozen.user_attrs.get(RAY_ID, f"#{frozen.number}")
            for step, value in sorted(frozen.intermediate_values.items()):
                asha_record(self, trial_id, step, value)

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "_replayed": False}
