"""The Ray Tune function trainable around baseres.train.Trainer, and the searcher wrapper that
carries a baseline's non-searched keys (e.g. ``model: unet``) into its trial."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import ray
from ray.tune import Checkpoint, get_checkpoint, get_context
from ray.tune.search import Searcher

from baseres.config import TrainConfig
from baseres.train import CHECKPOINT_FILE, Trainer, TrainingDiverged
from tune.space import BASELINE_KEY


def trial_resources() -> tuple[int, float]:
    """CPUs and GPUs Ray assigned to this trial (threads follow the CPUs: no oversubscription)."""
    assigned = ray.get_runtime_context().get_assigned_resources()
    return max(1, int(assigned.get("CPU", 1))), float(assigned.get("GPU", 0))


def train_trial(config: dict[str, Any], fixed: dict[str, Any]) -> None:
    """One trial: fixed study values + this trial's sample, reported to Tune once per epoch."""
    trial_dir = Path(get_context().get_trial_dir())
    cpus, gpus = trial_resources()
    sample = {k: v for k, v in config.items() if k != BASELINE_KEY}
    cfg = TrainConfig.from_dict({**fixed, **sample}, source="trial config")
    cfg = cfg.replace(num_threads=cpus, device="cuda" if gpus > 0 else "cpu", progress=False,
                      out_dir=str(trial_dir), extra={**cfg.extra, "trial": trial_dir.name,
                                                     "baseline": config.get(BASELINE_KEY)})
    trainer = Trainer(cfg, trial_dir, log_scalars=False, save_checkpoints=False)
    checkpoint = get_checkpoint()
    if checkpoint is not None:  # a retry after a failure, or a resumed search
        with checkpoint.as_directory() as folder:
            trainer.load_checkpoint(Path(folder) / CHECKPOINT_FILE)

    def report(record: dict[str, float]) -> None:
        with tempfile.TemporaryDirectory() as folder:
            trainer.save_checkpoint(Path(folder) / CHECKPOINT_FILE)
            ray.tune.report(record, checkpoint=Checkpoint.from_directory(folder))

    try:
        trainer.fit(on_epoch_end=report, progress=False)
    except TrainingDiverged as err:
        # NaN reaches Optuna as a failed trial and is never chosen as best; the search goes on.
        last = trainer.history[-1] if trainer.history else {}
        ray.tune.report({**last, "val_rmse": math.nan, "diverged": 1.0,
                         "stop_reason": f"diverged: {err}"})


class BaselineSearcher(Searcher):
    """Wraps OptunaSearch so that the baselines it serves first (its points_to_evaluate, in
    order) reach their trials with their non-searched keys and their name, and so that a
    diverged trial reaches Optuna as FAIL.

    Optuna's enqueue carries only searched parameters, so ``model: unet`` would otherwise be lost.
    """

    def __init__(self, searcher: Searcher, baselines: list[tuple[str, dict[str, Any]]]):
        self.searcher = searcher
        self.pending = list(baselines)  # (name, extra keys) not yet handed out
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str):
        suggestion = self.searcher.suggest(trial_id)
        if isinstance(suggestion, dict) and self.pending:
            name, extra = self.pending.pop(0)
            suggestion = {**suggestion, **extra, BASELINE_KEY: name}
        return suggestion

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        value = (result or {}).get(self.metric)
        if isinstance(value, float) and not math.isfinite(value):
            # A diverged trial: Optuna refuses to tell a NaN as COMPLETE and would leave the
            # trial RUNNING in the journal; it is a failure, so say so.
            result, error = None, True
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    # Ray saves a wrapper's state with get_state and the wrapped OptunaSearch on its own.
    def get_state(self) -> dict:
        return {"pending": list(self.pending)}

    def set_state(self, state: dict) -> None:
        self.pending = list(state["pending"])

    @property
    def metric(self):
        return self.searcher.metric

    @property
    def mode(self):
        return self.searcher.mode
