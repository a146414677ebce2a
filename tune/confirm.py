"""``python -m tune.confirm EXPERIMENT_DIR --seeds S [--search]``: more seeds, pooled.

A study with a question gets more seeds for it; a study without one (or ``--search``) gets
the search's winners re-trained (tune.recheck: the top configs that ran the full budget, the
best baseline and the U-Net) with S more fresh seeds in ``recheck-2/``, ..., each searched
config against the best baseline, paired by seed, Holm-corrected.

The same room-fold design as the question (tune.question.runs): every arm trains one model per fold
of places at the full budget, per seed, and each place's held-out poses are scored seen and
unseen. The seeds are new (after every seed the experiment has used), and each confirmation
runs in a folder of its own (``confirm/``, ``confirm-2/``, ...). The answer pools every
finished seed, the question's and each confirmation's (tune.question.answer: a crossed places x
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
    hide_ray_resume_hint,
    keep_ray_on_localhost,
    quiet_ray_console,
    start_ray,
    stop_ray,
)
from tune.console_text import say
from tune.errors import UsageError
from tune.experiment import Experiment, Location, driving
from tune.json_files import write_json
from tune.question.answer import Comparison
from tune.question.intervals import ALPHA, CROSSED, detectable_effect
from tune.question.runs import (
    CONFIRM_DIR,
    PLAN_FILE,
    design_folders,
    fold_points,
    fresh_seeds,
    place_records,
    plan_runs,
    question_result,
    read_runs,
    rescore_designs,
    resolve_folds,
    run_folds,
    run_minutes,
    stored_plan,
    unfinished,
)
from tune.recheck import (
    RECHECK_DIR,
    SEEDS_METHOD,
    better_than_baseline,
    read_recheck,
    recheck_arms,
    recheck_folders,
    recheck_result,
    run_recheck,
    search_seed,
)
from tune.report.records import (
    CONFIRM_VERSION,
    Confirmation,
    SeedComparison,
    confirm_file,
)

TEST = (f"paired per place and seed: {CROSSED}; 95 % intervals, Holm-corrected over the "
        f"comparisons at {ALPHA}")


class Incomplete(UserError):
    """The confirmation's runs did not all finish (an interrupt, or runs that errored)."""


def seeds_used(folder: Path) -> set[int]:
    """Every seed of the question's and the confirmations' runs, and of their plans."""
    used = set()
    for design in design_folders(folder):
        used |= {run.point["seed"] for run in read_runs(design)}
        used |= set(stored_plan(design).get("seeds", []))
    return used


def pending_folder(folder: Path, designs: list[Path], name: str, finished) -> Path:
    """The unfinished confirmation among `designs` to resume (`finished(design)`: its runs
    that finished), else the folder of a new one (name, name-2, ...)."""
    for design in designs:
        plan = stored_plan(design)
        if not plan or finished(design) < plan_runs(plan):
            return design
    number = len(designs) + 1
    return folder / (name if number == 1 else f"{name}-{number}")


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
            verbose: bool = False, search: bool = False) -> Confirmation:
    experiment = Experiment(folder)
    spec, question = experiment.spec, experiment.spec.question
    with driving(experiment.folder, "tune.confirm"):  # never beside a running search
        if question is None or search:
            return confirm_search(experiment, seeds, address, verbose)
        rescore_designs(experiment.folder)
        question_runs = read_runs(design_folders(experiment.folder)[0])
        if not question_runs:
            raise UsageError(f"{experiment.folder}: the question's runs have not started; "
                             "finish the search first (python -m tune.run --resume)")
        from baseres.data.cache import resolve_data_root

        folds = resolve_folds(question, spec.fixed,
                              resolve_data_root(spec.trial_config(spec.low_corner())))
        design = pending_folder(experiment.folder, design_folders(experiment.folder)[1:],
                                CONFIRM_DIR, lambda d: sum(r.places is not None
                                                           for r in read_runs(d)))
        arms = question.arms()
        plan = check_plan(design, {"seeds": fresh_seeds(seeds_used(experiment.folder), seeds),
                                   "arms": [str(a) for a in arms], "folds": len(folds)},
                          seeds, experiment.folder)
        points = fold_points(question, folds, plan["seeds"], arms)
        minutes = run_minutes(question_runs)
        pace = (f", about {minutes * len(points) / max(spec.max_concurrent_trials, 1):.0f} "
                f"min at the question's pace ({spec.max_concurrent_trials} at a time)"
                if minutes is not None else "")
        say(f"confirming: {len(arms)} arms x {len(folds)} folds x {seeds} seeds "
            f"{plan['seeds']} = {len(points)} runs of {spec.epochs} epochs{pace}, in "
            f"{design}")
        start_ray(address, str(experiment.folder), spec.resources, verbose)
        try:
            run_folds(spec, Location(str(experiment.folder), design.name), points, verbose)
        finally:
            stop_ray()  # before the command's last line: no worker output comes after it
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


def confirm_search(experiment: Experiment, seeds: int, address: str | None,
                   verbose: bool) -> Confirmation:
    """The search's winners re-trained with `seeds` more fresh seeds (tune.recheck), pooled
    with every earlier re-check: each searched config against the best baseline."""
    spec, folder = experiment.spec, experiment.folder
    trials = experiment.trials()
    arms = recheck_arms(trials, spec, spec.recheck.top)
    if not arms:
        raise UsageError(f"{folder}: no trial ran the full budget yet; finish the search first "
                         f"({command_line('python -m tune.run --resume', folder)})")
    folders = recheck_folders(folder)
    design = pending_folder(folder, folders, RECHECK_DIR, lambda d: sum(
        run.value is not None for run in read_recheck([d], spec.max_t)))
    used = {s for f in folders for s in stored_plan(f).get("seeds", [])}
    plan = check_plan(design, {"arms": [a.name for a in arms], "folds": 1,
                               "seeds": fresh_seeds(used | {search_seed(spec)}, seeds)},
                      seeds, folder)
    start_ray(address, str(folder), spec.resources, verbose)
    try:
        complete = run_recheck(spec, Location.of(str(folder)), plan["seeds"], design.name,
                               verbose)
    finally:
        stop_ray()  # before the command's last line: no worker output comes after it
    if not complete:
        raise Incomplete("the re-check is incomplete")
    result = recheck_result(folder, spec, trials)
    comparisons = [SeedComparison(
        f"{row.name} - {result.best_baseline} (best val RMSE, paired by seed)",
        row.versus_best_baseline.mean,
        (row.versus_best_baseline.lo, row.versus_best_baseline.hi), 0,
        row.versus_best_baseline.seeds, row.versus_best_baseline.p_value,
        detectable_effect(row.versus_best_baseline), row.p_holm,
        ("below the baseline" if better_than_baseline(row) else "not shown better"))
        for row in result.rows if row.versus_best_baseline is not None]
    report = Confirmation(CONFIRM_VERSION, str(folder), f"{SEEDS_METHOD}; Holm over the "
                          "searched configs", plan["seeds"], result.seeds, result.runs, None,
                          comparisons, [])
    write_json(confirm_file(folder), report)
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m tune.confirm", description=__doc__,
                           formatter_class=DefaultsHelpFormatter)
    parser.add_argument("experiment", metavar="EXPERIMENT_DIR", help="experiment folder")
    parser.add_argument("--seeds", type=bounded_int("seeds", 1), required=True,
                        help="fresh seeds: each adds arms x folds runs")
    parser.add_argument("--search", action="store_true",
                        help="re-train the search's winners and baselines with the fresh seeds "
                        "(what a study without a question does) instead of the question's arms")
    parser.add_argument("--address", help="join a running Ray cluster (default: a local Ray)")
    parser.add_argument("--verbose", action="store_true",
                        help="also print Ray's own status tables, per-run results and what "
                        "its workers print")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    drop_ray_tensorboard_logger()
    quiet_ray_console(args.verbose)
    hide_ray_resume_hint()
    if args.address is None:
        keep_ray_on_localhost()
    resume = "resume with: " + command_line("python -m tune.confirm", args.experiment,
                                            "--seeds", args.seeds)
    try:
        check_trial_folders()
        report = confirm(args.experiment, args.seeds, args.address, args.verbose, args.search)
    except Incomplete as err:  # Ray stopped the runs on Ctrl-C and returned, or runs errored
        raise Interrupted(resume, what=str(err)) from None
    except KeyboardInterrupt:
        raise Interrupted(resume) from None
    from tune.summary import print_summary

    print_summary(Path(report.experiment))
    return 0


if __name__ == "__main__":
    sys.exit(main())
