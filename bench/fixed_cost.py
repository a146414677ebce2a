"""What a trial costs beyond its epochs, against one warm epoch: end to end, a search's time
per trial less its epochs; and where it goes, each part measured in a fresh process as a
trial's worker meets it (Python start, imports, the Trainer's set-up with the cached features
mapped, the first epoch's extra time over a warm one, Ray starting a worker for an actor).

The trials are generalization.yaml's seed_before point at the default size, 1 CPU, feature
cache warm. ``python -m bench.fixed_cost [--quick]`` prints the rows; ``measure`` returns them.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from bench import in_new_process, row, run_alone, run_search, study, write_study

GOAL = 0.15
POINT = "seed_before"  # the study's targets refer to it, so it stays among the baselines


def probe_trial(epochs: str) -> None:
    """Run in a fresh process: a trial's work without Ray, timed part by part (one JSON line)."""
    start = time.perf_counter()
    import tune.trainable  # noqa: F401  (ray, torch, optuna and baseres, as a trial imports)
    from baseres.hooks import Hook
    from baseres.trainer import Trainer
    from tune.space import load_study

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
    print(json.dumps({"imports": imports, "setup": marks[0] - start, "epochs": epoch_s}))


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
    epochs, many = (2, 2) if quick else (2, 4)
    with tempfile.TemporaryDirectory() as tmp:
        storage = Path(tmp)
        one_s, _ = timed_search(point_study("one", 1, epochs), storage)  # warms the cache
        many_s, search = timed_search(point_study("many", many, epochs), storage)
    # Ray's time between a trial's reports: a whole epoch (training, BatchNorm recalibration,
    # validation, checkpoint, report); the first also holds the trial's start inside Ray.
    warm = [r["time_this_iter_s"] for t in search.trials for r in t.rows[1:]]
    epoch_s = statistics.fmean(warm)
    per_trial = (many_s - one_s) / (many - 1)
    fixed = per_trial - epochs * epoch_s
    ratio = fixed / epoch_s

    start = time.perf_counter()
    parts = json.loads(in_new_process("bench.fixed_cost", "probe_trial", "3"))
    process_s = time.perf_counter() - start
    interpreter = process_s - parts["imports"] - parts["setup"] - sum(parts["epochs"])
    first_use = parts["epochs"][0] - statistics.fmean(parts["epochs"][1:])
    actor = float(in_new_process("bench.fixed_cost", "probe_actor"))
    where = (f"Python start and exit {interpreter:.1f} s, imports {parts['imports']:.1f} s, "
             f"Trainer set-up with data mapping {parts['setup']:.1f} s, first epoch's extra "
             f"{first_use:.1f} s, Ray actor start {actor:.1f} s")
    return [
        row("trial fixed cost / epoch", round(ratio, 2), "ratio", f"<= {GOAL}", ratio <= GOAL,
            f"{fixed:.1f} s per trial beyond its epochs ({many} sequential trials of {epochs} "
            f"epochs took {per_trial:.1f} s each more than 1, less {epochs} x {epoch_s:.1f} s "
            f"per warm epoch) vs a {epoch_s:.1f} s epoch; where it goes, each alone in a fresh "
            f"process: {where}; generalization.yaml's {POINT}, 1 CPU, cache warm"),
    ]


if __name__ == "__main__":
    run_alone(measure, "python -m bench.fixed_cost", __doc__)
