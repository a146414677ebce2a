"""Training: ``Trainer`` (fit -> run_epoch -> train_step -> process_batch -> compute_losses).

Every step returns a dict of named values, so the console line, metrics.jsonl, TensorBoard and
Ray Tune reporting all come from one per-epoch record, handed to the run's hooks
(baseres.hooks); the Trainer itself writes nothing.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from baseres.atomic import write_atomic
from baseres.config import ConfigError, TrainConfig, one_line
from baseres.data.batvision import DataError
from baseres.data.cache import SplitArrays, load_split, resolve_data_root
from baseres.data.loader import BatchLoader
from baseres.hooks import Hook
from baseres.losses import BaseResidualLoss, curriculum
from baseres.metrics import METRIC_NAMES, MetricAccumulator, per_image_metrics
from baseres.model import build_model

try:
    import resource
except ImportError:  # Windows: no getrusage
    resource = None

TRAIN_PROBE_SAMPLES = 256  # training samples scored each epoch for train_rmse


# TrainConfig keys that shape the model, its outputs or the data it sees: a checkpoint only
# continues a run that agrees on every one (the others, e.g. epochs, may change on resume).
RESUME_KEYS = ("model", "base_channels", "base_channel_divisor", "residual_range", "max_depth",
               "optimizer", "dataset", "audio_format", "image_size", "locations",
               "val_locations", "test_locations")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run cannot recover by itself."""


class CheckpointMismatch(ConfigError):
    """A checkpoint was saved by a run whose `key` differs from this run's."""

    def __init__(self, path: Path, key: str, saved: object, value: object) -> None:
        rule = f"{key} must equal the checkpoint's (it shapes the model or its data)"
        super().__init__(f"{path}: cannot resume: {rule}, but the checkpoint has "
                         f"{key}={saved!r} and this run {key}={value!r}", key, rule, value)
        self.path, self.saved = path, saved


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
    """Trains one config. Its epoch records reach the console, files or Ray only through the
    `hooks` its caller passes (the CLI's: baseres.hooks.default_hooks); none keeps the run in
    memory. `data`: these splits instead of cfg's data set."""

    def __init__(self, cfg: TrainConfig, *, data: dict[str, SplitArrays] | None = None,
                 hooks: Sequence[Hook] = ()):
        self.cfg = cfg
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        self.device = pick_device(cfg.device)
        seed_everything(cfg.seed)
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model = build_model(cfg).to(self.device, memory_format=self.memory_format)
        self.loss_fn = BaseResidualLoss(cfg)
        self.optimizer = self._make_optimizer()
        self.epoch = 0  # the next epoch to run
        self.best = {"val_rmse": math.inf, "epoch": -1}
        self.history: list[dict[str, float]] = []
        self.data = dict(data) if data is not None else None  # setup_data adds to it
        self.data_root: Path | None = None  # the folder the data came from, once loaded
        self.hooks = list(hooks)
        self.last_panel = None  # (outputs, depth) of the last validation's first batch

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
            self.data_root = root
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

    def saved_config(self) -> TrainConfig:
        """The config as saved next to the results: with the data folder the run read (for the
        synthetic set its name is the generator's digest), so a retrain can tell whether it
        sees the same data."""
        if self.data_root is None:
            return self.cfg
        return self.cfg.replace(extra={**self.cfg.extra,
                                       "data_root_resolved": str(self.data_root)})

    # ------------------------------------------------------------------ the loop
    def fit(self, progress: bool = True) -> dict[str, float]:
        """Train from `self.epoch` to cfg.epochs; returns the last epoch's record."""
        self.setup_data(progress=progress)
        if self.epoch == 0 and not self.history:
            self.model.init_depth_bias(mean_valid_depth(self.data["train"]))
        record: dict[str, float] = {}
        try:
            for hook in self.hooks:
                hook.on_fit_start(self)
            for epoch in range(self.epoch, self.cfg.epochs):
                record = {"epoch": epoch + 1, **self.run_epoch(epoch, progress)}
                self.recalibrate_batchnorm(epoch)
                values, self.last_panel = self.validate()
                record.update(values)
                self.epoch = epoch + 1
                if record["val_rmse"] < self.best["val_rmse"]:
                    self.best = {"val_rmse": record["val_rmse"], "epoch": epoch + 1}
                record["best_val_rmse"] = self.best["val_rmse"]
                self.history.append(record)
                for hook in self.hooks:
                    hook.on_epoch_end(self, record)
        finally:
            for hook in self.hooks:
                hook.close()
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

    def validate(self, split: str = "val") -> tuple[dict[str, float], tuple]:
        """Val metrics (prefixed val_), decomposition diagnostics, train_rmse on a fixed
        subset of the training samples, the split's learned-nothing reference, and the first
        batch's (outputs, depth) for the image panel. No val - train difference: with held-out
        places those are different rooms (tune.question measures memorisation paired)."""
        try:
            values, first = self.evaluate(self.data[split])
        except DataError:
            raise DataError(f"split {split!r} has no image with a valid depth pixel") from None
        record = {("val_" + k if k in METRIC_NAMES else k): v for k, v in values.items()}
        probe, _ = self.evaluate(self.data["train_probe"])
        record["train_rmse"] = probe["rmse"]
        record["mean_map_rmse"] = self.reference_rmse[split]
        return record, first

    def panel(self):
        """The last validation's first batch as a truth | final | base | residual image."""
        from baseres.viz import decomposition_panel

        outputs, gt = self.last_panel
        limit = self.cfg.max_depth * self.cfg.residual_range
        return decomposition_panel(outputs, gt, self.cfg.max_depth, limit)

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "epoch": self.epoch, "base_frozen": self.model.base_frozen,
                "best": dict(self.best), "history": list(self.history),
                "config": self.saved_config().to_dict()}

    def save_checkpoint(self, path: str | Path) -> None:
        # a crash mid-write never leaves a truncated checkpoint
        write_atomic(path, lambda tmp: torch.save(self.state(), tmp))

    def load_checkpoint(self, path: str | Path) -> None:
        """Continue from a checkpoint of this run; CheckpointMismatch if it was saved by a run
        of another shape (RESUME_KEYS), ConfigError if it cannot be read."""
        path = Path(path)
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except (OSError, RuntimeError, EOFError) as err:  # weights_only refusals stay loud
            raise ConfigError(f"{path}: unreadable checkpoint: {one_line(str(err))}") from None
        saved, current = state.get("config", {}), self.cfg.to_dict()
        for key in RESUME_KEYS:
            if key in saved and saved[key] != current[key]:
                raise CheckpointMismatch(path, key, saved[key], current[key])
        if state.get("base_frozen"):
            self.model.freeze_base()
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = int(state["epoch"])
        self.best = dict(state["best"])
        self.history = list(state["history"])


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
