"""``python -m tune.confirm EXPERIMENT_DIR --seeds S [--top K]``: one search is one sample, so
re-train every baseline and the top-K searched configs at the study's full epoch budget with S
fresh seeds, as one Ray run (every core busy, resumable), and say which differences from
``seed_before`` exceed the seed-to-seed spread.

The seeds are new (the study's seed + 1 ... + S): the search's own run picked the winner, and
counting it again would favour the winner. Each config's figures are the mean and sample std
over seeds of its best epoch (lowest val RMSE): val RMSE, delta1, the train/val gap, and the
test figures when the experiment has been evaluated (tune.evaluate). The test is Welch's t-test
(two-sided, unequal variances) on the per-seed best val RMSE against seed_before's, at
p < 0.05; with few seeds it detects only large differences. Writes ``<experiment>/confirm.json``;
the summary's verdict uses it. Run it again after an interruption: it resumes.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from baseres.cli import OneLineParser
from baseres.errors import UserError
from tune.cluster import (
    check_trial_folders,
    drop_ray_tensorboard_logger,
    keep_ray_on_localhost,
    start_ray,
)
from tune.errors import UsageError
from tune.experiment import (
    Experiment,
    TrialSummary,
    confirm_file,
    evaluation_file,
    finite,
    read_rows,
    write_json,
)
from tune.space import BASELINE_KEY
from tune.summary import print_summary

CONFIRM_DIR = "confirm"
REFERENCE = "seed_before"  # what the seed's claim is measured against
ALPHA = 0.05
LABEL_KEY = "confirms"  # point key naming the config a confirmation run repeats


def confirm_points(experiment: Experiment, seeds: int, top: int) -> list[dict[str, Any]]:
    """One trial config per (config, seed): every baseline, then the top searched configs."""
    first = experiment.spec.fixed.get("seed", 0)
    points = []
    for trial in experiment.baselines_and_top(top):
        for seed in range(first + 1, first + 1 + seeds):
            points.append({**trial.params, "seed": seed, LABEL_KEY: trial.label})
    return points


def confirm_trial(config: dict[str, Any], fixed: dict[str, Any]) -> None:
    """A search trial of the point, without its label (not a TrainConfig key)."""
    from tune.trainable import train_trial

    train_trial({k: v for k, v in config["point"].items() if k != LABEL_KEY}, fixed)


def run_confirmation(experiment: Experiment, points: list[dict[str, Any]]) -> None:
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig, Tuner, grid_search

    from tune.trainable import build_trainable, trial_callbacks, trial_dirname, trial_files_sync

    spec = experiment.spec
    trainable = build_trainable(spec, spec.fixed, confirm_trial)
    path = experiment.folder / CONFIRM_DIR
    if Tuner.can_restore(str(path)):
        print(f"resuming the confirmation in {path}", flush=True)
        tuner = Tuner.restore(str(path), trainable=trainable, resume_errored=True)
    else:
        tuner = Tuner(
            trainable, param_space={"point": grid_search(points)},
            tune_config=TuneConfig(trial_dirname_creator=trial_dirname, reuse_actors=True),
            run_config=RunConfig(
                name=CONFIRM_DIR, storage_path=str(experiment.folder), callbacks=trial_callbacks(),
                checkpoint_config=CheckpointConfig(num_to_keep=1,
                                                   checkpoint_score_attribute=spec.metric,
                                                   checkpoint_score_order=spec.mode),
                failure_config=FailureConfig(max_failures=2), sync_config=trial_files_sync()))
    tuner.fit()


def confirmation_runs(experiment: Experiment) -> list[TrialSummary]:
    runs = []
    for folder in sorted((experiment.folder / CONFIRM_DIR).glob("trial_*")):
        params_file = folder / "params.json"
        if not params_file.is_file():
            continue
        point = json.loads(params_file.read_text())["point"]
        runs.append(TrialSummary(folder.name.removeprefix("trial_"), folder, point,
                                 read_rows(folder / "result.json"), "unknown"))
    return runs


def _stats(values: list[float]) -> dict[str, float]:
    values = [v for v in values if finite(v)]
    if not values:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return {"mean": statistics.mean(values), "std": std, "n": len(values)}


def welch(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of Welch's t-test; NaN when it cannot be computed (fewer than two
    values a side, or no spread at all)."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return math.nan
    result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.pvalue)


def summarise(experiment: Experiment, test: dict[str, Any] | None) -> dict[str, Any]:
    runs = [r for r in confirmation_runs(experiment) if r.best]
    configs: dict[str, list[TrialSummary]] = {}
    for run in runs:
        configs.setdefault(run.params[LABEL_KEY], []).append(run)
    reference = next((group for group in configs.values()
                      if group[0].params.get(BASELINE_KEY) == REFERENCE), [])
    reference_rmse = [r.best_val_rmse for r in reference]
    out = {}
    for label, group in configs.items():
        rmse = [r.best_val_rmse for r in group]
        entry = {"baseline": group[0].params.get(BASELINE_KEY),
                 "model": group[0].params.get("model", "base_residual"),
                 "seeds": sorted(r.params["seed"] for r in group),
                 "val_rmse": _stats(rmse),
                 "val_delta1": _stats([r.best.get("val_delta1") for r in group]),
                 "gap": _stats([r.best.get("gap") for r in group])}
        if test:
            for column in test["columns"]:
                entry[f"test_{column}_rmse"] = _stats(
                    [test["runs"][r.trial_id][column]["rmse"] for r in group
                     if r.trial_id in test["runs"]])
        if entry["baseline"] != REFERENCE and reference_rmse:
            p = welch(rmse, reference_rmse)
            difference = statistics.mean(rmse) - statistics.mean(reference_rmse)
            entry["against_seed_before"] = {
                "difference": difference, "p_value": p,
                "exceeds_seed_spread": bool(p < ALPHA) if math.isfinite(p) else None}
        out[label] = entry
    return {"experiment": str(experiment.folder), "test": f"Welch's t-test, p < {ALPHA}",
            "runs": len(runs), "configs": out}


def score_on_test(experiment: Experiment) -> dict[str, Any] | None:
    """When the experiment's test split has been read (tune.evaluate), score every confirmation
    run on it as well; None otherwise (confirmation alone never reads the test split)."""
    from tune.evaluate import score_trial

    path = evaluation_file(experiment.folder, "test")
    if not path.is_file():
        return None
    columns = json.loads(path.read_text())["columns"]
    scores = {}
    for run in confirmation_runs(experiment):
        if run.best:
            scores[run.trial_id] = score_trial(run, "test")
    return {"columns": columns, "runs": scores}


def confirm(folder: str | Path, seeds: int, top: int, address: str | None = None
            ) -> dict[str, Any]:
    experiment = Experiment(folder)
    points = confirm_points(experiment, seeds, top)
    if not points:
        raise UsageError(f"{experiment.folder}: no trial has a finite val_rmse to confirm")
    configs = len(points) // seeds
    print(f"confirming {configs} configs x {seeds} seeds = {len(points)} runs of "
          f"{experiment.spec.max_t} epochs in {experiment.folder / CONFIRM_DIR}", flush=True)
    start_ray(address, str(experiment.folder), experiment.spec.resources)
    run_confirmation(experiment, points)
    report = summarise(experiment, score_on_test(experiment))
    write_json(confirm_file(experiment.folder), report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m tune.confirm", description=__doc__)
    parser.add_argument("experiment", metavar="EXPERIMENT_DIR", help="experiment folder")
    parser.add_argument("--seeds", type=int, required=True, help="seeds per config (>= 2)")
    parser.add_argument("--top", type=int, default=2,
                        help="searched configs to confirm besides every baseline")
    parser.add_argument("--address", help="join a running Ray cluster (default: a local Ray)")
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error(f"argument --seeds: `seeds >= 2` must hold (a spread needs two), but got "
                     f"seeds={args.seeds}")
    if args.top < 0:
        parser.error(f"argument --top: `top >= 0` must hold, but got top={args.top}")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    drop_ray_tensorboard_logger()
    if args.address is None:
        keep_ray_on_localhost()
    try:
        check_trial_folders()
        report = confirm(args.experiment, args.seeds, args.top, args.address)
        print_summary(Path(report["experiment"]))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted; resume with: python -m tune.confirm {args.experiment} "
              f"--seeds {args.seeds} --top {args.top}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
