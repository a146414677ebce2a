"""The training step on the default settings: bf16 autocast against fp32 (samples/s side by side
in one run, channels_last on both), and how long producing batches takes next to training.

``python -m bench.train_step [--quick]`` prints the rows; ``measure`` returns them.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from baseres.config import TrainConfig
from baseres.data.cache import SplitArrays
from baseres.data.loader import BatchLoader
from baseres.losses import curriculum
from baseres.train import Trainer
from bench import row, run_alone

GOAL_PIPELINE = 0.05


def _split(cfg: TrainConfig, n: int) -> SplitArrays:
    rng = np.random.default_rng(0)
    size = cfg.image_size
    return SplitArrays(features=rng.random((n, 2, size, size), dtype=np.float32),
                          depth=(rng.random((n, 1, size, size), dtype=np.float32) * 8 + 0.5))


def _step_rate(cfg: TrainConfig, data: SplitArrays, steps: int) -> tuple[float, float]:
    """(samples/s of forward+backward+AdamW, seconds spent producing batches per sample)."""
    trainer = Trainer(cfg, data={"train": data, "val": data})
    weights = curriculum(cfg, 0)
    loader = BatchLoader(data, cfg.batch_size, shuffle=True, seed=0)
    batches, fetch = [], 0.0
    start = time.perf_counter()
    for batch in loader:
        batches.append(batch)
    fetch = time.perf_counter() - start
    for batch in batches[:2]:  # warm-up: allocator, autocast caches
        trainer.process_batch(batch, weights)[1]["loss"].backward()
    start = time.perf_counter()
    done = 0
    for step in range(steps):
        batch = batches[step % len(batches)]
        loss = trainer.process_batch(batch, weights)[1]["loss"]
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
        done += batch[0].shape[0]
    return done / (time.perf_counter() - start), fetch / len(data)


def measure(quick: bool) -> list[dict]:
    threads = 1
    torch.set_num_threads(threads)
    base = TrainConfig(num_threads=threads, progress=False)
    data = _split(base, base.batch_size * (4 if quick else 8))
    steps = 6 if quick else 20
    rates = {p: _step_rate(base.replace(precision=p), data, steps) for p in ("fp32", "bf16")}
    ratio = rates["bf16"][0] / rates["fp32"][0]
    step_time = 1 / rates[base.precision][0]
    pipeline = rates[base.precision][1] / step_time
    shape = (f"C={base.base_channels}, {base.image_size}x{base.image_size}, batch "
             f"{base.batch_size}, {threads} thread, {steps} steps")
    return [
        row("bf16 / fp32 training step", round(ratio, 2), "x",
            "> 1 to keep bf16 the default", ratio > 1,
            f"{rates['bf16'][0]:.0f} vs {rates['fp32'][0]:.0f} samples/s; {shape}"),
        row("input pipeline / training step", round(pipeline, 4), "ratio",
            f"<= {GOAL_PIPELINE}", pipeline <= GOAL_PIPELINE,
            f"batches from the cached arrays vs {base.precision} steps; {shape}"),
    ]


if __name__ == "__main__":
    run_alone(measure, "python -m bench.train_step", __doc__)
