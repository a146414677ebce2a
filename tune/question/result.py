"""The question's result, read from an experiment folder: the per-place records of every
finished seed, the question's and each confirmation's, pooled into one answer, with the
confirmation that would bring the contrast to its target half-width."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from baseres.cli import command_line
from tune.numbers import finite
from tune.question.answer import CONTROL, Answer, PlaceRecord, Plan, answer
from tune.question.places import PLACES_FILE
from tune.question.plan import QUESTION_DIR, design_folders, planned_in, planned_runs
from tune.question.runs import FoldRun, read_runs, run_minutes
from tune.study import Arm, StudySpec, arm_key


def place_records(runs: list[FoldRun]) -> list[PlaceRecord]:
    """Per place, arm and seed with every fold finished: the seen model's scores and the mean
    of the unseen models' on the place's held-out poses."""
    groups: dict[tuple[Arm, int], dict[int, FoldRun]] = {}
    for run in runs:
        if run.places is not None:
            groups.setdefault((run.point.arm, run.point.seed), {})[run.point.fold] = run
    records = []
    for (arm, seed), by_fold in groups.items():
        first = next(iter(by_fold.values()))
        if len(by_fold) < first.point.folds:
            continue  # a fold of this arm and seed has not finished
        for place in first.point.places:
            scores = {fold: run.places.get(place) for fold, run in by_fold.items()}
            if not all(isinstance(s, dict) and finite(s.get("val_rmse"))
                       for s in scores.values()):
                continue  # a place a run did not score, or scored NaN (a diverged model)
            seen = [(fold, s) for fold, s in scores.items() if s.get("seen")]
            unseen = [s["val_rmse"] for s in scores.values() if not s.get("seen")]
            if len(seen) != 1 or not unseen or not finite(seen[0][1].get("train_rmse")):
                continue
            fold, scored = seen[0]
            records.append(PlaceRecord(place, arm, seed, fold, scored["val_rmse"],
                                       sum(unseen) / len(unseen), scored["train_rmse"]))
    return sorted(records, key=lambda r: (arm_key(r.arm), r.seed, r.place))


def plan_seeds(answer: Answer, spec: StudySpec, folder: Path, runs: list[FoldRun],
               folds: int) -> Plan | None:
    """The confirmation that brings the primary contrast to its target half-width, with its
    time at the runs' own pace (arms x folds runs per seed, max_concurrent_trials at once)."""
    have = answer.primary.interval.seeds
    if answer.seeds_needed is None or answer.seeds_needed <= have:
        return None
    add = answer.seeds_needed - have
    minutes = run_minutes(runs)
    per_seed = len(spec.question.arms()) * folds / max(spec.max_concurrent_trials, 1)
    return Plan(add, None if minutes is None else minutes * per_seed * add,
                command_line("python -m tune.confirm", folder, "--seeds", add))


class QuestionResult(NamedTuple):
    answer: Answer | None  # None until both values' arms (and the control) have places
    finished: int
    planned: int
    plan: Plan | None
    damaged: tuple[str, ...] = ()  # "<places.json>: unreadable (...)": runs left out
    not_finite: tuple[str, ...] = ()  # "<run> scored <place> nan": places left out


def not_finite_scores(runs: list[FoldRun]) -> tuple[str, ...]:
    """Each place a finished run scored NaN or infinite (a diverged model), in words:
    place_records leaves such a place out of every comparison."""
    return tuple(f"{run.folder.name} scored {place} {key} {score[key]}"
                 for run in runs if run.places is not None
                 for place, score in sorted(run.places.items()) if isinstance(score, dict)
                 for key in ("val_rmse", "train_rmse")
                 if key in score and not finite(score[key]))


def question_result(folder: Path, spec: StudySpec) -> QuestionResult:
    """The question's answer from every seed of the question and its confirmations."""
    question = spec.question
    runs, planned = [], 0
    for design in design_folders(folder):
        found = read_runs(design)
        runs += found
        if design.name == QUESTION_DIR:
            planned += planned_runs(question, len(question.seeds))
        else:
            planned += max(len(found), planned_in(design))
    records = place_records(runs)
    finished = sum(r.places is not None for r in runs)
    damaged = tuple(f"{r.folder / PLACES_FILE}: {r.damage}" for r in runs if r.damage)
    arms = {r.arm for r in records}
    needed = set(question.values) | ({CONTROL} if question.control is not None else set())
    if not needed <= arms:
        return QuestionResult(None, finished, planned, None, damaged, not_finite_scores(runs))
    result = answer(records, question.parameter, question.values, list(question.extra_arms),
                    spec.epochs, question.half_width)
    folds = len({r.point.fold for r in runs}) or 1
    return QuestionResult(result, finished, planned,
                          plan_seeds(result, spec, Path(folder), runs, folds), damaged,
                          not_finite_scores(runs))
