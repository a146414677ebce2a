"""``python -m tune.confirm EXPERIMENT_DIR --seeds S [--search]``: more seeds, pooled.

A study with a question gets more seeds for it; a study without one (or ``--search``) gets
the search's winners re-trained (tune.recheck: the top configs that ran the full budget, the
best baseline and the U-Net) with S more fresh seeds in ``recheck-2/``, ..., each searched
config against the best baseline, paired by seed, Holm-corrected.

The same room-fold design as the question (tune.question): every arm trains one model per
fold of places at the full budget, per seed, and each place's held-out poses are scored seen and
unseen. The seeds are new (after every seed the experiment has used), and each confirmation
runs in a folder of its own (``confirm/``, ``confirm-2/``, ...). The answer pools every
finished seed, the question's and each confirmation's (tune.question: a crossed places x seeds
analysis, one Holm family for the contrast, the positive control and each extra arm);
``confirm.json`` records the pooled comparisons and the seeds this confirmation added. The
summary's planner prints the command that reaches the study's target half-width. The test
split is never read.

An interrupted confirmation writes nothing final, exits 130 and prints the command that
resumes it (the same --seeds: another plan is refused while one is unfinished).
"""

from __future__ import annotations

import argparse
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
from tune.cluster import (
    check_trial_folders,
    prepare_ray,
    start_ray,
    stop_ray,
)
from tune.errors import UsageError
from tune.experiment import Experiment, Location, driving
from tune.json_files import write_json
from tune.question.answer import Comparison
from tune.question.confirmation import Incomplete, confirm_question
from tune.question.intervals import ALPHA, CROSSED, detectable_effect
from tune.question.plan import check_plan, fresh_seeds, pending_folder, stored_plan
from tune.question.result import place_records
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
    with driving(experiment.folder, "tune.confirm"):  # never beside a running search
        if experiment.spec.question is None or search:
            return confirm_search(experiment, seeds, address, verbose)
        confirmed = confirm_question(experiment, seeds, address, verbose)
        pooled = confirmed.answer
        tests = [pooled.primary, *([pooled.control] if pooled.control else []),
                 *pooled.secondary]
        report = Confirmation(CONFIRM_VERSION, str(experiment.folder), TEST, confirmed.seeds,
                              pooled.seeds, len(confirmed.runs), pooled.verdict,
                              [comparison(t) for t in tests],
                              [r._asdict() for r in place_records(confirmed.runs)])
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
    prepare_ray(args.address, args.verbose)
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
