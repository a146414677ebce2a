"""``python -m tune.confirm EXPERIMENT_DIR --seeds S [--top K]``: the study's question again,
with S fresh seeds, and (with --top) the best searched configs as further arms.

The same room-fold design as the question (tune.folds): every arm trains one model per fold
of places at the full budget, per seed, and each place's held-out poses are scored seen and
unseen. The seeds are new (after the question's own), so the search's and the question's runs
are not counted again. Each comparison is paired by place (seeds averaged within a place), a
Student-t test over places: the question's contrast, the positive control's place gap, each
extra arm and each searched config against the first value's arm. Their p-values are
Holm-corrected together; a comparison that finds nothing states the smallest effect it could
have found. The test split is never read.

Writes ``<experiment>/confirm.json`` once every run has finished; an interrupted
confirmation writes nothing final, exits 130 and prints the command that resumes it (the same
--seeds and --top: another plan is refused while one is stored).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from baseres.cli import (
    DefaultsHelpFormatter,
    Interrupted,
    OneLineParser,
    bounded_int,
    run_command,
)
from baseres.errors import UserError
from tune.cluster import (
    check_trial_folders,
    drop_ray_tensorboard_logger,
    keep_ray_on_localhost,
    start_ray,
    stop_ray,
)
from tune.errors import UsageError
from tune.experiment import Experiment, Location, driving, read_rows
from tune.folds import (
    QUESTION_DIR,
    fold_points,
    place_records,
    read_runs,
    run_folds,
    unfinished,
)
from tune.question import (
    ALPHA,
    CONTROL,
    arm_measure,
    contrast,
    detectable_effect,
    holm,
)
from tune.records import (
    CONFIRM_VERSION,
    Confirmation,
    SeedComparison,
    confirm_file,
    write_json,
)
from tune.study import BASELINE_KEY

CONFIRM_DIR = "confirm"
PLAN_FILE = "plan.json"
TEST = ("paired over places (seeds averaged within a place): Student-t test and 95 % interval, "
        f"Holm-corrected over the comparisons at {ALPHA}")


class Incomplete(UserError):
    """The confirmation's runs did not all finish (an interrupt, or runs that errored)."""


def fresh_seeds(question, count: int) -> list[int]:
    """`count` seeds after the question's own."""
    first = max(question.seeds) + 1
    return list(range(first, first + count))


def confirm_arms(experiment: Experiment, top: int) -> dict[Any, dict[str, Any]]:
    """The question's arms, then the `top` best searched configs as arms named by trial id."""
    arms = dict(experiment.spec.question.arms())
    searched = [t for t in experiment.trials() if t.best and not t.baseline][:top]
    for trial in searched:
        arms[trial.trial_id] = {k: v for k, v in trial.params.items() if k != BASELINE_KEY}
    return arms


def check_plan(folder: Path, plan: dict[str, Any], args_text: str) -> None:
    """Store the plan of a new confirmation; refuse another plan than the stored one."""
    path = folder / PLAN_FILE
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(path, plan)
        return
    except (OSError, ValueError) as err:
        raise UsageError(f"{path}: unreadable ({err}); delete {folder} to plan again") from None
    if stored != plan:
        raise UsageError(f"{folder}: a confirmation with --seeds {len(stored.get('seeds', []))} "
                         f"--top {stored.get('top')} is stored there, but this asks for "
                         f"{args_text}; resume it with those, or delete {folder} to plan "
                         "another")


def comparisons(records, question, extra: list[Any]) -> list[SeedComparison]:
    """The question's contrast, the control's place gap, each further arm against the first
    value's arm; with Holm-adjusted p-values and each outcome in words."""
    wide, narrow = question.values
    found = {r.arm for r in records}
    tests = [(f"{question.parameter} {wide} - {narrow} (place gap)",
              contrast(records, wide, narrow).effect)]
    if CONTROL in found:
        tests.append(("positive control: U-Net place gap", arm_measure(records, CONTROL)))
    tests += [(f"{arm} - {question.parameter} {wide} (place gap)",
               contrast(records, arm, wide).effect) for arm in extra if arm in found]
    out = []
    for (name, effect), adjusted in zip(tests, holm([e.p_value for _, e in tests])):
        detectable = detectable_effect(effect)
        if math.isfinite(adjusted) and adjusted < ALPHA:
            outcome = "above 0" if effect.mean > 0 else "below 0"
        else:
            outcome = f"inconclusive at this power (could detect {detectable:.3f} m)"
        out.append(SeedComparison(name, effect.mean, (effect.lo, effect.hi), effect.n,
                              effect.p_value, detectable, adjusted, outcome))
    return out


def confirm(folder: str | Path, seeds: int, top: int, address: str | None = None,
            verbose: bool = False) -> Confirmation:
    experiment = Experiment(folder)
    spec, question = experiment.spec, experiment.spec.question
    with driving(experiment.folder, "tune.confirm"):  # never beside a running search
        if question is None:
            raise UsageError(f"{experiment.folder / 'study.yaml'}: the study has no question: "
                             "tune.confirm repeats the question's fold design with fresh seeds")
        runs_so_far = read_runs(experiment.folder / QUESTION_DIR)
        if not runs_so_far:
            raise UsageError(f"{experiment.folder}: the question's runs have not started; "
                             "finish the search first (python -m tune.run --resume)")
        folds = _folds_of(runs_so_far, question)
        arms = confirm_arms(experiment, top)
        new_seeds = fresh_seeds(question, seeds)
        points = fold_points(question, folds, new_seeds, arms)
        out = experiment.folder / CONFIRM_DIR
        check_plan(out, {"seeds": new_seeds, "top": top, "arms": [str(a) for a in arms]},
                   f"--seeds {seeds} --top {top}")
        print(f"confirming: {len(arms)} arms x {len(folds)} folds x {seeds} seeds = "
              f"{len(points)} runs of {spec.epochs} epochs"
              + _estimate(runs_so_far, len(points), spec.max_concurrent_trials)
              + f", in {out}", flush=True)
        start_ray(address, str(experiment.folder), spec.resources)
        try:
            run_folds(spec, Location(str(experiment.folder), CONFIRM_DIR), points, verbose)
        finally:
            stop_ray()  # before the command's last line: no worker output comes after it
        runs = read_runs(out)
        missing = unfinished(runs, len(points))
        if missing:
            raise Incomplete(f"the confirmation is incomplete ({len(points) - missing} of "
                             f"{len(points)} runs finished)")
        records = place_records(runs)
        extra = [a for a in arms if a not in (*question.values, CONTROL)]
        report = Confirmation(CONFIRM_VERSION, str(experiment.folder), TEST, new_seeds, top,
                              len(runs), len({r.place for r in records}),
                              comparisons(records, question, extra),
                              [r._asdict() for r in records])
        write_json(confirm_file(experiment.folder), report)
    return report


def _folds_of(runs, question) -> tuple[tuple[str, ...], ...]:
    """The folds the question's runs used (a fold count is resolved there)."""
    by_number = {r.point["fold"]: tuple(r.point["values"]["locations"]) for r in runs}
    if isinstance(question.folds, tuple):
        return question.folds
    return tuple(by_number[n] for n in sorted(by_number))


def _estimate(question_runs, count: int, concurrent: int) -> str:
    """About how long `count` runs take, from the question's runs' own times."""
    times = [rows[-1]["time_total_s"] for run in question_runs
             if (rows := read_rows(run.folder / "result.json")) and "time_total_s" in rows[-1]]
    if not times:
        return ""
    minutes = sum(times) / len(times) * count / max(concurrent, 1) / 60
    return f", about {minutes:.0f} min at the question's pace ({concurrent} at a time)"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m tune.confirm", description=__doc__,
                           formatter_class=DefaultsHelpFormatter)
    parser.add_argument("experiment", metavar="EXPERIMENT_DIR", help="experiment folder")
    parser.add_argument("--seeds", type=bounded_int("seeds", 1), required=True,
                        help="fresh seeds: each adds arms x folds runs")
    parser.add_argument("--top", type=bounded_int("top", 0), default=0,
                        help="best searched configs to add as arms")
    parser.add_argument("--address", help="join a running Ray cluster (default: a local Ray)")
    parser.add_argument("--verbose", action="store_true",
                        help="also print Ray's own status tables and per-run results")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    drop_ray_tensorboard_logger()
    if args.address is None:
        keep_ray_on_localhost()
    resume = (f"resume with: python -m tune.confirm {args.experiment} --seeds {args.seeds} "
              f"--top {args.top}")
    try:
        check_trial_folders()
        report = confirm(args.experiment, args.seeds, args.top, args.address, args.verbose)
    except Incomplete as err:  # Ray stopped the runs on Ctrl-C and returned, or runs errored
        raise Interrupted(resume, what=str(err)) from None
    except KeyboardInterrupt:
        raise Interrupted(resume) from None
    from tune.summary import print_summary

    print_summary(Path(report.experiment))
    return 0


if __name__ == "__main__":
    sys.exit(main())
