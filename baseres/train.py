"""Training: ``Trainer`` (fit -> run_epoch -> train_step -> process_batch -> compute_losses)
and its CLI.

Every step returns a dict of named values, so the console line, metrics.jsonl, TensorBoard and
Ray Tune reporting all come from one per-epoch record.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from baseres.cli import OneLineParser
from baseres.config import ConfigError, TrainConfig, config_fields
from baseres.data.batvision import DataError
from baseres.data.cache import SplitArrays, load_split, resolve_data_root
from baseres.data.loader import BatchLoader
from baseres.losses import BaseResidualLoss, curriculum
from baseres.metrics import METRIC_NAMES, MetricAccumulator, per_image_metrics
from baseres.model import build_model

try:
    import resource
except ImportError:  # Windows: no getrusage
    resource = None

CHECKPOINT_FILE = "checkpoint.pt"
TRAIN_PROBE_SAMPLES = 256  # training samples scored each epoch for train_rmse and the gap


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run cannot recover by itself."""


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device must be available, but got 'cuda' on a machine without CUDA")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Trains one config; `out_dir=None` keeps everything in memory (used by tests)."""

    def __init__(self, cfg: TrainConfig, out_dir: str | Path | None = None,
                 data: dict[str, SplitArrays] | None = None, log_scalars: bool = True,
                 save_checkpoints: bool = True):
        self.cfg = cfg
        self.out_dir = Path(out_dir) if out_dir is not None else None
        # Under Ray Tune the trial's own logger writes the scalars and Ray keeps checkpoints.
        self.log_scalars = log_scalars
        self.save_checkpoints = save_checkpoints
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        self.device = pick_device(cfg.device)
        if cfg.use_wandb:
            import_wandb()
        seed_everything(cfg.seed)
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model = build_model(cfg).to(self.device, memory_format=self.memory_format)
        self.loss_fn = BaseResidualLoss(cfg)
        self.optimizer = self._make_optimizer()
        self.epoch = 0  # the next epoch to run
        self.best = {"val_rmse": math.inf, "epoch": -1}
        self.history: list[dict[str, float]] = []
        self.data = dict(data) if data is not None else None  # setup_data adds to it
        self.writer = None
        self.wandb_run = None

    # ------------------------------------------------------------------ set-up
    def _make_optimizer(self) -> torch.optim.Optimizer:
        params, cfg = self.model.parameters(), self.cfg
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        return torch.optim.SGD(params, lr=cfg.learning_rate, momentum=0.9,
                               weight_decay=cfg.weight_decay)

    def setup_data(self, progress: bool = True) -> dict[str, SplitArrays]:
        """Load (or build once into the shared cache) the train and val features."""
        if self.data is None:
            root = resolve_data_root(self.cfg, progress=progress)
            self.data = {split: load_split(self.cfg, split, root, progress=progress)
                         for split in ("train", "val")}
            # Which data the run saw (for the synthetic set, its folder names the generator's
            # digest), saved with the config so a retrain can tell whether it sees the same.
            self.cfg.extra["data_root_resolved"] = str(root)
        if "train_probe" not in self.data:
            self.data["train_probe"] = train_probe(self.data["train"], self.cfg.seed)
            mean_map = mean_depth_map(self.data["train"])
            self.reference_rmse = {split: mean_map_rmse(mean_map, self.data[split],
                                                        self.cfg.max_depth)
                                   for split in self.data if split != "train_probe"}
        return self.data

    def _autocast(self):
        if self.cfg.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _open_logs(self) -> None:
        if self.out_dir is None or self.writer is not None:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.cfg.to_yaml(self.out_dir / "config.yaml")
        self.writer = SummaryWriter(str(self.out_dir))
        if self.cfg.use_wandb:
            self.wandb_run = start_wandb(self.cfg, self.out_dir)

    # ------------------------------------------------------------------ the loop
    def fit(self, on_epoch_end: Callable[[dict[str, float]], None] | None = None,
            progress: bool = True) -> dict[str, float]:
        """Train from `self.epoch` to cfg.epochs; returns the last epoch's record."""
        self.setup_data(progress=progress)
        if self.epoch == 0 and not self.history:
            self.model.init_depth_bias(mean_valid_depth(self.data["train"]))
        self._open_logs()
        record: dict[str, float] = {}
        try:
            for epoch in range(self.epoch, self.cfg.epochs):
                record = {"epoch": epoch + 1, **self.run_epoch(epoch, progress)}
                self.recalibrate_batchnorm(epoch)
                record.update(self.validate(epoch))
                self.epoch = epoch + 1
                if record["val_rmse"] < self.best["val_rmse"]:
                    self.best = {"val_rmse": record["val_rmse"], "epoch": epoch + 1}
                record["best_val_rmse"] = self.best["val_rmse"]
                self.history.append(record)
                self.log_epoch(record)
                if on_epoch_end is not None:
                    on_epoch_end(record)
        finally:
            self.close()
        return record

    def learning_rate(self, epoch: int) -> float:
        """The epoch's learning rate, a pure function of the epoch (so resuming needs no state)."""
        if self.cfg.lr_schedule == "constant":
            return self.cfg.learning_rate
        return self.cfg.learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / self.cfg.epochs))

    def run_epoch(self, epoch: int, progress: bool = True) -> dict[str, float]:
        weights = curriculum(self.cfg, epoch)
        lr = self.learning_rate(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if weights["base_frozen"] and not self.model.base_frozen:
            self.model.freeze_base()
        self.model.train()
        loader = BatchLoader(self.data["train"], self.cfg.batch_size, shuffle=True,
                             seed=self.cfg.seed)
        loader.set_epoch(epoch)
        totals: dict[str, float] = {}
        samples, start = 0, time.perf_counter()
        show = progress and self.cfg.progress and sys.stderr.isatty()
        batches = _progress_bar(loader, show, f"epoch {epoch + 1}/{self.cfg.epochs}")
        for step, batch in enumerate(batches):
            losses = self.train_step(batch, weights, where=f"epoch {epoch + 1}, step {step + 1}")
            n = batch[0].shape[0]
            samples += n
            for key, value in losses.items():
                totals[key] = totals.get(key, 0.0) + float(value.detach()) * n
        elapsed = time.perf_counter() - start
        record = {f"train_{k}": v / max(samples, 1) for k, v in totals.items()}
        record.update({k: float(v) for k, v in weights.items()}, learning_rate=lr)
        record.update(epoch_time_s=elapsed, samples_per_s=samples / max(elapsed, 1e-9),
                      peak_rss_mb=peak_rss_mb())
        return record

    def train_step(self, batch, weights: dict[str, float], where: str = "") -> dict:
        """One optimiser step on `batch`; its losses (`where` names it if it diverges)."""
        _, losses = self.process_batch(batch, weights)
        loss = losses["loss"]
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"loss became {float(loss.detach())} at {where}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        return losses

    def _inputs(self, features: torch.Tensor) -> torch.Tensor:
        """Features on the model's device, in its memory layout."""
        return features.to(self.device, memory_format=self.memory_format)

    def process_batch(self, batch, weights: dict[str, float]
                      ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        features, depth = batch
        with self._autocast():
            outputs = self.model(self._inputs(features))
        return outputs, self.compute_losses(outputs, depth.to(self.device), weights)

    def compute_losses(self, outputs, depth, weights) -> dict[str, torch.Tensor]:
        return self.loss_fn(outputs, depth, weights)

    @torch.no_grad()
    def recalibrate_batchnorm(self, epoch: int) -> None:
        """Set the running statistics of every BatchNorm still learning to their values for
        the current weights, over cfg.bn_recalibration_samples shuffled training samples.

        The running averages lag the weights while those move fast: after one epoch the
        large base decoders scored worse in eval mode than the small ones though they ended
        better, and early stopping dropped them (bench/RESULTS.md). Batches are shuffled
        because neighbouring samples share a room, which skews per-batch statistics. A frozen
        base keeps its statistics.
        """
        layers = [m for m in self.model.modules()
                  if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training]
        if not layers or self.cfg.bn_recalibration_samples == 0:
            return
        momenta = [m.momentum for m in layers]
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # a plain average over the recalibration batches
        loader = BatchLoader(self.data["train"], self.cfg.batch_size, shuffle=True,
                             seed=self.cfg.seed)
        loader.set_epoch(epoch)
        seen = 0
        for features, _ in loader:
            with self._autocast():
                self.model(self._inputs(features))
            seen += features.shape[0]
            if seen >= self.cfg.bn_recalibration_samples:
                break
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum

    @torch.no_grad()
    def evaluate(self, arrays: SplitArrays) -> tuple[dict[str, float], tuple]:
        """Metrics and decomposition diagnostics over `arrays` in eval mode (unprefixed), and
        the first batch's (outputs, depth) for the image panel."""
        self.model.eval()
        accumulator = MetricAccumulator(self.cfg.max_depth, self.cfg.lowpass_kernel)
        first = None
        for features, depth in BatchLoader(arrays, self.cfg.batch_size, shuffle=False):
            with self._autocast():
                outputs = self.model(self._inputs(features))
            accumulator.update(outputs, depth.to(self.device))
            if first is None:
                first = (outputs, depth)
        if accumulator.images == 0:  # an error of 0 would rank as the best possible trial
            raise DataError("a split to evaluate has no image with a valid depth pixel")
        return accumulator.compute(), first

    def validate(self, epoch: int | None = None, split: str = "val") -> dict[str, float]:
        """Val metrics (prefixed val_), decomposition diagnostics, and the train/val gap:
        train_rmse on a fixed subset of the training samples, gap = val_rmse - train_rmse."""
        try:
            values, self.last_panel = self.evaluate(self.data[split])
        except DataError:
            raise DataError(f"split {split!r} has no image with a valid depth pixel") from None
        record = {("val_" + k if k in METRIC_NAMES else k): v for k, v in values.items()}
        probe, _ = self.evaluate(self.data["train_probe"])
        record["train_rmse"] = probe["rmse"]
        record["gap"] = record["val_rmse"] - probe["rmse"]
        record["mean_map_rmse"] = self.reference_rmse[split]
        return record

    # ------------------------------------------------------------------ logging
    def log_epoch(self, record: dict[str, float]) -> None:
        epoch = int(record["epoch"])
        print(format_record(record, self.cfg.epochs), flush=True)
        if self.out_dir is None:
            return
        with (self.out_dir / "metrics.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.log_scalars:
            for key, value in record.items():
                if key != "epoch":
                    self.writer.add_scalar(scalar_tag(key), value, epoch)
        if self.cfg.image_every and (epoch % self.cfg.image_every == 0 or epoch == 1
                                     or epoch == self.cfg.epochs):
            self.log_panel(epoch)
        self.writer.flush()
        if self.wandb_run is not None:
            self.wandb_run.log(record, step=epoch)
        if self.save_checkpoints:
            self.save_checkpoint(self.out_dir / CHECKPOINT_FILE)
            if self.best["epoch"] == epoch:
                self.save_checkpoint(self.out_dir / "best.pt")

    def log_panel(self, epoch: int, writer=None) -> None:
        from baseres.viz import decomposition_panel

        outputs, gt = self.last_panel
        limit = self.cfg.max_depth * self.cfg.residual_range
        panel = decomposition_panel(outputs, gt, self.cfg.max_depth, limit)
        (writer or self.writer).add_image("decomposition/base|residual|final|gt", panel, epoch,
                                          dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "epoch": self.epoch, "base_frozen": self.model.base_frozen,
                "best": dict(self.best), "history": list(self.history),
                "config": self.cfg.to_dict()}

    def save_checkpoint(self, path: str | Path) -> None:
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self.state(), tmp)
        tmp.replace(path)  # a crash mid-write never leaves a truncated checkpoint

    def load_checkpoint(self, path: str | Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=True)
        if state.get("base_frozen"):
            self.model.freeze_base()
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = int(state["epoch"])
        self.best = dict(state["best"])
        self.history = list(state["history"])
        if self.out_dir is not None and (self.out_dir / "metrics.jsonl").exists():
            # An interrupt between a line and its checkpoint would repeat that epoch's line.
            (self.out_dir / "metrics.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in self.history))


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (NaN where the OS cannot say)."""
    if resource is None:
        return math.nan
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes there, KiB here


def train_probe(train: SplitArrays, seed: int) -> SplitArrays:
    """A fixed, seeded subset of at most TRAIN_PROBE_SAMPLES training samples, in memory."""
    count = min(TRAIN_PROBE_SAMPLES, len(train))
    generator = np.random.default_rng([seed, 7])  # its own stream: the batch order is unmoved
    index = np.sort(generator.choice(len(train), size=count, replace=False))
    return SplitArrays(features=np.ascontiguousarray(train.features[index]),
                       depth=np.ascontiguousarray(train.depth[index]))


def mean_depth_map(train: SplitArrays, chunk: int = 256) -> np.ndarray:
    """1 x 1 x S x S: each pixel's mean valid training depth (the overall mean where a pixel is
    never valid)."""
    total = np.zeros(train.depth.shape[1:], dtype=np.float64)
    count = np.zeros_like(total)
    for start in range(0, len(train), chunk):
        depth = np.asarray(train.depth[start:start + chunk], dtype=np.float64)
        valid = depth > 0
        total += np.where(valid, depth, 0).sum(axis=0)
        count += valid.sum(axis=0)
    overall = total.sum() / max(count.sum(), 1)
    mean = np.where(count > 0, total / np.maximum(count, 1), overall)
    return mean[None].astype(np.float32)


def mean_map_rmse(mean_map: np.ndarray, split: SplitArrays, max_depth: float) -> float:
    """RMSE on `split` of the mean training depth map: the "learned nothing" reference that
    every result should beat."""
    mean_map = torch.from_numpy(mean_map)
    total, images = 0.0, 0
    for _, depth in BatchLoader(split, 256, shuffle=False):
        rmse = per_image_metrics(mean_map.expand_as(depth), depth, max_depth)["rmse"]
        total, images = total + float(rmse.double().sum()), images + rmse.numel()
    return total / max(images, 1)


def mean_valid_depth(split: SplitArrays, limit: int = 512) -> float:
    """Mean of the valid depth over (up to) the first `limit` training samples."""
    depth = np.asarray(split.depth[:limit])
    valid = depth > 0
    return float(depth[valid].mean()) if valid.any() else 1.0


def _progress_bar(iterable, show: bool, desc: str):
    if not show:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, leave=False, unit="batch")


_TAG_GROUPS = (("train_", "train/"), ("val_", "val/"), ("lambda_", "curriculum/lambda_"))


def scalar_tag(key: str) -> str:
    """TensorBoard tag: train/..., val/..., curriculum/..., diagnostics/..., perf/..."""
    for prefix, group in _TAG_GROUPS:
        if key.startswith(prefix):
            return group + key[len(prefix):]
    if key in ("epoch_time_s", "samples_per_s", "peak_rss_mb", "learning_rate"):
        return "perf/" + key
    if key == "base_frozen":
        return "curriculum/base_frozen"
    return "diagnostics/" + key


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


def start_wandb(cfg: TrainConfig, out_dir: Path):
    import os

    mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
    return import_wandb().init(project=cfg.experiment_name, config=cfg.to_dict(),
                               dir=str(out_dir), mode=mode)


# ---------------------------------------------------------------------- CLI
# The seed's own flag spellings, mapped onto TrainConfig keys.
_ALIASES = {"lr": "learning_rate", "data-root": "data_root", "out": "out_dir"}


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, but got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m baseres.train",
        description="Train a base + residual echo-depth model. Every TrainConfig key is a flag "
        "(--key or --key-with-dashes); precedence: defaults < --config FILE < flags. Writes "
        "<out>/config.yaml, metrics.jsonl, checkpoint.pt, best.pt and TensorBoard events.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--config", help="YAML file of TrainConfig values (e.g. from tune.export)")
    parser.add_argument("--use_silog", action="store_true",
                        help="seed flag: SI-log reconstruction loss (= --recon_loss silog)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier run in --out instead of refusing")
    parser.add_argument("--seeds", type=int, metavar="N",
                        help="train N full runs, seeds seed .. seed+N-1, into <out>/seed-<s>/ and "
                        "write <out>/seeds.json (best val_rmse and val_delta1 per seed, mean and "
                        "sample std), to confirm a result before believing it; with --resume, "
                        "seeds that never checkpointed start afresh")
    aliases = {v: k for k, v in _ALIASES.items()}
    for name, hint in config_fields().items():
        if name == "extra":
            continue
        flags = sorted({f"--{name}", f"--{name.replace('_', '-')}"})
        if name in aliases:
            flags.append(f"--{aliases[name]}")
        kind = _flag_type(hint)
        doc = _FIELD_DOCS.get(name, "")
        if kind is bool:
            parser.add_argument(*flags, dest=name, nargs="?", const=True, type=_parse_bool,
                                help=doc)
        elif kind is list:
            parser.add_argument(*flags, dest=name, nargs="+", help=doc)
        else:
            parser.add_argument(*flags, dest=name, type=kind, help=doc)
    return parser


def _flag_type(hint) -> type:
    import typing

    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    base = typing.get_origin(args[0]) or args[0]
    return base if base in (bool, int, float, list) else str


def _field_docs() -> dict[str, str]:
    """The one-line comment beside each TrainConfig field, reused as its --help text."""
    import inspect

    from baseres import config

    docs = {}
    for line in inspect.getsource(config.TrainConfig).splitlines():
        name, _, comment = line.partition("#")
        if ":" in name and comment and "=" in name:
            docs[name.split(":")[0].strip()] = comment.strip()
    return docs


_FIELD_DOCS = _field_docs()


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = vars(args).copy()
    for flag in ("resume", "overwrite", "seeds"):
        values.pop(flag, None)
    base = TrainConfig.from_yaml(values.pop("config")).to_dict() if "config" in values else {}
    if values.pop("use_silog", False):
        values["recon_loss"] = "silog"
    return TrainConfig.from_dict({**base, **values}, source="command line")


def prepare_out_dir(out_dir: Path, resume: bool, overwrite: bool, fresh_ok: bool = False) -> bool:
    """Apply --resume / --overwrite to `out_dir`; True when the run continues from its checkpoint.

    `fresh_ok`: --resume may start a run that never checkpointed (a seed --seeds had not reached).
    """
    if (out_dir / "config.yaml").exists() and not (resume or overwrite):
        raise ConfigError(f"{out_dir}: holds an earlier run; pass --resume to continue it, "
                          "--overwrite to replace it, or choose another --out")
    checkpointed = (out_dir / CHECKPOINT_FILE).exists()
    if resume and not checkpointed and not fresh_ok:
        raise ConfigError(f"{out_dir}: --resume needs {CHECKPOINT_FILE} there, but none exists")
    if overwrite or (resume and not checkpointed):
        for path in [out_dir / n for n in ("metrics.jsonl", CHECKPOINT_FILE, "best.pt")] + list(
                out_dir.glob("events.out.tfevents.*")):
            path.unlink(missing_ok=True)
    return resume and checkpointed


def train_run(cfg: TrainConfig, out_dir: Path, from_checkpoint: bool) -> Trainer:
    trainer = Trainer(cfg, out_dir)
    if from_checkpoint:
        trainer.load_checkpoint(out_dir / CHECKPOINT_FILE)
    print(f"training {cfg.model} (divisor {cfg.base_channel_divisor}, C={cfg.base_channels}, "
          f"{cfg.image_size}x{cfg.image_size}) on {cfg.dataset}; "
          f"parameters {trainer.model.param_counts()}; output {out_dir}", flush=True)
    trainer.fit()
    return trainer


def seed_summary(trainers: list[Trainer]) -> dict:
    """Each seed's best epoch (lowest val_rmse), and mean and sample std over the seeds."""
    seeds = []
    for trainer in trainers:
        best = next(r for r in trainer.history if r["epoch"] == trainer.best["epoch"])
        seeds.append({"seed": trainer.cfg.seed, "best_epoch": int(best["epoch"]),
                      "val_rmse": best["val_rmse"], "val_delta1": best["val_delta1"],
                      "out_dir": str(trainer.out_dir)})
    summary: dict = {"seeds": seeds}
    for key in ("val_rmse", "val_delta1"):
        values = [seed[key] for seed in seeds]
        summary[key] = {"mean": statistics.mean(values), "std": statistics.stdev(values)}
    return summary


def train_seeds(cfg: TrainConfig, out_dir: Path, count: int, resume: bool,
                overwrite: bool) -> dict:
    """Full runs of `cfg` at seeds seed .. seed+count-1; writes and returns <out>/seeds.json."""
    if count < 2:
        raise ConfigError(f"--seeds must be >= 2 (one seed is a plain run), but got {count}")
    runs = [cfg.replace(seed=cfg.seed + i, out_dir=str(out_dir / f"seed-{cfg.seed + i}"))
            for i in range(count)]
    # Every folder is checked before the first run starts, not after hours of training.
    continues = [prepare_out_dir(run.resolved_out_dir, resume, overwrite, fresh_ok=True)
                 for run in runs]
    trainers = [train_run(run, run.resolved_out_dir, from_checkpoint)
                for run, from_checkpoint in zip(runs, continues)]
    summary = seed_summary(trainers)
    (out_dir / "seeds.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def print_seed_summary(summary: dict, out_dir: Path) -> None:
    for seed in summary["seeds"]:
        print(f"seed {seed['seed']}: best val_rmse {seed['val_rmse']:.4f} "
              f"(val_delta1 {seed['val_delta1']:.4f}) at epoch {seed['best_epoch']}")
    rmse, delta1 = summary["val_rmse"], summary["val_delta1"]
    print(f"over {len(summary['seeds'])} seeds (mean +- sample std): val_rmse {rmse['mean']:.4f} "
          f"+- {rmse['std']:.4f}, val_delta1 {delta1['mean']:.4f} +- {delta1['std']:.4f}; "
          f"written to {out_dir / 'seeds.json'}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out_dir = None
    seeds = getattr(args, "seeds", None)
    try:
        cfg = config_from_args(args)
        out_dir = cfg.resolved_out_dir
        resume, overwrite = getattr(args, "resume", False), getattr(args, "overwrite", False)
        saved = out_dir / "config.yaml"
        if resume and seeds is None and "config" not in vars(args) and saved.is_file():
            # Continue the run as it was configured; flags given now still override.
            args.config = str(saved)
            cfg = config_from_args(args)
        if seeds is None:
            trainer = train_run(cfg, out_dir, prepare_out_dir(out_dir, resume, overwrite))
        else:
            summary = train_seeds(cfg, out_dir, seeds, resume, overwrite)
    except (ConfigError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"error: training diverged: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if out_dir is None:  # interrupted before anything was written
            print("\ninterrupted", file=sys.stderr)
            return 130
        again = (f"python -m baseres.train --out {out_dir} --resume"
                 if seeds is None else "the same command with --resume")
        print(f"\ninterrupted; continue with: {again}", file=sys.stderr)
        return 130
    if seeds is not None:
        print_seed_summary(summary, out_dir)
        return 0
    print(f"done: best val_rmse {trainer.best['val_rmse']:.4f} at epoch {trainer.best['epoch']}; "
          f"results in {out_dir} (tensorboard --logdir {out_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
