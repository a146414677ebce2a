"""Search efficiency: how many epochs the shipped policy, random search with ASHA early
stopping, needs to reach the best val RMSE that random search without early stopping reaches
with its whole budget, as a fraction of random's total epochs. Same space (generalization.yaml's),
same trial count, the same seeded sampler on both sides: ASHA is the one knob that differs.

Sized for `make bench` on 2 cores: a smaller model (C=8, 32x32 inputs) on a smaller synthetic
set (400 train, 200 val samples). ``python -m bench.search_efficiency [--quick]`` prints the
rows.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from baseres.data.synth import SynthParams, ensure_synthetic
from bench import row, run_alone, run_search, study
from tune.experiment import diverged

GOAL = 1 / 3
DATA = SynthParams(num_train=400, num_val=200, num_test=0)
TRAIN = {"image_size": 32, "base_channels": 8, "batch_size": 16}
ASHA = {"type": "asha", "grace_period": 1, "reduction_factor": 3}
TOLERANCE = 0.02  # of random's best: about the run-to-run spread of one config's result


def search_study(name: str, root: Path, trials: int, epochs: int, seed: int,
                 early_stopping: bool) -> dict:
    return study(
        name=name, num_samples=trials, max_concurrent_trials=2, baselines={}, targets={},
        data={"dataset": "synthetic", "root": str(root)}, train={**TRAIN, "epochs": epochs},
        sampler={"type": "random", "seed": seed},
        scheduler=ASHA if early_stopping else {"type": "none"})


def epoch_reports(trials) -> list[dict]:
    """Every epoch any trial reported, in the order they happened (a divergence report is no
    epoch)."""
    rows = [r for t in trials for r in t.rows if not diverged(r)]
    return sorted(rows, key=lambda r: (r["timestamp"], r["trial_id"], r["training_iteration"]))


def epochs_to_reach(trials, target: float) -> int | None:
    """Epochs the search had spent when a report first reached `target` (None: never)."""
    for spent, report in enumerate(epoch_reports(trials), start=1):
        if report["val_rmse"] <= target:
            return spent
    return None


def best_rmse(trials) -> float:
    return min((r["val_rmse"] for r in epoch_reports(trials)), default=math.inf)


def _fraction(spent: int | None, budget: int) -> float:
    return spent / budget if spent is not None else math.inf


def measure(quick: bool) -> list[dict]:
    seeds, trials, epochs = ((0,), 6, 6) if quick else ((0, 1, 2), 12, 9)
    root = ensure_synthetic(DATA, progress=False)
    exact, close, notes = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            plain = run_search(search_study(f"random-{seed}", root, trials, epochs, seed, False),
                               Path(tmp)).trials
            asha = run_search(search_study(f"random-asha-{seed}", root, trials, epochs, seed,
                                           True), Path(tmp)).trials
            budget, target = len(epoch_reports(plain)), best_rmse(plain)
            spent = epochs_to_reach(asha, target)
            exact.append(_fraction(spent, budget))
            close.append(_fraction(epochs_to_reach(asha, target * (1 + TOLERANCE)), budget))
            notes.append(f"seed {seed}: {spent if spent is not None else 'never'}/{budget} "
                         f"(random best {target:.3f} m, random+ASHA best {best_rmse(asha):.3f} m "
                         f"in {len(epoch_reports(asha))} epochs)")
    setting = (f"random+ASHA (grace {ASHA['grace_period']}, factor {ASHA['reduction_factor']}) vs "
               f"random without early stopping, {trials} trials of {epochs} epochs each, "
               f"C={TRAIN['base_channels']}, {TRAIN['image_size']}px, "
               f"{DATA.num_train}/{DATA.num_val} samples")
    ratio, loose = sum(exact) / len(exact), sum(close) / len(close)
    return [
        row("search efficiency", round(ratio, 3), "ratio", f"<= {GOAL:.3f}", ratio <= GOAL,
            f"epochs spent to reach random's best val RMSE / random's epochs; {setting}; "
            + "; ".join(notes)),
        row(f"search efficiency within {TOLERANCE:.0%}", round(loose, 3), "ratio",
            f"<= {GOAL:.3f} (same goal, looser target)", loose <= GOAL,
            f"as above, to come within {TOLERANCE:.0%} of random's best (about the spread of "
            f"one config's result under different float rounding); per seed "
            + ", ".join(f"{value:.3f}" for value in close)),
    ]


if __name__ == "__main__":
    run_alone(measure, "python -m bench.search_efficiency", __doc__)
