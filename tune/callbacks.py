"""Ray Tune callbacks of the search driver."""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import shutil
import signal
import sys
import time

from ray.tune import Callback

from tune.experiment import held_folder


class DiskGuard(Callback):
    """Stops the search as Ctrl-C does (Ray saves its state, the resume hint is printed) when
    the experiment's disk runs short, before trials fail one by one and a write is cut."""

    def __init__(self, min_free_bytes: int, every_s: float = 5.0):
        self.min_free, self.every_s, self.checked = min_free_bytes, every_s, 0.0

    def on_step_begin(self, iteration, trials, **info) -> None:
        if time.monotonic() - self.checked < self.every_s:
            return
        self.checked = time.monotonic()
        folder = held_folder()  # this driver's, also after a resume of a moved folder
        free = shutil.disk_usage(folder).free
        if free < self.min_free:
            self.checked = math.inf  # once
            print(f"error: {folder}: {free // 2**20} MiB free space is left, below the "
                  f"{self.min_free // 2**20} MiB a search needs: stopping it; free space, "
                  "then resume", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGINT)


class ReturnFreedMemory(Callback):
    """Hands the memory the driver freed back to the system after each trial (glibc's
    malloc_trim): a long search's driver otherwise kept what it had once needed for Ray's
    state snapshots, which serialise every trial each time (about 38 KB a trial), and for each
    trial's results (bench.soak: 135 MiB more after 300 trials without, 110-113 with).
    Elsewhere, a no-op."""

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
