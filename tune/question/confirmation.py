"""The question confirmed with fresh seeds: the same room-fold design in a folder of its own
(``confirm/``, ``confirm-2/``, ...), its plan stored first so that an interrupted
confirmation resumes with the same seeds, and the answer pooled over every finished seed.
``tune.confirm`` drives it and records the outcome (confirm.json)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from baseres.errors import UserError
from tune.cluster import start_ray, stop_ray
from tune.console_text import say
from tune.errors import UsageError
from tune.experiment import Experiment, Location
from tune.question.answer import Answer
from tune.question.plan import (
    CONFIRM_DIR,
    check_plan,
    design_folders,
    fold_points,
    fresh_seeds,
    pending_folder,
    resolve_folds,
    stored_plan,
)
from tune.question.result import question_result
from tune.question.runs import (
    FoldRun,
    read_runs,
    rescore_designs,
    run_folds,
    run_minutes,
    unfinished,
)
from tune.study import arm_key


class Incomplete(UserError):
    """The confirmation's runs did not all finish (an interrupt, or runs that errored)."""


class Confirmed(NamedTuple):
    seeds: list[int]  # the seeds this confirmation added
    answer: Answer  # pooled over every finished seed
    runs: list[FoldRun]  # this confirmation's


def seeds_used(folder: Path) -> set[int]:
    """Every seed of the question's and the confirmations' runs, and of their plans."""
    used = set()
    for design in design_folders(folder):
        used |= {run.point.seed for run in read_runs(design)}
        used |= set(stored_plan(design).get("seeds", []))
    return used


def confirm_question(experiment: Experiment, seeds: int, address: str | None,
                     verbose: bool) -> Confirmed:
    """`seeds` fresh seeds of the question's design, run (or resumed) in the pending
    confirmation's folder; the caller holds the experiment's driver lock."""
    spec, question = experiment.spec, experiment.spec.question
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
                               "arms": [arm_key(a) for a in arms], "folds": len(folds)},
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
        run_folds(spec, Location(str(experiment.folder), design.name),
                  [p.config() for p in points], verbose)
    finally:
        stop_ray()  # before the command's last line: no worker output comes after it
    runs = read_runs(design)
    missing = unfinished(runs, len(points))
    if missing:
        raise Incomplete(f"the confirmation is incomplete ({len(points) - missing} of "
                         f"{len(points)} runs finished)")
    return Confirmed(plan["seeds"], question_result(experiment.folder, spec).answer, runs)
