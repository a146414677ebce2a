"""How fast the synthetic echo-room set is generated on one core, and how it looks.

``python -m bench.synth [--quick]`` prints the rows; ``measure`` returns them for the
project's benchmark runner. Torch is not involved: generation is numpy, soundfile and PIL.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from baseres.data import synth
from bench import row, run_alone

GOAL_SAMPLES_PER_S = 50.0
GOAL_INVALID = (0.05, 0.25)


@contextlib.contextmanager
def _one_core() -> Iterator[str]:
    """Pin this process to one CPU for the measurement (where the OS allows it)."""
    if not hasattr(os, "sched_setaffinity"):
        yield "not pinned (no sched_setaffinity)"
        return
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    os.sched_setaffinity(0, {cpu})
    try:
        yield f"pinned to cpu {cpu}"
    finally:
        os.sched_setaffinity(0, allowed)


def measure(quick: bool) -> list[dict]:
    count = 60 if quick else 300
    params = synth.SynthParams(num_train=count, num_val=0, num_test=0)
    with tempfile.TemporaryDirectory() as tmp, _one_core() as pinning:
        synth.make_sample(params, 0)  # first-call caches (chirp spectrum) untimed; the
        # other rooms are drawn inside the timed run, as a fresh generating process would
        start = time.perf_counter()
        root = synth.generate(Path(tmp) / "set", params, workers=1, progress=False)
        elapsed = time.perf_counter() - start
        invalid = float(np.mean([(np.load(p) == 0).mean() for p in root.glob("*/depth/*.npy")]))
    rate = count / elapsed
    setting = (f"{count} samples (poses) over {len(synth.locations(params))} rooms, "
               f"{params.depth_height}x{params.depth_width} depth, "
               f"{params.echo_rays} echo rays, files written, workers=1, {pinning}")
    return [
        row("synthetic generation", round(rate, 1), "samples/s",
            f">= {GOAL_SAMPLES_PER_S:g}", rate >= GOAL_SAMPLES_PER_S,
            setting),
        row("synthetic invalid depth", round(100 * invalid, 1), "%",
            f"{100 * GOAL_INVALID[0]:g} - {100 * GOAL_INVALID[1]:g}",
            GOAL_INVALID[0] <= invalid <= GOAL_INVALID[1],
            f"mean over the same {count} samples (the real V2 sample: 21.7 %)"),
    ]


if __name__ == "__main__":
    run_alone(measure, "python -m bench.synth", __doc__)
