"""GPU readiness, on a CUDA machine: the seed-size training step (C=64, 256x256, batch 64,
bf16) and a 2-trial search sharing one GPU at 0.5 GPU per trial, with samples/s and memory.

``python -m bench.gpu [--quick]``; without CUDA it prints one line saying it was skipped and
exits 0 (it is no part of ``python -m bench``, which runs on CPU machines).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from baseres.cli import run_command
from baseres.config import TrainConfig
from bench import run_search, study
from bench.train_step import Step, _split

SEED_SIZE = {"base_channels": 64, "image_size": 256, "batch_size": 64, "precision": "bf16"}


def step_rate(steps: int) -> tuple[float, float]:
    """samples/s of the seed-size training step and its peak GPU memory in GiB."""
    cfg = TrainConfig(**SEED_SIZE, device="cuda", progress=False)
    step = Step(cfg, _split(cfg, cfg.batch_size * 4))  # includes 2 warm-up steps
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    step.run(steps)
    torch.cuda.synchronize()  # the last step's kernels are done before the clock stops
    rate = steps * cfg.batch_size / (time.perf_counter() - start)
    return rate, torch.cuda.max_memory_allocated() / 2**30


class GpuMemory(threading.Thread):
    """Peak memory in use on GPU 0 while a search runs (its trials are other processes)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_mib = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            out = subprocess.run(["nvidia-smi", "--id=0", "--query-gpu=memory.used",
                                  "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True)
            if out.returncode == 0:
                self.peak_mib = max(self.peak_mib, float(out.stdout.split()[0]))


def shared_gpu_search(epochs: int) -> tuple[list[float], float]:
    """The study's two seed baselines at once on one GPU (0.5 each): each trial's samples/s
    and the GPU's peak memory in GiB."""
    seeds = {name: point for name, point in study()["baselines"].items()
             if name in ("seed_before", "seed_after")}  # the targets refer to seed_before
    spec = study(name="gpu", num_samples=2, max_concurrent_trials=2,
                 resources_per_trial={"cpu": 1, "gpu": 0.5}, scheduler={"type": "none"},
                 train={**SEED_SIZE, "epochs": epochs}, baselines=seeds)
    memory = GpuMemory()
    memory.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            search = run_search(spec, Path(tmp))
    finally:
        memory.done.set()
        memory.join()
    rates = [sum(r["samples_per_s"] for r in t.rows) / len(t.rows) for t in search.trials]
    return rates, memory.peak_mib / 1024


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer steps, 1 epoch")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    quick = args.quick
    if not torch.cuda.is_available():
        print("bench.gpu: skipped, no CUDA device (torch.cuda.is_available() is False)")
        return 0
    name = torch.cuda.get_device_name(0)
    rate, gib = step_rate(10 if quick else 50)
    print(f"training step on {name}: {rate:.0f} samples/s, peak {gib:.2f} GiB allocated; "
          f"C=64, 256x256, batch 64, bf16")
    rates, peak = shared_gpu_search(1 if quick else 2)
    print(f"2 trials at 0.5 GPU each on {name}: "
          f"{' + '.join(f'{r:.0f}' for r in rates)} = {sum(rates):.0f} samples/s, "
          f"GPU memory in use at most {peak:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
