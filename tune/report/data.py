"""The summary as one typed object: what the question answered, what the search found, judged
against the study's targets and compared at equal budgets, and the checks of the search itself.
summary.md (markdown), report.html (html) and summary.json (``jsonable``) are all read
from it; the plots' data rides along, out of summary.json."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

from tune.budget import Spent, exhausted, spent
from tune.compare import (
    IsolationRow,
    ParetoPoint,
    TargetCheck,
    compare,
    full_budget_points,
    isolation_table,
    judge_targets,
    pareto_front,
    verdict,
)
from tune.errors import UsageError
from tune.experiment import LOST, Experiment, TrialEnd, TrialRecord, keys_apart
from tune.numbers import finite
from tune.question.answer import Answer, Plan, answer_json
from tune.question.result import question_result
from tune.recheck import Recheck, recheck_result, searched_at_full_budget
from tune.report.plots import (
    PlotData,
    budget_curve_data,
    curve_data,
    param_plot_data,
    question_plot_data,
    reference_lines,
)
from tune.report.quality import (
    BoundaryFlag,
    SamplerFacts,
    boundary_flags,
    param_importance,
    sampler_facts,
)
from tune.report.records import Confirmation, read_confirmation
from tune.study import CLAIM_BASELINES

TOP_ROWS = 10  # trials in the summary's table, unless --top says otherwise
CURVES = 5  # best trials drawn on the curves plot, besides every baseline
# Per trial, at its best epoch: the error, the train/val gap, the claim's sparse figure (its
# training loss term) beside the validation one and the scale-free ratio, the base alone.
REPORTED = ("val_rmse", "val_delta1", "train_rmse", "train_sparse", "sparse", "sparse_ratio",
            "base_rmse")


class QuestionStatus(NamedTuple):
    """The question's answer so far; `answer` is None until both values' arms have places."""

    claim: str
    runs_finished: int
    runs_planned: int
    answer: Answer | None
    plan: Plan | None  # the confirmation that reaches the target half-width
    control_model: str  # what the positive control trains (the plain U-Net in the studies)
    damaged: tuple[str, ...] = ()  # places.json files that cannot be read: runs left out
    not_finite: tuple[str, ...] = ()  # NaN or infinite place scores: those places left out

    def json_form(self) -> dict[str, Any]:
        found = (answer_json(self.answer, self.plan) if self.answer is not None
                 else {"verdict": None})
        return {**found, "claim": self.claim, "runs_finished": self.runs_finished,
                "runs_planned": self.runs_planned, "damaged": list(self.damaged),
                "not_finite": list(self.not_finite)}


class TableRow(NamedTuple):
    """One trial of the table, at its best epoch."""

    trial: str  # its label
    model: str
    params: dict[str, Any]  # every searched parameter (None where the trial has none)
    metrics: dict[str, float]  # REPORTED at the best epoch
    best_epoch: int | None
    epochs: int
    stopped: str

    def json_form(self) -> dict[str, Any]:
        return {"trial": self.trial, "model": self.model, **self.params, **self.metrics,
                "best epoch": self.best_epoch, "epochs": self.epochs, "stopped": self.stopped}


class BaselineRow(NamedTuple):
    """A baseline beside the best searched trial, at the highest epoch both reached."""

    trial: str
    model: str
    epochs: int
    val_rmse: float
    common_epoch: int | None
    searched_at_common: float
    baseline_at_common: float
    ratio_at_common: float


class Problems(NamedTuple):
    errored: int
    diverged: int
    reasons: dict[str, str]  # trial label -> its stop in words


class Summary(NamedTuple):
    question: QuestionStatus | None  # None: the study poses no question
    experiment: str
    study: str
    trials: int
    shown: int  # rows of the table
    budget: BudgetFacts
    max_t: int
    space: list[str]
    verdict: list[str]  # tune.compare.verdict's sentences
    confirmation: Confirmation | None
    confirmation_problem: str  # why confirm.json cannot be read ("" when it can, or is none)
    recheck: Recheck | None  # the search's winners re-trained on fresh seeds, once any finished
    recheck_seeds: int  # the seeds the study re-checks with (0: none)
    mean_map_rmse: float  # the learned-nothing reference
    table: list[TableRow]
    targets: dict[str, list[TargetCheck]]  # trial label -> its checks, every ranked trial
    target_rules: dict[str, str]
    baselines: dict[str, BaselineRow]
    best_searched: str | None
    boundary_flags: list[BoundaryFlag]
    problems: Problems
    importance: dict[str, float] | str  # a reason where it cannot be computed
    sampler: SamplerFacts
    scientific: str | None
    claim_baselines_apart: list[str]  # the knobs the claim's before- and after-model differ in
    isolation: list[IsolationRow]
    pareto: list[ParetoPoint]
    plots: PlotData

    def json_form(self) -> dict[str, Any]:
        """summary.json's layout: its key for the claim's baselines is named as the study's."""
        out = {("seed_baselines_apart" if key == "claim_baselines_apart" else key): value
               for key, value in self._asdict().items()}
        del out["plots"]
        return out


class BudgetFacts(NamedTuple):
    """The search's budget, what it spent and what that bought."""

    epochs: int | None  # the budget in epochs (None: none set)
    time_s: float | None
    num_samples: int | None  # the cap on trials
    epochs_spent: int  # every epoch a trial reported, baselines and early stops included
    seconds_spent: float
    trials: int
    searched: int
    searched_full_budget: int  # searched trials that ran the full budget
    ended: str | None  # which part of the budget ended the search (None: not yet)


def budget_facts(experiment: Experiment, trials: list[TrialRecord]) -> BudgetFacts:
    spec = experiment.spec
    try:
        used = spent(experiment.optuna_study(), LOST)
    except UsageError:  # no journal: the search never started
        used = Spent(0, 0.0, 0, 0)
    searched = [t for t in trials if not t.baseline and t.best]
    return BudgetFacts(spec.budget.epochs, spec.budget.time_s, spec.num_samples, used.epochs,
                       used.seconds, len(trials), len(searched),
                       len(searched_at_full_budget(trials, spec.max_t)), exhausted(spec, used))


def _reference_rmse(trials: list[TrialRecord]) -> float:
    """The val RMSE of the mean training depth map, as every trial records it."""
    return next((r["mean_map_rmse"] for t in trials for r in t.rows
                 if finite(r.get("mean_map_rmse"))), math.nan)


def table_row(trial: TrialRecord, space: list[str]) -> TableRow:
    best = trial.best or {}
    return TableRow(trial.label, trial.model, {k: trial.params.get(k) for k in space},
                    {k: best.get(k, math.nan) for k in REPORTED},
                    best.get("training_iteration"), trial.epochs_run, trial.end_text)


def baseline_row(baseline: TrialRecord, best_searched: TrialRecord | None) -> BaselineRow:
    result = compare(best_searched, baseline) if best_searched and baseline.best else None
    return BaselineRow(baseline.trial_id, baseline.model, baseline.epochs_run,
                       baseline.best_val_rmse, result.epoch if result else None,
                       result.a_rmse if result else math.nan,
                       result.b_rmse if result else math.nan,
                       result.ratio if result else math.nan)


def question_status(experiment: Experiment) -> QuestionStatus | None:
    spec = experiment.spec
    if spec.question is None:
        return None
    result = question_result(experiment.folder, spec)
    control = spec.question.control or {}
    model = {"unet": "the plain U-Net"}.get(control.get("model", spec.model),
                                           control.get("model", spec.model))
    return QuestionStatus(spec.question.claim, result.finished, result.planned, result.answer,
                          result.plan, model, result.damaged, result.not_finite)


def build_summary(experiment: Experiment | Path, trials: list[TrialRecord] | None = None,
                  top: int = TOP_ROWS) -> Summary:
    """Everything the reports show, read from the experiment folder (`trials`: its
    trials, where the caller has read them already)."""
    if not isinstance(experiment, Experiment):
        experiment = Experiment(experiment)
    spec = experiment.spec
    trials = experiment.trials() if trials is None else trials
    ranked = [t for t in trials if t.best]
    if not ranked:
        raise UsageError(f"{experiment.folder}: no trial has finished an epoch with a finite "
                         f"val_rmse yet ({len(trials)} trial folder(s)); nothing to summarise")
    found = {t.baseline: t for t in trials if t.baseline}
    baselines = {name: found[name] for name in spec.baselines if name in found}  # study order
    checks = {t.label: judge_targets(t, spec, baselines) for t in ranked}
    searched = [t for t in ranked if not t.baseline]
    isolation = isolation_table(trials, spec)
    full_budget = full_budget_points(trials, spec)
    front = pareto_front(full_budget)
    reference = _reference_rmse(trials)
    confirmation, problem = read_confirmation(experiment.folder)
    shown = trials[:top]
    question = question_status(experiment)
    return Summary(
        question=question,
        experiment=str(experiment.folder),
        study=spec.name,
        trials=len(trials),
        shown=len(shown),
        budget=budget_facts(experiment, trials),
        max_t=spec.max_t,
        space=list(spec.space),
        verdict=verdict(ranked, baselines, checks, spec.max_t),
        confirmation=confirmation,
        confirmation_problem=problem,
        recheck=recheck_result(experiment.folder, spec, trials),
        recheck_seeds=spec.recheck.seeds,
        mean_map_rmse=reference,
        table=[table_row(t, list(spec.space)) for t in shown],
        targets=checks,
        target_rules=dict(spec.target_rules),
        baselines={name: baseline_row(t, searched[0] if searched else None)
                   for name, t in baselines.items()},
        best_searched=searched[0].label if searched else None,
        boundary_flags=boundary_flags(searched[0], spec) if searched else [],
        problems=Problems(sum(t.end is TrialEnd.ERROR for t in trials),
                          sum(t.end is TrialEnd.DIVERGED for t in trials),
                          {t.label: t.end_text for t in trials if t.end.problem}),
        importance=param_importance(experiment),
        sampler=sampler_facts(experiment),
        scientific=spec.scientific,
        claim_baselines_apart=keys_apart(*(spec.baselines[name] for name in CLAIM_BASELINES))
        if set(CLAIM_BASELINES) <= set(spec.baselines) else [],
        isolation=isolation,
        pareto=front,
        plots=PlotData(param_plot_data(trials, spec), isolation,
                       reference_lines(trials, reference), curve_data(trials, CURVES),
                       (full_budget, front), budget_curve_data(trials, spec),
                       question_plot_data(question.answer, question.control_model)
                       if question is not None else None),
    )
