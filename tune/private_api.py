"""Every private attribute of a Ray or Optuna object that tune reads or writes, one function
each, so that an upgrade that moves one breaks here, where
tests/tune_tests/test_private_api.py builds the real objects and names what moved.

Written against Ray 2.60.0 and Optuna 5.0.0 (the versions constraints.txt pins). Each
function says what the public API lacks.

A Ray hook that tune overrides under its private name, checked by the same tests:
``LoggerCallback._restore_from_remote`` (tune.trainable.KeepsDriverCopy).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

# ---------------------------------------------------------------------------------- Optuna


def storage_id(frozen) -> int:
    """The storage id of an Optuna FrozenTrial (``FrozenTrial._trial_id``), which
    ``optuna.trial.Trial(study, id)`` takes: the handle to write to a trial this process did
    not ask for (one Ray resumed, one lost). Optuna offers no public way to it."""
    return frozen._trial_id


def in_distribution(dist, value: Any) -> bool:
    """Whether Optuna's distribution `dist` holds `value` (bounds, step), as Optuna itself
    checks (``BaseDistribution._contains`` of the internal representation); no public call
    says it. For tune.study.space_checks."""
    return dist._contains(dist.to_internal_repr(value))


# ------------------------------------------------------------------------------- Ray Tune


def asha_record(scheduler, trial_id: str, step: int, value: float) -> None:
    """Enter a trial's metric `value` at `step` into the rungs of its ASHA bracket (the first
    one for a trial the scheduler has not been given), as ASHA's on_trial_result does, the
    decision left out: Ray has no call to fill rungs from a record. Reads
    ``AsyncHyperBandScheduler._trial_info``, ``_brackets`` and ``_metric_op`` (the mode's
    sign) and calls ``_Bracket.on_result``, which reads a trial's ``trial_id`` alone."""
    bracket = scheduler._trial_info.get(trial_id, scheduler._brackets[0])
    bracket.on_result(SimpleNamespace(trial_id=trial_id), step, scheduler._metric_op * value)


def asha_time_attr(scheduler) -> str:
    """The result key ASHA counts time in (``AsyncHyperBandScheduler._time_attr``, its
    constructor's ``time_attr``)."""
    return scheduler._time_attr


def asha_max_t(scheduler) -> int:
    """The time ASHA lets a trial run to (``AsyncHyperBandScheduler._max_t``, its
    constructor's ``max_t``)."""
    return scheduler._max_t


def generator_experiment(generator):
    """The ``ray.tune.Experiment`` a SearchGenerator creates trials for, saved and restored
    with its state (``SearchGenerator._experiment``); its ``spec["storage"]`` is the
    StorageContext each new trial gets."""
    return generator._experiment


def storage_placed(storage, folder: Path):
    """The StorageContext `storage` (which Ray saved with a SearchGenerator's experiment) with
    its experiment in the local `folder`: a copy with ``storage_fs_path`` and
    ``experiment_dir_name`` changed, which Ray reads and offers no call to change; `storage`
    itself on remote storage (its place is the one Ray was given) or where it is `folder`."""
    if storage.storage_filesystem.type_name != "local":
        return storage
    if (storage.storage_fs_path, storage.experiment_dir_name) == (str(folder.parent),
                                                                  folder.name):
        return storage
    placed = copy.copy(storage)  # what Ray gives new trials, but the folder
    placed.storage_fs_path, placed.experiment_dir_name = str(folder.parent), folder.name
    return placed


def restored_parts(tuner) -> list:
    """The search algorithm, the scheduler and the callbacks of a Tuner as ``Tuner.restore``
    unpickled them from tuner.pkl (``Tuner._local_tuner``, its ``_tune_config`` and run
    config): the objects that go on with the search, which no public call reaches."""
    internal = tuner._local_tuner
    config = internal._tune_config
    return [config.search_alg, config.scheduler, *(internal.get_run_config().callbacks or [])]


RAY_TUNER_FILE = "tuner.pkl"  # Ray's Tuner as it began, which Tuner.restore needs


def has_saved_state(experiment: Path) -> bool:
    """Whether Ray saved an experiment's state (an ``experiment_state-*.json``) in its
    folder: a resume needs one."""
    return any(Path(experiment).glob("experiment_state-*.json"))


def saved_trial_statuses(experiment: Path) -> dict[str, str]:
    """trial id -> Ray's status of each trial in the newest ``experiment_state-*.json`` of an
    experiment folder ({} without one, or one Ray's format no longer matches): the file's
    ``trial_data`` holds each trial's JSON state first (``Trial.get_json_state``), which no
    public call reads back without Ray's TuneController."""
    states = sorted(Path(experiment).glob("experiment_state-*.json"))
    if not states:
        return {}
    try:
        data = json.loads(states[-1].read_text())
        trials = [json.loads(entry[0]) for entry in data["trial_data"]]
        return {t["trial_id"]: t["status"] for t in trials}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return {}


def checkpoint_manager(trial):
    """A Ray Trial's checkpoint manager (``Trial.run_metadata.checkpoint_manager``, the
    ``_CheckpointManager`` of its kept checkpoints), which no public call returns."""
    return trial.run_metadata.checkpoint_manager


def keep_checkpoint_results(manager, keep: Callable[[Any], bool]) -> None:
    """Leave a trial's checkpoint manager the checkpoint results `keep` accepts
    (``_CheckpointManager._checkpoint_results``, Ray's list of the checkpoints it keeps,
    which has no call to drop an entry)."""
    manager._checkpoint_results = [result for result in manager._checkpoint_results
                                   if keep(result)]


def set_latest_checkpoint_result(manager, result) -> None:
    """Make `result` (one the trial's checkpoint manager keeps, or None: none) the checkpoint
    the trial goes on from (``_CheckpointManager._latest_checkpoint_result``, which Ray's
    ``Trial.checkpoint`` and its restore read, and which has no setter)."""
    manager._latest_checkpoint_result = result


def checkpoint_logger() -> logging.Logger:
    """The logger of Ray's line for every checkpoint a trial persists ("Checkpoint
    successfully created at: ..."), which is its private module's,
    ``ray.train._internal.storage``."""
    return logging.getLogger("ray.train._internal.storage")


def token_auth_notice_logger() -> logging.Logger:
    """The logger of Ray's notice at every local start that token authentication is on,
    which is its private module's, ``ray._private.authentication.authentication_token_setup``."""
    return logging.getLogger("ray._private.authentication.authentication_token_setup")


# ------------------------------------------------------------ Ray's Weights & Biases logger


def wandb_logging_actor() -> type:
    """Ray's W&B logging actor, the class to extend (``ray.air.integrations.wandb.
    _WandbLoggingActor``): Ray's callback runs wandb in it, and offers no hook into its run."""
    from ray.air.integrations.wandb import _WandbLoggingActor

    return _WandbLoggingActor


def wandb_of(actor):
    """The wandb module a W&B logging actor logs with (``_WandbLoggingActor._wandb``)."""
    return actor._wandb


def set_wandb_logging_actor(callback_class: type, actor_class: type) -> None:
    """Make a WandbLoggerCallback class start `actor_class` (a wandb_logging_actor subclass)
    for each trial (``WandbLoggerCallback._logger_actor_cls``, which has no public setting)."""
    callback_class._logger_actor_cls = actor_class


def before_wandb_actor_starts(callback_class: type,
                              prepare: Callable[[Any, dict[str, Any]], None]) -> None:
    """Make a WandbLoggerCallback class call `prepare(trial, wandb_init_kwargs)`, which may
    change the keywords, before it starts a trial's logging actor with them
    (``WandbLoggerCallback._start_logging_actor``): the public keywords are the same for every
    trial."""
    start = callback_class._start_logging_actor

    def starting(self, trial, exclude_results, **wandb_init_kwargs):
        prepare(trial, wandb_init_kwargs)
        return start(self, trial, exclude_results, **wandb_init_kwargs)

    callback_class._start_logging_actor = starting
