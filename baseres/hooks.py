"""What happens around training, as hooks the Trainer calls: the console line, metrics.jsonl,
TensorBoard scalars and the decomposition panel, checkpoints and Weights & Biases.

A hook has ``on_fit_start(trainer)``, ``on_epoch_end(trainer, record)`` and ``close()``. The
Trainer runs the hooks its caller passes: the ``baseres.train`` CLI passes ``default_hooks``; a
Ray Tune trial swaps the checkpoints for Ray's own and adds its HParams session
(tune.trainable), without the Trainer knowing about Ray.
"""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path
from typing import Any, Protocol

from baseres.atomic import write_text_atomic
from baseres.config import ConfigError, TrainConfig
from baseres.metrics import METRIC_NAMES

CHECKPOINT_FILE = "checkpoint.pt"
BEST_FILE = "best.pt"
METRICS_FILE = "metrics.jsonl"
PANEL_TAG = "decomposition/truth|final|base|residual"


class Trainer(Protocol):
    """What a hook reads of the run it serves (baseres.trainer.Trainer is one): hooks need no
    import of the trainer, which imports them."""

    cfg: TrainConfig
    epoch: int  # the next epoch to run
    best: dict[str, float]  # {"val_rmse": ..., "epoch": ...}
    history: list[dict[str, float]]

    def saved_config(self) -> TrainConfig: ...

    def panel(self) -> Any: ...

    def save_checkpoint(self, path: str | Path) -> None: ...


class Hook:
    """Does nothing; subclasses override what they need."""

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


class ConsoleLine(Hook):
    """One line per epoch; `label` names the run where several print to one console."""

    def __init__(self, label: str = ""):
        self.prefix = f"{label}: " if label else ""

    def on_epoch_end(self, trainer, record):
        print(self.prefix + format_record(record, trainer.cfg.epochs), flush=True)


class ConfigFile(Hook):
    """The resolved config (and the data folder the run read) as <out>/config.yaml."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)

    def on_fit_start(self, trainer):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        trainer.saved_config().to_yaml(self.out_dir / "config.yaml")


class MetricsFile(Hook):
    """metrics.jsonl: one line per epoch, rewritten whole from the history each epoch, so a
    resumed run's file holds every epoch once, whatever was cut short before."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / METRICS_FILE

    def on_epoch_end(self, trainer, record):
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in trainer.history))


class TensorBoard(Hook):
    """Scalars in groups (scalar_tag), the decomposition panel every `image_every` epochs (and
    at the first and last) and, given `hparams`, one HParams session of this run whose metric
    columns start with val_rmse.

    `panel_epochs`: further epochs with a panel, where a scheduler may end the run early (so
    that a run it stops has a panel of its last epoch).

    `defines_columns`: whether this run also writes the HParams column list. TensorBoard shows
    one run's list, whichever it reads first, so a run that sets fewer hparams than the others
    (a baseline outside the searched space) must leave it to them.
    """

    def __init__(self, log_dir: Path, hparams: dict[str, Any] | None = None,
                 defines_columns: bool = True, panel_epochs: tuple[int, ...] = ()):
        self.log_dir = Path(log_dir)
        self.hparams = hparams
        self.defines_columns = defines_columns
        self.panel_epochs = set(panel_epochs)
        self.writer = None

    def on_fit_start(self, trainer):
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir.mkdir(parents=True, exist_ok=True)
        # Continuing from a checkpoint (a resume, a retried trial) hides what an interrupted
        # attempt wrote after it, and keeps the one HParams session written at the start,
        # whether or not the earlier event files are in this folder (a resumed Ray trial
        # writes into a new working directory, copied beside the old files in storage).
        fresh = trainer.epoch == 0
        self.writer = SummaryWriter(str(self.log_dir),
                                    purge_step=None if fresh else trainer.epoch + 1)
        if self.hparams is not None and fresh:
            experiment, start, end = hparams_summaries(self.hparams)
            for summary in (experiment, start, end) if self.defines_columns else (start, end):
                self.writer.file_writer.add_summary(summary)

    def on_epoch_end(self, trainer, record):
        epoch = int(record["epoch"])
        for key, value in record.items():
            if key != "epoch":
                self.writer.add_scalar(scalar_tag(key), value, epoch)
        every = trainer.cfg.image_every
        if every and (epoch % every == 0 or epoch in (1, trainer.cfg.epochs)
                      or epoch in self.panel_epochs):
            self.writer.add_image(PANEL_TAG, trainer.panel(), epoch, dataformats="HWC")
        self.writer.flush()

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def hparams_summaries(hparams: dict[str, Any]):
    """The HParams plugin's experiment (columns), session start and session end summaries."""
    from torch.utils.tensorboard.summary import hparams as hparams_summary

    return hparams_summary(hparams, dict.fromkeys(scalar_tag(k) for k in HPARAM_METRICS))


class Checkpoints(Hook):
    """checkpoint.pt after every epoch, best.pt after every new best (written atomically)."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)

    def on_epoch_end(self, trainer, record):
        trainer.save_checkpoint(self.out_dir / CHECKPOINT_FILE)
        if trainer.best["epoch"] == int(record["epoch"]):
            trainer.save_checkpoint(self.out_dir / BEST_FILE)


class Wandb(Hook):
    """Weights & Biases, offline unless WANDB_API_KEY is set. A missing wandb is refused
    when the hook is built; its run starts with the fit, after the data is ready."""

    def __init__(self, cfg: TrainConfig, out_dir: Path):
        self.wandb = import_wandb()
        self.cfg, self.out_dir = cfg, out_dir
        self.run = None

    def on_fit_start(self, trainer):
        self.run = self.wandb.init(
            project=self.cfg.experiment_name, config=self.cfg.to_dict(), dir=str(self.out_dir),
            mode="online" if os.environ.get("WANDB_API_KEY") else "offline")

    def on_epoch_end(self, trainer, record):
        self.run.log(record, step=int(record["epoch"]))

    def close(self):
        if self.run is not None:  # an earlier hook's on_fit_start failed before it started
            self.run.finish()
            self.run = None


def default_hooks(cfg: TrainConfig, out_dir: Path) -> list[Hook]:
    """What ``python -m baseres.train`` does around training, writing into `out_dir`."""
    hooks = [ConsoleLine(), ConfigFile(out_dir), MetricsFile(out_dir), TensorBoard(out_dir),
             Checkpoints(out_dir)]
    if cfg.use_wandb:
        hooks.append(Wandb(cfg, out_dir))
    return hooks


# TensorBoard groups: an epoch record key goes under the first group one of whose patterns it
# matches, else under diagnostics/ (decomposition statistics: sparse, base_rmse, ...).
_TAG_GROUPS = (
    ("metrics", ("val_*", "best_val_rmse", "train_rmse", "mean_map_rmse")),
    ("losses", ("train_loss", "train_recon", "train_base")),
    ("curriculum", ("lambda_*", "base_frozen", "learning_rate")),
    ("perf", ("epoch_time_s", "samples_per_s", "peak_rss_mb")),
)
# The HParams metric columns, in this order: the objective at the best epoch first (the
# summary's and the journal's "best"), then the last epoch's value.
HPARAM_METRICS = ("best_val_rmse", "val_rmse", *(f"val_{m}" for m in METRIC_NAMES if m != "rmse"),
                  "train_rmse", "mean_map_rmse", "train_sparse", "sparse_ratio")


def scalar_tag(key: str) -> str:
    """TensorBoard tag of an epoch record key: metrics/, losses/, curriculum/, perf/ or
    diagnostics/, then the key itself (as in metrics.jsonl)."""
    group = next((name for name, patterns in _TAG_GROUPS
                  if any(fnmatch.fnmatchcase(key, p) for p in patterns)), "diagnostics")
    return f"{group}/{key}"


def format_record(record: dict[str, float], epochs: int) -> str:
    decomposition = (f"sparse {record['sparse']:.3f}  base_rmse {record['base_rmse']:.3f}  "
                     if "sparse" in record else "")
    return (f"epoch {int(record['epoch'])}/{epochs}  loss {record['train_loss']:.4f}  "
            f"val_rmse {record['val_rmse']:.3f}  train_rmse {record['train_rmse']:.3f}  "
            f"delta1 {record['val_delta1']:.3f}  {decomposition}"
            f"({record['epoch_time_s']:.1f} s, {record['samples_per_s']:.0f} samples/s)")


def import_wandb():
    """wandb is optional: asking for it without it installed is a config error, said early."""
    try:
        import wandb
    except ImportError:
        raise ConfigError("use_wandb needs the wandb package, but it is not installed "
                          "(pip install wandb)") from None
    return wandb
