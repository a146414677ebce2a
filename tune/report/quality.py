"""Whether a search itself can be trusted: a best value at the edge of its range, how much of
the search TPE actually proposed, and which parameters mattered (Optuna's importance)."""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

from tune.errors import UsageError
from tune.experiment import LOST, RAY_ID, Experiment, TrialRecord
from tune.study import BASELINE_KEY, StudySpec

EVEN_IMPORTANCE = 0.02  # importances this close to each other say nothing about the parameters
BOUNDARY_SHARE = 0.10  # a best value this close to an end of its range asks for a wider range


class BoundaryFlag(NamedTuple):
    param: str
    value: float
    low: float
    high: float
    side: str  # "low" or "high"


def boundary_flags(best: TrialRecord, spec: StudySpec) -> list[BoundaryFlag]:
    """Numeric parameters whose best value sits within BOUNDARY_SHARE of an end of its range
    (measured in log space for log ranges): the optimum may lie outside the range."""
    flags = []
    for name, dist in spec.space.items():
        if not hasattr(dist, "low") or name not in best.params:
            continue
        value, low, high = best.params[name], dist.low, dist.high
        if high == low:
            continue
        scale = math.log if dist.log else float
        position = (scale(value) - scale(low)) / (scale(high) - scale(low))
        if position <= BOUNDARY_SHARE:
            flags.append(BoundaryFlag(name, value, low, high, "low"))
        elif position >= 1 - BOUNDARY_SHARE:
            flags.append(BoundaryFlag(name, value, low, high, "high"))
    return flags


def param_importance(experiment: Experiment) -> dict[str, float] | str:
    """Optuna's importance over the journal study; a reason string when it cannot be computed."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = experiment.optuna_study()
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
                    and t.params and not t.user_attrs.get(BASELINE_KEY)]
        if len(complete) < 3:
            return (f"needs >= 3 searched trials that ran the full budget, has "
                    f"{len(complete)} (baselines not counted)")
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        searched = optuna.create_study(direction=study.direction)  # in memory: no baseline
        searched.add_trials(complete)
        with warnings.catch_warnings():  # its few-trials warning: the count is stated above
            warnings.simplefilter("ignore")
            found = dict(optuna.importance.get_param_importances(searched, evaluator=evaluator))
        if found and max(found.values()) - min(found.values()) < EVEN_IMPORTANCE:
            return (f"cannot tell the parameters apart from {len(complete)} searched trials "
                    f"(PED-ANOVA gave each about {1 / len(found):.2f})")
        return found
    except Exception as err:  # importance is advice: never let it break the summary
        return f"not computable: {type(err).__name__}: {err}"


class SamplerFacts(NamedTuple):
    """How the sampler worked, from the journal."""

    type: str
    searched: int  # searched trials (no baseline, none lost)
    proposed: int | None  # of those, proposed by TPE (None: not TPE)
    n_startup_trials: int | None  # TPE samples at random until this many trials finished
    feasible: list[str] | None  # with constraints on: the finished trials that met them
    judged: int  # finished trials with constraints
    problem: str = ""  # why the journal could not be read


def sampler_facts(experiment: Experiment) -> SamplerFacts:
    """How many searched trials TPE proposed (it samples at random until n_startup_trials
    trials have finished), and which trials met the minimum targets when they were
    constraints."""
    import optuna

    sampler = experiment.spec.sampler
    try:
        trials = experiment.optuna_study().trials
    except UsageError as err:
        return SamplerFacts(sampler.type, 0, None, None, None, 0, str(err))
    done = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE,
                                             optuna.trial.TrialState.PRUNED)]
    searched = [t for t in trials if t.params and not t.user_attrs.get(BASELINE_KEY)
                and not t.user_attrs.get(LOST) and t.datetime_start]
    if sampler.type != "tpe":
        return SamplerFacts(sampler.type, len(searched), None, None, None, 0)
    startup = sampler.n_startup_trials
    proposed = sum(sum(d.datetime_complete < t.datetime_start for d in done) >= startup
                   for t in searched)
    if not sampler.constraints:
        return SamplerFacts(sampler.type, len(searched), proposed, startup, None, 0)
    judged = [t for t in done if t.constraints]
    feasible = [t.user_attrs.get(RAY_ID, str(t.number)) for t in judged
                if all(v <= 0 for v in t.constraints.values())]
    return SamplerFacts(sampler.type, len(searched), proposed, startup, feasible, len(judged))
