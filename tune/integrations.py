"""Optional services a search logs to: Weights & Biases through Ray's logger callback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow.fs
from ray.air.integrations.wandb import WANDB_MODE_ENV_VAR, WandbLoggerCallback

from tune.errors import UsageError
from tune.private_api import (
    before_wandb_actor_starts,
    set_wandb_logging_actor,
    wandb_logging_actor,
    wandb_of,
)


class _LoggingActor(wandb_logging_actor()):
    def run(self):
        super().run()
        # wandb.finish leaves the run's file to wandb's service process, which Ray's kill of
        # this actor ends before it is written (the offline run held no metrics): wait for it.
        wandb_of(self).teardown()


class _Wandb(WandbLoggerCallback):
    """Ray's callback, which also logs offline, into the trial's own folder.

    Its set-up refuses to start without an API key unless WANDB_MODE says offline, although an
    offline run needs none; the mode reaches the logging actors' wandb.init as a keyword, so
    the variable is set for the set-up alone. Its runs go to Ray's staging folder in the
    session's temp dir, copied to storage before wandb has finished writing them (the copy of
    an offline run held no metrics): with storage on this machine they go straight there.
    """

    def setup(self, *args, **kwargs):
        if self.kwargs.get("mode") != "offline":
            return super().setup(*args, **kwargs)
        before = os.environ.get(WANDB_MODE_ENV_VAR)
        os.environ[WANDB_MODE_ENV_VAR] = "offline"
        try:
            return super().setup(*args, **kwargs)
        finally:
            if before is None:
                del os.environ[WANDB_MODE_ENV_VAR]
            else:
                os.environ[WANDB_MODE_ENV_VAR] = before


def _into_the_trial_folder(trial, wandb_init_kwargs: dict[str, Any]) -> None:
    """With storage on this machine, wandb writes its run straight into the trial's folder."""
    if isinstance(trial.storage.storage_filesystem, pyarrow.fs.LocalFileSystem):
        Path(trial.path).mkdir(parents=True, exist_ok=True)
        wandb_init_kwargs.setdefault("dir", trial.path)


set_wandb_logging_actor(_Wandb, _LoggingActor)
before_wandb_actor_starts(_Wandb, _into_the_trial_folder)


def wandb_callback(project: str) -> WandbLoggerCallback:
    """--wandb PROJECT: online with WANDB_API_KEY, else offline into each trial folder's
    wandb/ (upload later with `wandb sync`), the rule baseres.train --use_wandb follows."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise UsageError("--wandb needs the wandb package, but it is not installed "
                         "(pip install wandb)") from None
    mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
    return _Wandb(project=project, mode=mode)
