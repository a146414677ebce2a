"""``python -m tune.confirm EXPERIMENT_DIR --seeds S``: more seeds for the study's question.

The same room-fold design as the question (tune.folds): every arm trains one model per fold
of places at the full budget, per seed, and each place's held-out poses are scored seen and
unseen. The seeds are new (after every seed the experiment has used), and each confirmation
runs in a folder of its own (``confirm/``, ``confirm-2/``, ...). The answer pools every
finished seed, the question's and each confirmation's (tune.question: a crossed places x
seeds analysis, one Holm family for the contrast, the positive control and each extra arm);
``confirm.json`` records the pooled comparisons and the seeds this confirmation added. The
summary's planner prints the command that reaches the study's target half-width. The test
split is never read.

An interrupted confirmation writes nothing final, exits 130 and prints the command that
resumes it (the same --seeds: another plan is refused while one is unfinished).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from baseres.cli import (
    DefaultsHelpFormatter,
    Interrupted,
    OneLineParser,
    bounded_int,
    command_line,
    run_command,
)
from baseres.errors import UserError
from tune.cluster import (
    check_trial_folders,
    drop_ray_tensorboard_logger,
    keep_ray_on_localhost,
    start_ray,
)
from tune.errors import UsageError
from tune.experiment import Experiment, Location, driving
from tune.folds import (
    CONFIRM_DIR,
    PLAN_FILE,
    design_folders,
    fold_points,
    place_records,
    plan_runs,
    question_result,
    read_runs,
    resolve_folds,
    run_folds,
    run_minutes,
    stored_plan,
    unfinished,
)
from tune.intervals import ALPHA, CROSSED
from tune.question import Comparison
from tune.records import (
    CONFIRM_VERSION,
    Confirmation,
    SeedComparison,
    confirm_file,
    write_json,
)

SEED_LIMIT = 2**32  # every seed a run takes is below it (numpy refuses larger)
TEST = (f"paired per place and seed: {CROSSED}; 95 % intervals, Holm-corrected over the "
        f"comparisons at {ALPHA}")


class Incomplete(UserError):
    """The confirmation's runs did not all finish (an interrupt, or runs that errored)."""


def fresh_seeds(used: set[int], count: int) -> list[int]:
    """`count` seeds after every one used so far (below SEED_LIMIT, the lowest unused where
    the next ones would not fit)."""
    start = max(used) + 1 if used else 1
    if start + count > SEED_LIMIT:
        start = 0
    seeds: list[int] = []
    while len(seeds) < count:
        if start not in used:
            seeds.append(start)
        start += 1
    return seeds


def seeds_used(folder: Path) -> set[int]:
    """Every seed of the question's and the confirmations' runs, and of their plans."""
    used = set()
    for design in design_folders(folder):
        used |= {run.point["seed"] for run in read_runs(design)}
        used |= set(stored_plan(design).get("seeds", []))
    return used


def pending_folder(folder: Path) -> Path:
    """The unfinished confirmation to resume, else the folder of a new one."""
    designs = design_folders(folder)[1:]
    for design in designs:
        plan = stored_plan(design)
        if not plan or unfinished(read_runs(design), plan_runs(plan)):
            return design
    number = len(designs) + 1
    return folder / (CONFIRM_DIR if number == 1 else f"{CONFIRM_DIR}-{number}")


def check_plan(design: Path, plan: dict, seeds: int, experiment: Path) -> dict:
    """The stored plan of an unfinished confirmation (which --seeds must match), or `plan`,
    stored now."""
    stored = stored_plan(design)
    if not stored:
        design.mkdir(parents=True, exist_ok=True)
        write_json(design / PLAN_FILE, plan)
        return plan
    count = len(stored.get("seeds", []))
    if count != seeds:
        raise UsageError(f"{design}: an unfinished confirmation with --seeds {count} is stored "
                         f"there, but this asks for --seeds {seeds}; resume it with "
                         f"{command_line('python -m tune.confirm', experiment, '--seeds', count)}"
                         f", or delete {design} to plan another")
    return stored


def comparison(test: Comparison) -> SeedComparison:
    effect = test.interval
    if test.decided:
        outcome = "above 0" if effect.mean > 0 else "below 0"
    else:
        outcome = f"inconclusive at this power (could detect {test.detectable:.3f} m)"
    return SeedComparison(test.name, effect.mean, (effect.lo, effect.hi), effect.places,
                          effect.seeds, effect.p_value, test.detectable, test.p_holm, outcome)


def confirm(folder: str | Path, seeds: int, address: str | None = None,
            verbose: bool = False) -> Confirmation:
    experiment = Experiment(folder)
    spec, question = experiment.spec, experiment.spec.question
    with driving(experiment.folder, "tune.confirm"):  # never beside a running search
        if question is None:
            raise UsageError(f"{experiment.folder / 'study.yaml'}: the study has no question: "
                             "tune.confirm adds seeds to a study's question")
        question_runs = read_runs(design_folders(experiment.folder)[0])
        if not question_runs:
            raise UsageError(f"{experiment.folder}: the question's runs have not started; "
                             "finish the search first (python -m tune.run --resume)")
        from baseres.data.cache import resolve_data_root

        folds = resolve_folds(question, spec.fixed,
                              resolve_data_root(spec.trial_config(spec.low_corner())))
        design = pending_folder(experiment.folder)
        arms = question.arms()
        plan = check_plan(design, {"seeds": fresh_seeds(seeds_used(experiment.folder), seeds),
                                   "arms": [str(a) for a in arms], "folds": len(folds)},
                          seeds, experiment.folder)
        points = fold_points(question, folds, plan["seeds"], arms)
        minutes = run_minutes(question_runs)
        pace = (f", about {minutes * len(points) / max(spec.max_concurrent_trials, 1):.0f} "
                f"min at the question's pace ({spec.max_concurrent_trials} at a time)"
                if minutes is not None else "")
        print(f"confirming: {len(arms)} arms x {len(folds)} folds x {seeds} seeds "
              f"{plan['seeds']} = {len(points)} runs of {spec.epochs} epochs{pace}, in "
              f"{design}", flush=True)
        start_ray(address, str(experiment.folder), spec.resources)
        run_folds(spec, Location(str(experiment.folder), design.name), points, verbose)
        runs = read_runs(design)
        missing = unfinished(runs, len(points))
        if missing:
            raise Incomplete(f"the confirmation is incomplete ({len(points) - missing} of "
                             f"{len(points)} runs finished)")
        pooled = question_result(experiment.folder, spec).answer
        tests = [pooled.primary, *([pooled.control] if pooled.control else []),
                 *pooled.secondary]
        report = Confirmation(CONFIRM_VERSION, str(experiment.folder), TEST, plan["seeds"],
                              pooled.seeds, len(runs), pooled.verdict,
                              [comparison(t) for t in tests],
                              [r._asdict() for r in place_records(runs)])
        write_json(confirm_file(experiment.folder), report)
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m tune.confirm", description=__doc__,
                           formatter_class=DefaultsHelpFormatter)
    parser.add_argument("experiment", metavar="EXPERIMENT_DIR", help="experiment folder")
    parser.add_argument("--seeds", type=bounded_int("seeds", 1), required=True,
                        help="fresh seeds: each adds arms x folds runs")
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
    resume = "resume with: " + command_line("python -m tune.confirm", args.experiment,
                                            "--seeds", args.seeds)
    try:
        check_trial_folders()
        report = confirm(args.experiment, args.seeds, args.address, args.verbose)
    except Incomplete as err:  # Ray stopped the runs on Ctrl-C and returned, or runs errored
        raise Interrupted(resume, what=str(err)) from None
    except KeyboardInterrupt:
        raise Interrupted(resume) from None
    from tune.summary import print_summary

    print_summary(Path(report.experiment))
    return 0


if __name__ == "__main__":
    sys.exit(main())
