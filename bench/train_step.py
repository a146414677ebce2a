"""The training step on the default settings, variants side by side in one run: bf16 autocast
against fp32, channels_last against the default NCHW layout, torch.compile against eager (full
run only: compiling takes minutes), and what producing batches and recalibrating BatchNorm
cost next to training.

``python -m bench.train_step [--quick]`` prints the rows; ``measure`` returns them.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Iterator

import numpy as np
import torch

from baseres.config import TrainConfig
from baseres.data.cache import SplitArrays
from baseres.data.loader import BatchLoader
from baseres.data.synth import SynthParams
from baseres.losses import curriculum
from baseres.trainer import Trainer
from bench import row, run_alone, study

GOAL_PIPELINE = 0.05
GOAL_RECALIBRATION = 0.1  # of an epoch: what honest early val RMSE may cost


def _split(cfg: TrainConfig, n: int) -> SplitArrays:
    rng = np.random.default_rng(0)
    size = cfg.image_size
    return SplitArrays(features=rng.random((n, 2, size, size), dtype=np.float32),
                       depth=(rng.random((n, 1, size, size), dtype=np.float32) * 8 + 0.5))


class Step:
    """Training steps (Trainer.train_step: forward, backward, clipping, AdamW) of one config
    over fixed batches."""

    def __init__(self, cfg: TrainConfig, data: SplitArrays, compiled: bool = False):
        self.trainer = Trainer(cfg, data={"train": data, "val": data})
        if compiled:
            self.trainer.model = torch.compile(self.trainer.model)
        self.weights = curriculum(cfg, 0)
        loader = BatchLoader(data, cfg.batch_size, shuffle=True, seed=0)
        start = time.perf_counter()
        self.batches = list(loader)
        self.fetch_s_per_sample = (time.perf_counter() - start) / len(data)
        start = time.perf_counter()
        self.run(2)  # warm-up: allocator, autocast caches, compilation
        self.warmup_s = time.perf_counter() - start

    def run(self, steps: int) -> float:
        """samples/s over `steps` steps."""
        done = 0
        start = time.perf_counter()
        for step in range(steps):
            batch = self.batches[step % len(self.batches)]
            self.trainer.train_step(batch, self.weights)
            done += batch[0].shape[0]
        return done / (time.perf_counter() - start)


def interleaved(steps: dict[str, Step], count: int, rounds: int = 3) -> dict[str, float]:
    """samples/s of each variant, their runs interleaved so that drifts of this shared machine's
    speed fall on all of them alike."""
    times = {name: 0.0 for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            times[name] += 1 / step.run(count)
    return {name: rounds / total for name, total in times.items()}


def _recalibration_share(trainer: Trainer, samples_per_s: float) -> float:
    """Seconds of one BatchNorm recalibration / seconds of one default training epoch."""
    trainer.recalibrate_batchnorm(0)  # warm-up
    start = time.perf_counter()
    trainer.recalibrate_batchnorm(1)
    return (time.perf_counter() - start) * samples_per_s / SynthParams().num_train


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            del os.environ[name]
        else:
            os.environ[name] = saved


def measure(quick: bool) -> list[dict]:
    threads = 1
    torch.set_num_threads(threads)
    base = TrainConfig(num_threads=threads, progress=False)
    data = _split(base, base.batch_size * (4 if quick else 8))
    count = 4 if quick else 8
    steps = {"bf16": Step(base, data), "fp32": Step(base.replace(precision="fp32"), data),
             "nchw": Step(base.replace(channels_last=False), data)}
    with tempfile.TemporaryDirectory() as cache, _environment("TORCHINDUCTOR_CACHE_DIR", cache):
        if not quick:  # on an empty compile cache, as on a fresh machine or cluster node
            steps["compiled"] = Step(base, data, compiled=True)
        rates = interleaved(steps, count)
    shape = (f"C={base.base_channels}, {base.image_size}x{base.image_size}, batch "
             f"{base.batch_size}, {threads} thread, 3 x {count} steps each, interleaved")
    precision = rates["bf16"] / rates["fp32"]
    layout = rates["bf16"] / rates["nchw"]
    pipeline = steps["bf16"].fetch_s_per_sample * rates["bf16"]
    recalibration = _recalibration_share(steps["bf16"].trainer, rates["bf16"])
    rows = [
        row("bf16 / fp32 training step", round(precision, 2), "x",
            "> 1 to keep bf16 the default", precision > 1,
            f"{rates['bf16']:.0f} vs {rates['fp32']:.0f} samples/s, channels_last; {shape}"),
        row("channels_last / NCHW training step", round(layout, 2), "x",
            "> 1 to keep channels_last the default", layout > 1,
            f"{rates['bf16']:.0f} vs {rates['nchw']:.0f} samples/s, bf16; {shape}"),
        row("input pipeline / training step", round(pipeline, 4), "ratio",
            f"<= {GOAL_PIPELINE}", pipeline <= GOAL_PIPELINE,
            f"batches from the cached arrays vs bf16 steps; {shape}"),
        row("BN recalibration / training epoch", round(recalibration, 3), "ratio",
            f"<= {GOAL_RECALIBRATION}", recalibration <= GOAL_RECALIBRATION,
            f"re-estimating BatchNorm statistics over {base.bn_recalibration_samples} samples "
            f"before validation vs training an epoch of the synthetic set's "
            f"{SynthParams().num_train} samples; {shape}"),
    ]
    if "compiled" in rates:
        speedup = rates["compiled"] / rates["bf16"]
        saved_per_sample = 1 / rates["bf16"] - 1 / rates["compiled"]
        compile_s = steps["compiled"].warmup_s - steps["bf16"].warmup_s
        break_even = compile_s / saved_per_sample if saved_per_sample > 0 else math.inf
        trial_samples = study()["train"]["epochs"] * SynthParams().num_train
        rows.append(row(
            "torch.compile / eager training step", round(speedup, 2), "x",
            "keep eager unless compiling pays back within a trial", break_even > trial_samples,
            f"{rates['compiled']:.0f} vs {rates['bf16']:.0f} samples/s after compiling the "
            f"training step for {compile_s:.0f} s on an empty cache, which pays back after "
            f"{break_even:,.0f} samples; a trial of generalization.yaml trains "
            f"{trial_samples:,}, and its validation and the base freeze compile again; {shape}"))
    return rows


if __name__ == "__main__":
    run_alone(measure, "python -m bench.train_step", __doc__)
