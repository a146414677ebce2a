"""What a trial costs beyond its epochs, against one warm epoch: a search's time per trial
(Ray reuses its workers, so a trial's process is usually warm) less the same trial's Trainer.fit
in a warm process, both measured here; and, once per worker, what a fresh trial process pays
(Python start, imports, the Trainer's set-up, the first fit's extra time, Ray's actor start),
each part measured in a fresh process as a new worker meets it.

The trials are generalization.yaml's seed_before point at the default size, 1 CPU, feature
cache warm. Its base freezes after the warmup, so its later epochs cost less than its first:
the warm fit, not a later epoch, is what a trial's own work costs.
``python -m bench.fixed_cost [--quick]`` prints the rows; ``measure`` returns them.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from bench import in_new_process, row, run_alone, run_search, study, write_study

GOAL = 0.15
WARM_FITS = 3  # their median is a warm trial's own work
POINT = "seed_before"  # the study's targets refer to it, so it stays among the baselines


def probe_trial(epochs: str) -> None:
    """Run in a fresh process: a trial's work without Ray, timed (one JSON line): imports,
    set-up and epochs of the first fit, then the seconds of each of WARM_FITS more."""
    start = time.perf_counter()
    import tune.trainable  # noqa: F401  (ray, torch, optuna and baseres, as a trial imports)
    from baseres.hooks import Hook
    from baseres.trainer import Trainer
    from tune.study import load_study

    imports = time.perf_counter() - start
    marks = []

    class Marks(Hook):
        def on_fit_start(self, trainer):
            marks.append(time.perf_counter())

        def on_epoch_end(self, trainer, record):
            marks.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        spec_file = Path(tmp, "probe.yaml")
        write_study(point_study("probe", 1, int(epochs)), spec_file)
        spec = load_study(spec_file)
        cfg = spec.trial_config(spec.baselines[POINT]).replace(num_threads=1, device="cpu",
                                                               progress=False)
    start = time.perf_counter()
    Trainer(cfg, hooks=[Marks()]).fit(progress=False)
    epoch_s = [b - a for a, b in zip(marks, marks[1:])]
    warm = []
    for _ in range(WARM_FITS):
        warm_start = time.perf_counter()
        Trainer(cfg).fit(progress=False)
        warm.append(time.perf_counter() - warm_start)
    print(json.dumps({"imports": imports, "setup": marks[0] - start, "epochs": epoch_s,
                      "warm_fits": warm}))


def probe_actor() -> None:
    """Run in a fresh process: seconds for Ray to start an actor on a local Ray, the median of
    3 (what every trial pays once, unless Tune reuses its actor)."""
    import ray

    ray.init(address="local", num_cpus=1, include_dashboard=False, configure_logging=False,
             log_to_driver=False)

    @ray.remote(num_cpus=1)
    class Probe:
        def ready(self) -> bool:
            return True

    times = []
    for _ in range(3):
        start = time.perf_counter()
        actor = Probe.remote()
        ray.get(actor.ready.remote())
        times.append(time.perf_counter() - start)
        ray.kill(actor)
    print(statistics.median(times))


def point_study(name: str, trials: int, epochs: int) -> dict:
    """`trials` copies of the reference point, one after another, no early stopping."""
    point = study()["baselines"][POINT]
    names = [POINT] + [f"{POINT}_{i}" for i in range(2, trials + 1)]
    return study(name=name, num_samples=trials, max_concurrent_trials=1,
                 train={"epochs": epochs}, scheduler={"type": "none"},
                 baselines={n: dict(point) for n in names})


def timed_search(spec: dict, storage: Path):
    start = time.perf_counter()
    search = run_search(spec, storage)
    return time.perf_counter() - start, search


def measure(quick: bool) -> list[dict]:
    # Many short trials: the per-trial difference of two searches is averaged over many-1.
    epochs, many = (1, 3) if quick else (1, 8)
    with tempfile.TemporaryDirectory() as tmp:
        storage = Path(tmp)
        one_s, _ = timed_search(point_study("one", 1, epochs), storage)  # warms the cache
        many_s, _ = timed_search(point_study("many", many, epochs), storage)
    per_trial = (many_s - one_s) / (many - 1)

    start = time.perf_counter()
    parts = json.loads(in_new_process("bench.fixed_cost", "probe_trial", str(epochs)))
    process_s = time.perf_counter() - start
    warm_s = statistics.median(parts["warm_fits"])
    epoch_s = warm_s / epochs
    fixed = per_trial - warm_s
    ratio = fixed / epoch_s
    first_fit = parts["setup"] + sum(parts["epochs"])
    interpreter = process_s - parts["imports"] - first_fit - sum(parts["warm_fits"])
    actor = float(in_new_process("bench.fixed_cost", "probe_actor"))
    once = (f"Python start and exit {interpreter:.1f} s, imports {parts['imports']:.1f} s, "
            f"the first fit's extra over a warm one {first_fit - warm_s:.1f} s, Ray actor "
            f"start {actor:.1f} s")
    return [
        row("trial fixed cost / epoch", round(ratio, 2), "ratio", f"<= {GOAL}", ratio <= GOAL,
            f"{fixed:.1f} s per trial beyond its own work ({many} sequential trials of "
            f"{epochs} epoch(s) in a search took {per_trial:.1f} s each more than 1; the same "
            f"trial's Trainer.fit in a warm process {warm_s:.1f} s, median of {WARM_FITS}) vs "
            f"a {epoch_s:.1f} s epoch of that fit; once per worker, each part in a fresh "
            f"process: {once}; "
            f"generalization.yaml's {POINT}, 1 CPU, cache warm, workers reused"),
    ]


if __name__ == "__main__":
    run_alone(measure, "python -m bench.fixed_cost", __doc__)
