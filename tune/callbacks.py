"""Ray Tune callbacks of the search driver."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import os
import shutil
import signal
import time
from pathlib import Path

from ray.tune import Callback
from ray.tune.result import AUTO_RESULT_KEYS, DEBUG_METRICS, DONE, SHOULD_CHECKPOINT

from tune.experiment import DIVERGED, REASON, HoldsFolder
from tune.study import StudySpec

logger = logging.getLogger(__name__)


class DiskGuard(HoldsFolder, Callback):
    """Stops the search as Ctrl-C does (Ray saves its state, the resume hint is printed) when
    the experiment's disk runs short, before trials fail one by one and a write is cut.
    It watches the disk of the folder its driver holds (also after a resume of a moved one)."""

    def __init__(self, min_free_bytes: int, folder: Path, every_s: float = 5.0):
        self.min_free, self.every_s, self.checked = min_free_bytes, every_s, 0.0
        self.hold(folder)

    def on_step_begin(self, iteration, trials, **info) -> None:
        if time.monotonic() - self.checked < self.every_s:
            return
        self.checked = time.monotonic()
        folder = self.folder
        free = shutil.disk_usage(folder).free
        if free < self.min_free:
            self.checked = math.inf  # once
            logger.error("error: %s: %s MiB free space is left, below the %s MiB a search needs: "
                         "stopping it; free space, then resume", folder, free // 2**20,
                         self.min_free // 2**20)
            os.kill(os.getpid(), signal.SIGINT)


class ReturnFreedMemory(Callback):
    """Hands the memory the driver freed back to the system after each trial (glibc's
    malloc_trim): a long search's driver otherwise keeps what it once needed for Ray's state
    snapshots, which serialise every trial each time, and for each trial's results
    (bench.soak; docs/performance.md). Elsewhere, a no-op."""

    def __init__(self):
        name = ctypes.util.find_library("c")
        self.trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        if self.trim is not None:
            self.trim(0)

    def __getstate__(self) -> dict:  # Ray saves its callbacks; a C function is no state
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()


class KeepSearchKeys(Callback):
    """Ray keeps running statistics (max, min, mean, last 5 and 10) of every number in a
    trial's results, in the driver and in every snapshot of the experiment, which serialises
    all trials each time: the driver's memory grows with every key (bench.soak;
    docs/performance.md). After the loggers have written the whole record (result.json,
    progress.csv, Weights & Biases; Ray lets callbacks change a result in place), this one
    leaves Ray's copy the keys that Ray, the searcher and the scheduler read. Last in the list
    of callbacks."""

    RAY_KEYS = frozenset({*AUTO_RESULT_KEYS, *DEBUG_METRICS, DONE, SHOULD_CHECKPOINT,
                          "experiment_tag"})

    def __init__(self, spec: StudySpec):
        targets = {metric for level in spec.targets.values() for metric in level}
        # a divergence and its words: how the searcher tells one (on_trial_complete)
        self.kept = self.RAY_KEYS | {"epoch", spec.metric, DIVERGED, REASON, *targets}

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        for key in [k for k in result if k not in self.kept]:
            del result[key]
