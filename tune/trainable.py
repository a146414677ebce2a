"""The Ray Tune function trainable around baseres.trainer.Trainer."""

from __future__ import annotations

import csv
import json
import logging
import math
import tempfile
from pathlib import Path
from typing import Any

import ray
from pyarrow.fs import FileType
from ray.tune import Callback, Checkpoint, get_checkpoint, get_context
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from baseres.atomic import write_text_atomic
from baseres.config import TrainConfig
from baseres.hooks import (
    CHECKPOINT_FILE,
    ConfigFile,
    Hook,
    MetricsFile,
    TensorBoard,
)
from baseres.trainer import Trainer, TrainingDiverged
from tune.cluster import check_trial_folders
from tune.experiment import HoldsFolder, Location, divergence
from tune.private_api import (
    checkpoint_logger,
    checkpoint_manager,
    keep_checkpoint_results,
    restored_parts,
    set_latest_checkpoint_result,
)
from tune.study import BASELINE_KEY, StudySpec


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


def trial_folder() -> Path:
    """Where a trial writes its own files (config.yaml, metrics.jsonl, TensorBoard): Ray's trial
    working directory, which Ray makes the worker's working directory for every trial, a
    reused actor's next trials included, and copies into the trial's folder in storage at
    every checkpoint (SyncConfig.sync_artifacts, on every node). Not get_trial_dir(): Ray 2.60
    answers a fresh actor with the driver's staging folder (never copied from another node)
    and a reused one with the working directory."""
    check_trial_folders()  # on a cluster a node may set it where the driver does not
    return Path.cwd()


def train_trial(config: dict[str, Any], fixed: dict[str, Any],
                panel_epochs: tuple[int, ...] = ()) -> None:
    """One trial: fixed study values + this trial's sample, reported to Tune once per epoch;
    a decomposition panel also at `panel_epochs` (where ASHA may stop it)."""
    sample = {k: v for k, v in config.items() if k != BASELINE_KEY}
    # TensorBoard names a run after its folder: the baseline's name, else the trial id.
    label = config.get(BASELINE_KEY) or get_context().get_trial_id()
    run_trial(sample, fixed, label, config.get(BASELINE_KEY), panel_epochs=panel_epochs)


def run_trial(sample: dict[str, Any], fixed: dict[str, Any], label: str,
              baseline: str | None = None, extra_hooks: tuple[Hook, ...] = (),
              role: str | None = None, panel_epochs: tuple[int, ...] = ()) -> None:
    """Train fixed values + `sample` in Ray's trial folder, reporting every epoch; the
    `extra_hooks` run before each epoch's report (so their files go with its checkpoint).
    `role` says in TensorBoard's HParams what a run that is neither a baseline nor a sampled
    trial is (a fold run of the question); `panel_epochs`: epochs with a panel besides
    TensorBoard's own."""
    trial_dir = trial_folder()
    cpus, gpus = trial_resources()
    cfg = TrainConfig.from_dict({**fixed, **sample}, source="trial config")
    cfg = cfg.replace(num_threads=cpus, device="cuda" if gpus > 0 else "cpu", progress=False,
                      out_dir=str(trial_dir), extra={**cfg.extra, "trial": trial_dir.name,
                                                     "baseline": baseline})
    # HParams take scalars: a fold's list of places is in the run's label and config instead
    searched = {k: getattr(cfg, k) for k in sample
                if k != "model" and isinstance(getattr(cfg, k), (bool, int, float, str))}
    hparams = {"baseline": role or baseline or "sampled", "model": cfg.model, **searched}
    # Ray keeps the checkpoints (RayReport); a baseline that sets no searched value (the U-Net)
    # would define HParams columns without the searched ones.
    # The driver says each trial's progress (tune.console); Ray's line for every checkpoint
    # would be most of a search's console.
    checkpoint_logger().setLevel(logging.WARNING)
    hooks = [ConfigFile(trial_dir), MetricsFile(trial_dir),
             TensorBoard(trial_dir / label, hparams, defines_columns=bool(searched),
                         panel_epochs=panel_epochs),
             *extra_hooks, RayReport()]
    trainer = Trainer(cfg, hooks=hooks)
    checkpoint = get_checkpoint()
    if checkpoint is not None:  # a retry after a failure, or a resumed search
        with checkpoint.as_directory() as folder:
            trainer.load_checkpoint(Path(folder) / CHECKPOINT_FILE)

    try:
        trainer.fit(progress=False)
    except TrainingDiverged as err:
        # NaN reaches Optuna as a failed trial and is never chosen as best; the search goes on.
        last = trainer.history[-1] if trainer.history else {}
        ray.tune.report({**last, "val_rmse": math.nan, **divergence(f"diverged: {err}")})


def rows_to_keep(reported_with: list[str | None], checkpoint: str | None) -> int:
    """How many of a trial's rows, each naming the checkpoint reported with it, stand when
    the trial goes on from `checkpoint` (None: from its first epoch); the rest come again."""
    if checkpoint is None:
        return 0
    return max((i + 1 for i, name in enumerate(reported_with) if name == checkpoint),
               default=len(reported_with))  # a row Ray has not logged yet: nothing comes again


class KeepsDriverCopy:
    """Ray's result loggers, where a trial starts again (a retry, a resumed search).

    Before its next row Ray copies the file back from storage over the driver's own copy, and
    storage lags that copy (it is synced now and then): the driver's copy, where it has one,
    is the newer and is kept; a resumed driver has none and restores.

    Then the rows after the checkpoint it goes on from are dropped, since those epochs are
    reported again (Ray logs a row before its checkpoint reaches Ray's saved state)."""

    def _restore_from_remote(self, file_name: str, trial) -> None:
        path = Path(trial.local_path, file_name)
        if not path.is_file():
            super()._restore_from_remote(file_name, trial)
        if path.is_file():
            checkpoint = Path(trial.checkpoint.path).name if trial.checkpoint else None
            self.cut_rows(path, checkpoint)

    def cut_rows(self, path: Path, checkpoint: str | None) -> None:
        raise NotImplementedError


def _rewrite(path: Path, text: str) -> None:
    write_text_atomic(path, text, newline="")  # as read: Ray's CSV rows end in \r\n


class ResultJson(KeepsDriverCopy, JsonLoggerCallback):
    def cut_rows(self, path: Path, checkpoint: str | None) -> None:
        lines = path.read_text().splitlines(keepends=True)
        names = []
        for line in lines:
            try:
                names.append(json.loads(line).get("checkpoint_dir_name"))
            except ValueError:
                names.append(None)
        keep = rows_to_keep(names, checkpoint)
        if keep < len(lines):
            _rewrite(path, "".join(lines[:keep]))


class ProgressCsv(KeepsDriverCopy, CSVLoggerCallback):
    def cut_rows(self, path: Path, checkpoint: str | None) -> None:
        with path.open(newline="") as file:
            lines = file.read().splitlines(keepends=True)
        rows = list(csv.DictReader(lines))
        keep = rows_to_keep([r.get("checkpoint_dir_name") for r in rows], checkpoint)
        # the header stays (Ray goes on appending under it); a value over several lines, never
        # written by a trial, would leave rows and lines apart: left as it is
        if keep < len(rows) == len(lines) - 1:
            _rewrite(path, "".join(lines[:keep + 1]))


def in_storage(result) -> bool:
    """Whether a checkpoint result's checkpoint is still in storage."""
    checkpoint = result.checkpoint
    return checkpoint.filesystem.get_file_info(checkpoint.path).type != FileType.NotFound


class ForgetDeletedCheckpoints(Callback):
    """A trial that starts again forgets the checkpoints no longer in storage.

    Ray deletes a trial's older checkpoints as newer ones come. A driver killed after such a
    deletion and before its next saved state resumes with a list that still names the deleted
    one, and deleting it again at the trial's next checkpoint raised FileNotFoundError: a
    traceback for the user, and Ray's bookkeeping of that checkpoint cut short. Where the
    deleted one is the trial's latest (a fold run keeps one checkpoint), Ray's restore failed
    the trial three times ("does not exist on storage anymore"): the trial goes on from its
    newest checkpoint left instead, or from its first epoch where none is.

    First among the callbacks: Ray's result loggers cut the rows after the checkpoint a trial
    goes on from (KeepsDriverCopy) at its start too."""

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        manager = checkpoint_manager(trial)
        keep_checkpoint_results(manager, in_storage)
        latest = manager.latest_checkpoint_result
        if latest is not None and not in_storage(latest):
            newest = max(manager.best_checkpoint_results, default=None,
                         key=lambda result: result.metrics.get("training_iteration", 0))
            set_latest_checkpoint_result(manager, newest)


def run_config(location: Location, callbacks: list, verbose: bool, checkpoints):
    """Ray's RunConfig of every Tuner here (the search, the question's and the confirmation's
    fold runs), at `location`, keeping `checkpoints` (a CheckpointConfig).

    Callbacks: a checkpoint list true to storage first, then Ray's loggers of result.json and
    progress.csv, which the summary and the tests read (cluster.drop_ray_tensorboard_logger
    turns the automatic ones off); then `callbacks`. A failed trial is tried twice more.
    Ray copies each trial's own files (trial_folder) into its folder in storage at every
    checkpoint, from whichever node ran it."""
    from ray.tune import FailureConfig, RunConfig, SyncConfig

    return RunConfig(
        name=location.name, storage_path=location.storage, verbose=1 if verbose else 0,
        callbacks=[ForgetDeletedCheckpoints(), ResultJson(), ProgressCsv(), *callbacks],
        checkpoint_config=checkpoints, failure_config=FailureConfig(max_failures=2),
        sync_config=SyncConfig(sync_artifacts=True))


def restored_tuner(experiment: str, trainable, folder: Path):
    """Ray's Tuner of an interrupted search, its searcher, scheduler and callbacks handed the
    folder this driver holds (Ray's pickles of them hold none)."""
    from ray.tune import Tuner

    tuner = Tuner.restore(experiment, trainable=trainable, resume_errored=True)
    for part in restored_parts(tuner):
        if isinstance(part, HoldsFolder):
            part.hold(folder)
    return tuner


def trial_dirname(trial) -> str:
    """Short trial folder names (Ray's default spells out every parameter)."""
    return f"trial_{trial.trial_id}"


def build_trainable(spec: StudySpec, fixed: dict[str, Any], function=train_trial):
    """`function(config, fixed)` (a search trial, or tune.confirm's) with the study's
    resources per trial."""
    from ray.tune import with_parameters, with_resources

    resources = {"cpu": spec.resources["cpu"], "gpu": spec.resources.get("gpu", 0)}
    # a search trial draws a panel wherever ASHA may stop it: one it stops has a panel of its
    # last epoch, not only of an earlier one (every image_every epochs)
    bound = ({"panel_epochs": spec.scheduler.stop_epochs()}
             if function is train_trial and spec.scheduler is not None else {})
    return with_resources(with_parameters(function, fixed=fixed, **bound), resources)
