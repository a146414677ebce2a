"""The Ray Tune function trainable around baseres.trainer.Trainer, and the searcher wrapper that
carries a baseline's non-searched keys (e.g. ``lambda_recon_init``) into its trial."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import ray
from ray.tune import Checkpoint, get_checkpoint, get_context
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import Searcher

from baseres.config import TrainConfig
from baseres.hooks import (
    CHECKPOINT_FILE,
    ConfigFile,
    ConsoleLine,
    Hook,
    MetricsFile,
    TensorBoard,
)
from baseres.trainer import Trainer, TrainingDiverged
from tune.space import BASELINE_KEY, StudySpec


def trial_resources() -> tuple[int, float]:
    """CPUs and GPUs Ray assigned to this trial (threads follow the CPUs: no oversubscription)."""
    assigned = ray.get_runtime_context().get_assigned_resources()
    return max(1, int(assigned.get("CPU", 1))), float(assigned.get("GPU", 0))


class RayReport(Hook):
    """Each epoch's record to Ray Tune, with a checkpoint Ray keeps (and retries from)."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        with tempfile.TemporaryDirectory() as folder:
            trainer.save_checkpoint(Path(folder) / CHECKPOINT_FILE)
            ray.tune.report(record, checkpoint=Checkpoint.from_directory(folder))


def train_trial(config: dict[str, Any], fixed: dict[str, Any]) -> None:
    """One trial: fixed study values + this trial's sample, reported to Tune once per epoch."""
    trial_dir = Path(get_context().get_trial_dir())
    cpus, gpus = trial_resources()
    sample = {k: v for k, v in config.items() if k != BASELINE_KEY}
    cfg = TrainConfig.from_dict({**fixed, **sample}, source="trial config")
    cfg = cfg.replace(num_threads=cpus, device="cuda" if gpus > 0 else "cpu", progress=False,
                      out_dir=str(trial_dir), extra={**cfg.extra, "trial": trial_dir.name,
                                                     "baseline": config.get(BASELINE_KEY)})
    # Ray's logger writes the scalars and Ray keeps the checkpoints (RayReport).
    hooks = [ConsoleLine(), ConfigFile(trial_dir), MetricsFile(trial_dir),
             TensorBoard(trial_dir, scalars=False), RayReport()]
    trainer = Trainer(cfg, trial_dir, hooks=hooks)
    checkpoint = get_checkpoint()
    if checkpoint is not None:  # a retry after a failure, or a resumed search
        with checkpoint.as_directory() as folder:
            trainer.load_checkpoint(Path(folder) / CHECKPOINT_FILE)

    try:
        trainer.fit(progress=False)
    except TrainingDiverged as err:
        # NaN reaches Optuna as a failed trial and is never chosen as best; the search goes on.
        last = trainer.history[-1] if trainer.history else {}
        ray.tune.report({**last, "val_rmse": math.nan, "diverged": 1.0,
                         "stop_reason": f"diverged: {err}"})


class BaselineSearcher(Searcher):
    """Wraps OptunaSearch so that the baselines it serves first (in the study's order) reach
    their trials with their non-searched keys and their name, so that a baseline of another
    model (the plain U-Net) never becomes a point of the searched space, and so that a
    diverged trial reaches Optuna as FAIL.

    Optuna's enqueue carries only searched parameters, so ``lambda_recon_init`` would
    otherwise be lost. A U-Net trial's value on the divisor axis would mislead TPE, so it runs
    outside Optuna and is added to the journal afterwards, without parameters, labelled.
    """

    def __init__(self, searcher: Searcher, baselines: list[tuple[str, dict[str, Any], bool]],
                 model: str = "base_residual"):
        self.searcher = searcher
        self.model = model  # named in every trial's config, so TensorBoard's HParams show it
        # (name, extra keys, whether it is a point of the searched space) not yet handed out
        self.pending = list(baselines)
        self.outside: dict[str, dict[str, Any]] = {}  # Ray trial id -> label, values so far
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str):
        if self.pending and not self.pending[0][2]:
            name, extra, _ = self.pending.pop(0)
            self.outside[trial_id] = {"baseline": name, "model": extra.get("model"),
                                      "values": []}
            return {**extra, BASELINE_KEY: name}
        suggestion = self.searcher.suggest(trial_id)
        if not isinstance(suggestion, dict):
            return suggestion
        suggestion = {"model": self.model, **suggestion}
        attrs = {"ray_trial_id": trial_id, "model": self.model}
        if self.pending:
            name, extra, _ = self.pending.pop(0)
            suggestion = {**suggestion, **extra, BASELINE_KEY: name}
            attrs.update(baseline=name, model=suggestion["model"])
        # OptunaSearch keeps its Optuna trials by Ray trial id; it offers no other handle.
        optuna_trial = self.searcher._ot_trials[trial_id]
        for key, value in attrs.items():
            optuna_trial.set_user_attr(key, value)
        return suggestion

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.outside:
            self.outside[trial_id]["values"].append(result.get(self.metric))
            return
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            self.searcher.on_trial_result(trial_id, result)
        except UpdateFinishedTrialError:
            # After a resume Ray's saved searcher state (seconds old) can re-run a trial that
            # the journal had already finished: the journal is right, and keeps its value.
            pass

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        value = (result or {}).get(self.metric)
        if isinstance(value, float) and not math.isfinite(value):
            # A diverged trial: Optuna refuses to tell a NaN as COMPLETE and would leave the
            # trial RUNNING in the journal; it is a failure, so say so.
            result, value, error = None, None, True
        if trial_id in self.outside:
            self._add_outside_trial(trial_id, value, error)
            return
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def _add_outside_trial(self, trial_id: str, value: float | None, error: bool) -> None:
        import optuna

        info = self.outside.pop(trial_id)
        values = [v for v in info["values"] if isinstance(v, float) and math.isfinite(v)]
        state = (optuna.trial.TrialState.FAIL if error or value is None
                 else optuna.trial.TrialState.COMPLETE)
        trial = optuna.trial.create_trial(
            state=state, value=None if state == optuna.trial.TrialState.FAIL else value,
            params={}, distributions={}, intermediate_values=dict(enumerate(values, 1)),
            user_attrs={"ray_trial_id": trial_id, "baseline": info["baseline"],
                        "model": info["model"]})
        self.searcher._ot_study.add_trial(trial)

    # Ray saves a wrapper's state with get_state and the wrapped OptunaSearch on its own.
    def get_state(self) -> dict:
        return {"pending": list(self.pending), "outside": dict(self.outside)}

    def set_state(self, state: dict) -> None:
        self.pending = [tuple(p) for p in state["pending"]]
        self.outside = dict(state.get("outside", {}))

    @property
    def metric(self):
        return self.searcher.metric

    @property
    def mode(self):
        return self.searcher.mode


def trial_dirname(trial) -> str:
    """Short trial folder names (Ray's default spells out every parameter)."""
    return f"trial_{trial.trial_id}"


class BaselinesRunFull(ASHAScheduler):
    """ASHA that never stops a baseline before max_t.

    ASHA lets whatever reaches a rung first go on and compares later trials with it; a
    baseline stopped at epoch 2 in one run and trained for 12 in the next (both seen with the
    same study) is no reference point. A baseline's results still enter the rungs, so the
    searched trials are judged against it as before.
    """

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        if (decision == TrialScheduler.STOP and trial.config.get(BASELINE_KEY)
                and result.get(self._time_attr, 0) < self._max_t):
            return TrialScheduler.CONTINUE
        return decision


def build_trainable(spec: StudySpec, fixed: dict[str, Any], function=train_trial):
    """`function(config, fixed)` (a search trial, or tune.confirm's) with the study's
    resources per trial."""
    from ray.tune import with_parameters, with_resources

    resources = {"cpu": spec.resources["cpu"], "gpu": spec.resources.get("gpu", 0)}
    return with_resources(with_parameters(function, fixed=fixed), resources)
