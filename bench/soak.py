"""Soak: one search of many tiny trials through ``python -m tune.run``: the driver's memory
over the search, the experiment folder's and the Optuna journal's size, and how long
``python -m tune.summary`` takes on the result.

Trials are smoke.yaml's (C=8, 32 px, the smallest image size; 2 epochs, ASHA) on one room of the
synthetic set. The full run is 300 trials; ``python -m bench.soak [--quick]`` prints the rows;
``measure`` returns them.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import REPO, row, run_alone, run_search, study
from tune.experiment import JOURNAL_FILE

TRIALS, QUICK_TRIALS = 300, 30
GOAL_GROWTH_MIB = 100
PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20


def soak_study(trials: int) -> dict:
    """One training room and one validation room: the trials' fixed costs dominate, as in a
    long search of small trials."""
    return study("smoke.yaml", name="soak", num_samples=trials, train={"epochs": 2},
                 data={"locations": ["Office_1", "Office_3", "Office_4"],
                       "val_locations": ["Office_3"], "test_locations": ["Office_4"]})


def children(pid: int) -> list[int]:
    found = []
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in listing.read_text().split()]
    return found


class DriverWatch(threading.Thread):
    """Samples, once a second, the tune.run process this one started: (seconds, resident MiB,
    trial folders so far)."""

    def __init__(self, experiment: Path):
        super().__init__(daemon=True)
        self.experiment = experiment
        self.samples: list[tuple[float, float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self.done.wait(1.0):
            for pid in children(os.getpid()):
                try:
                    if b"tune.run" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                        continue
                    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
                except (OSError, IndexError):
                    continue
                trials = len(list(self.experiment.glob("trial_*")))
                self.samples.append((time.monotonic() - start, pages * PAGE_MIB, trials))


def folder_mib(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def soak(trials: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        storage = Path(tmp)
        watch = DriverWatch(storage / "soak")
        watch.start()
        start = time.perf_counter()
        try:
            search = run_search(soak_study(trials), storage)
        finally:
            watch.done.set()
            watch.join()
        search_s = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tune.summary", str(search.experiment)],
                       cwd=REPO, capture_output=True, check=True)
        summary_s = time.perf_counter() - start
        folder = folder_mib(search.experiment)
        journal = (search.experiment / JOURNAL_FILE).stat().st_size / 2**20
    finished = len(search.trials)
    # Growth after warm-up: from the first trial's end (Ray, Optuna, the first results in
    # memory) to the most the driver held in the last quarter of the search.
    settled = [s for s in watch.samples if s[2] >= 2]
    base = settled[0][1]
    tail = [s[1] for s in settled if s[0] >= 0.75 * settled[-1][0]]
    growth = max(tail) - base
    held = statistics.median(tail) - base  # what it keeps, between Ray's state snapshots
    per_100 = 100 * growth / max(1, settled[-1][2] - settled[0][2])
    projected = per_100 * (TRIALS - settled[0][2]) / 100
    scale = (f"{finished} trials" if finished >= TRIALS else
             f"{finished} trials, projected linearly to {TRIALS}: {projected:.0f} MiB")
    what = (f"smoke.yaml, 2 epochs, C=8, 32 px, one training room, 2 at a time; "
            f"{finished} trials in {search_s / 60:.1f} min")
    growth_at = growth if finished >= TRIALS else projected
    return [
        row("soak: driver memory growth", round(growth_at), "MiB",
            f"<= {GOAL_GROWTH_MIB} over {TRIALS} trials", growth_at <= GOAL_GROWTH_MIB,
            f"resident memory of the tune.run process {base:.0f} MiB after its first trials, "
            f"at most {max(tail):.0f} MiB in the last quarter ({per_100:.0f} MiB per 100 "
            f"trials; {scale}), its median there {held:+.0f} MiB from the start; peak "
            f"{search.driver_peak_mib:.0f} MiB; {what}"),
        row("soak: experiment folder", round(folder, 1), "MiB", "(recorded)", True,
            f"{folder / finished * 1024:.0f} KiB per trial (checkpoints, events, results); "
            f"journal {journal * 1024:.0f} KiB ({journal / finished * 2**20:.0f} B per "
            f"trial); {what}"),
        row("soak: tune.summary time", round(summary_s, 1), "s", "(recorded)", True,
            f"python -m tune.summary on the soak's folder, process start included "
            f"({summary_s / finished * 1000:.0f} ms per trial); {what}"),
    ]


def measure(quick: bool) -> list[dict]:
    return soak(QUICK_TRIALS if quick else TRIALS)


if __name__ == "__main__":
    run_alone(measure, "python -m bench.soak", __doc__)
