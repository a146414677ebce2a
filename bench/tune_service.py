"""What running inside the search service costs a trial: Tune overhead against a plain
Trainer.fit of the same config, scaling to two concurrent 1-CPU trials, and peak memory of a
trial and of the driver.

The trials are the default study's reference config (generalization.yaml's seed_after
baseline) started through ``python -m tune.run`` as a user would, feature cache warm.
``python -m bench.tune_service [--quick]`` prints the rows; ``measure`` returns them.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

from baseres.config import TrainConfig
from baseres.hooks import default_hooks
from baseres.trainer import Trainer
from bench import in_new_process, row, run_alone, run_search, study, write_study
from tune.study import load_study

REFERENCE = "seed_after"
GOAL_OVERHEAD = 0.95
GOAL_SCALING = 1.8
GOAL_TRIAL_GIB = 1.5
GOAL_DRIVER_GIB = 1.0


def reference_study(name: str, copies: int, epochs: int) -> dict:
    """`copies` identical trials of the reference config, all at once, no early stopping."""
    point = study()["baselines"][REFERENCE]
    return study(name=name, num_samples=copies, max_concurrent_trials=copies,
                 train={"epochs": epochs}, scheduler={"type": "none"}, targets={},
                 baselines={f"{REFERENCE}_{i + 1}": point for i in range(copies)})


def reference_config(storage: Path, threads: int):
    """The reference trial's exact TrainConfig, as its trial builds it."""
    spec_file = storage / "reference.yaml"
    write_study(reference_study("reference", 1, 1), spec_file)
    spec = load_study(spec_file)
    return spec.trial_config(spec.baselines[f"{REFERENCE}_1"]).replace(
        num_threads=threads, device="cpu", progress=False)


def trial_rate(trial) -> float:
    """A Tune trial's samples/s over its whole life: set-up, epochs, validation, reports."""
    samples = sum(r["samples_per_s"] * r["epoch_time_s"] for r in trial.rows)
    return samples / trial.rows[-1]["time_total_s"]


def time_plain_fit(config_file: str, out_dir: str) -> None:
    """Run in a fresh process, as ``python -m baseres.train`` runs: print the samples/s of
    Trainer construction, data mapping, epochs and checkpoints together."""
    cfg = TrainConfig.from_yaml(config_file)
    start = time.perf_counter()
    trainer = Trainer(cfg, hooks=default_hooks(cfg, Path(out_dir)))
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.fit(progress=False)
    samples = len(trainer.data["train"].features) * cfg.epochs
    print(samples / (time.perf_counter() - start))


def plain_rate(cfg: TrainConfig, out_dir: Path) -> float:
    """A trial's imports happen before its clock starts, so the plain run gets a fresh process
    with its imports done too (a warm process would skip first-use costs a trial pays)."""
    out_dir.mkdir(parents=True)
    config_file = out_dir / "bench-config.yaml"
    cfg.to_yaml(config_file)
    return float(in_new_process("bench.tune_service", "time_plain_fit", str(config_file),
                                str(out_dir)))


def measure(quick: bool) -> list[dict]:
    # This shared machine's speed drifts by 10-20 % from one 10-second epoch to the next, so
    # plain, single and pair runs alternate and the figures are ratios of their means.
    rounds, epochs = (1, 1) if quick else (2, 3)
    plain, single, pair, drivers, peaks = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        storage = Path(tmp)
        cfg = reference_config(storage, threads=1).replace(epochs=epochs)
        Trainer(cfg).setup_data(progress=False)  # the cold cache is the cache-sharing figure
        for number in range(1, rounds + 1):
            plain.append(plain_rate(cfg, storage / f"plain-{number}"))
            (trial,) = run_search(reference_study(f"single-{number}", 1, epochs), storage).trials
            single.append(trial_rate(trial))
            search = run_search(reference_study(f"pair-{number}", 2, epochs), storage)
            pair.append(sum(trial_rate(t) for t in search.trials))
            drivers.append(search.driver_peak_mib)
            peaks += [r["peak_rss_mb"] for t in [trial, *search.trials] for r in t.rows]
    overhead = statistics.fmean(single) / statistics.fmean(plain)
    scaling = statistics.fmean(pair) / statistics.fmean(single)
    trial_gib = max(peaks) / 1024
    driver_gib = max(drivers) / 1024
    what = (f"generalization.yaml's {REFERENCE} (C={cfg.base_channels}, {cfg.image_size}px), "
            f"{epochs} epochs, 1 CPU per trial, {rounds} round(s) alternating")

    def listed(values: list[float]) -> str:
        return "/".join(f"{v:.1f}" for v in values)

    return [
        row("Tune overhead", round(overhead, 3), "ratio", f">= {GOAL_OVERHEAD}",
            overhead >= GOAL_OVERHEAD,
            f"samples/s of a whole trial (set-up, validation, checkpoints included) in Ray Tune "
            f"{listed(single)} vs Trainer.fit {listed(plain)}; {what}"),
        row("core scaling", round(scaling, 2), "x", f">= {GOAL_SCALING} on 2 cores",
            scaling >= GOAL_SCALING,
            f"2 concurrent trials {listed(pair)} samples/s in all vs 1 trial {listed(single)}; "
            f"{what}"),
        row("trial peak RSS", round(trial_gib, 2), "GiB", f"<= {GOAL_TRIAL_GIB}",
            trial_gib <= GOAL_TRIAL_GIB,
            f"largest peak_rss_mb a trial reported (its Ray worker process); {what}"),
        row("driver peak RSS", round(driver_gib, 2), "GiB", f"<= {GOAL_DRIVER_GIB}",
            driver_gib <= GOAL_DRIVER_GIB,
            "VmHWM of the python -m tune.run process of a 2-trial search (Ray's servers "
            "and workers excluded), feature cache warm"),
    ]


if __name__ == "__main__":
    run_alone(measure, "python -m bench.tune_service", __doc__)
