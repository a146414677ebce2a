"""A seeded chaos run: one smoke-sized search during which a schedule kills, at random moments
after new progress, a trial's worker process (Ray retries the trial from its checkpoint) or the
driver with its whole local Ray (then ``--resume``, as a user would), and the figure: the chaos
run's wall time against the same search uninterrupted, side by side.

The schedule's seed is printed first, so a failure replays with ``CHAOS_SEED=<seed>``.
tests/scenarios/test_chaos.py runs one schedule and checks what must survive it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import REPO, row, run_alone, run_search, study, write_study

KINDS = ("worker", "driver")
MAX_KILLS_PER_TRIAL = 2  # Ray retries a trial twice (FailureConfig); a third kill fails it


def chaos_study(name: str, epochs: int) -> dict:
    """smoke.yaml with longer trials, so that kills land in the middle of them."""
    return study("smoke.yaml", name=name, train={"epochs": epochs})


@dataclass
class ChaosRun:
    seed: int
    experiment: Path
    seconds: float
    kills: list[str] = field(default_factory=list)  # "worker pid P (trial T)" or "driver"
    log: Path | None = None


def _rows(folder: Path) -> list[dict]:
    from tune.experiment import read_rows

    return read_rows(folder / "result.json")


def _progress(experiment: Path) -> int:
    return sum(len(_rows(t)) for t in experiment.glob("trial_*"))


def _running_worker(experiment: Path, killed: Counter) -> tuple[int, str] | None:
    """The worker of the most recently reported trial (its pid and trial id), unless that
    trial was already killed as often as Ray retries it."""
    latest = sorted(experiment.glob("trial_*/result.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(latest):
        rows = _rows(path.parent)
        if rows and killed[rows[-1]["trial_id"]] < MAX_KILLS_PER_TRIAL:
            return rows[-1]["pid"], rows[-1]["trial_id"]
    return None


def _start(command: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    with log.open("a") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env,
                                start_new_session=True)


def _inside_the_next_epoch(experiment: Path, driver: subprocess.Popen, seconds: float) -> None:
    """Wait `seconds`, or less: until the next epoch's row lands. Each kill then comes before
    the search's next epoch (give or take the rows of one poll), so a fast search, its epochs
    shorter than the wait, no longer finished before the schedule's last kill (seen: 4 of 5):
    the baselines' full-budget epochs alone are several per kill."""
    rows, until = _progress(experiment), time.monotonic() + seconds
    while time.monotonic() < until and _progress(experiment) <= rows and driver.poll() is None:
        time.sleep(0.05)


def chaos_search(spec: dict, storage: Path, seed: int, kills: int = 5,
                 timeout_s: float = 1800) -> ChaosRun:
    """Run `spec` as a user would while a `seed`ed schedule makes `kills` kills."""
    rng = random.Random(seed)
    print(f"chaos schedule seed {seed} (replay with CHAOS_SEED={seed})", flush=True)
    storage.mkdir(parents=True, exist_ok=True)
    name = spec["name"]
    study_file = storage / f"{name}.yaml"
    write_study(spec, study_file)
    experiment, log = storage / name, storage / f"{name}.log"
    command = [sys.executable, "-m", "tune.run", "--space", str(study_file), "--storage",
               str(storage), "--name", name]
    run = ChaosRun(seed, experiment, 0.0, log=log)
    killed: Counter = Counter()
    start = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    driver = _start(command, log)
    try:
        while len(run.kills) < kills:
            seen = _progress(experiment)
            while _progress(experiment) <= seen and driver.poll() is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no progress within {timeout_s} s; see {log}")
                time.sleep(0.2)
            if driver.poll() is not None:
                break  # the search finished before the schedule did
            _inside_the_next_epoch(experiment, driver, rng.uniform(0.1, 2.0))
            if driver.poll() is not None:
                break
            kind = rng.choice(KINDS)
            worker = _running_worker(experiment, killed) if kind == "worker" else None
            if worker is not None:
                pid, trial = worker
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue  # gone already: not a kill
                killed[trial] += 1
                run.kills.append(f"worker pid {pid} (trial {trial})")
                continue
            os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started
            driver.wait(timeout=120)
            run.kills.append("driver")
            driver = _start([sys.executable, "-m", "tune.run", "--resume", str(experiment)],
                            log)
        code = driver.wait(timeout=max(1.0, deadline - time.monotonic()))
        if code != 0:
            raise RuntimeError(f"the search ended with exit status {code}; see {log}")
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    run.seconds = time.perf_counter() - start
    return run


def measure(quick: bool) -> list[dict]:
    import tempfile

    epochs = 6 if quick else 12
    seed = int(os.environ.get("CHAOS_SEED", random.SystemRandom().randrange(2**31)))
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        run_search(chaos_study("calm", epochs), Path(folder) / "calm")
        calm = time.perf_counter() - start
        chaos = chaos_search(chaos_study("chaos", epochs), Path(folder) / "chaos", seed)
    ratio = chaos.seconds / calm
    return [row("chaos run / the same search uninterrupted", round(ratio, 2), "x", "<= 2.0",
                ratio <= 2.0, f"smoke.yaml, {epochs} epochs; {len(chaos.kills)} kills "
                f"(seed {seed}: {', '.join(k.split(' (')[0] for k in chaos.kills)}); "
                f"{chaos.seconds:.0f} s against {calm:.0f} s")]


if __name__ == "__main__":
    run_alone(measure, "python -m bench.chaos", __doc__)
