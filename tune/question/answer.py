"""The study's question, answered from room folds: place and pose gaps, the contrast between
the two values of the scientific parameter, its interval, and the verdict.

Each place's held-out poses (its val rows, which no model trains on) are scored by the model
of the fold that trained on that place's other poses (seen) and by the models of the other
folds, which never saw the place (unseen). Per place and seed:

- place gap = unseen RMSE - seen RMSE, on the same poses;
- pose gap = the seen model's RMSE on the place's held-out poses - on its training poses.

Every place of a seed shares that seed's models, so the values are crossed places x seeds
data: intervals come from tune.question.intervals (variance components of place, seed and residual),
never from a t over places with the seeds averaged first. A contrast pairs two arms per place
and seed. The primary contrast, the positive control and each secondary comparison are one
Holm family; a verdict needs MIN_SEEDS seeds. Every finished seed is pooled, the question's
and every confirmation's. Pure functions over ``PlaceRecord`` rows returning NamedTuples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from tune.question.intervals import (
    ALPHA,
    MIN_SEEDS,
    Interval,
    crossed_interval,
    detectable_effect,
    holm,
    seeds_needed,
)
from tune.study import Arm, arm_key

CONTROL = "control"
SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"


class PlaceRecord(NamedTuple):
    """One place, scored by one arm's models of one seed (summary.json's ``per_place``)."""

    place: str
    arm: Arm  # the scientific parameter's value, CONTROL, or an extra arm's name
    seed: int
    fold: int  # the fold whose model trained on the place's other poses
    seen_rmse: float  # held-out poses, by the model that trained on the place's other poses
    unseen_rmse: float  # the same poses, by the models that never saw the place
    train_rmse: float  # the place's training poses, by the model that trained on them

    @property
    def place_gap(self) -> float:
        return self.unseen_rmse - self.seen_rmse

    @property
    def pose_gap(self) -> float:
        return self.seen_rmse - self.train_rmse


def _cells(records: Sequence[PlaceRecord], arm: Arm, value: str
           ) -> dict[tuple[str, int], float]:
    """(place, seed) -> one arm's `value` (place_gap, pose_gap, seen_rmse, ...)."""
    return {(r.place, r.seed): getattr(r, value) for r in records if r.arm == arm}


def place_gaps(records: Sequence[PlaceRecord], arm: Arm) -> dict[tuple[str, int], float]:
    """(place, seed) -> one arm's place gap."""
    return _cells(records, arm, "place_gap")


def paired_gaps(records: Sequence[PlaceRecord], a: Arm, b: Arm
                ) -> dict[tuple[str, int], float]:
    """(place, seed) -> a's place gap - b's, over the pairs both arms have."""
    gaps_a, gaps_b = place_gaps(records, a), place_gaps(records, b)
    return {k: gaps_a[k] - gaps_b[k] for k in gaps_a if k in gaps_b}


def arm_measure(records: Sequence[PlaceRecord], arm: Arm, value: str = "place_gap"
                ) -> Interval:
    """One arm's `value` over places and seeds."""
    return crossed_interval(_cells(records, arm, value))


class Contrast(NamedTuple):
    """a's place gap - b's, per place and seed, over the (place, seed) pairs both have."""

    a: Arm
    b: Arm
    effect: Interval
    detectable: float

    @property
    def places(self) -> int:
        return self.effect.places


def contrast(records: Sequence[PlaceRecord], a: Arm, b: Arm) -> Contrast:
    effect = crossed_interval(paired_gaps(records, a, b))
    return Contrast(a, b, effect, detectable_effect(effect))


class Comparison(NamedTuple):
    """One comparison of the Holm family: its name, interval (raw 95 %) and adjusted p."""

    name: str
    interval: Interval
    p_holm: float
    detectable: float

    @property
    def decided(self) -> bool:
        return math.isfinite(self.p_holm) and self.p_holm < ALPHA


def decide(primary: Comparison, control: Comparison | None, seeds: int) -> tuple[str, str]:
    """The verdict on the claim's direction (effect > 0) and why.

    Fewer than MIN_SEEDS seeds decide nothing. A positive control that does not find a place
    gap above 0 (after Holm) means the design could not see memorisation: inconclusive. Then
    supported or contradicted where the primary's Holm-adjusted p is below ALPHA (its raw
    interval then excludes 0 as well), else inconclusive.
    """
    if seeds < MIN_SEEDS:
        return INCONCLUSIVE, (f"{seeds} seed(s): fewer than {MIN_SEEDS} cannot tell the "
                              "seed-to-seed variance, so no verdict is decisive")
    if control is not None and not (control.decided and control.interval.mean > 0):
        return INCONCLUSIVE, ("the positive control's place gap does not exclude 0 after "
                              "Holm's correction: this data and budget cannot pose the question")
    effect = primary.interval
    if not effect.defined:
        return INCONCLUSIVE, "no interval (fewer than two places or seeds)"
    if primary.decided:
        if effect.mean > 0:
            return SUPPORTED, "the interval lies above 0, Holm-adjusted p < 0.05"
        return CONTRADICTED, "the interval lies below 0, Holm-adjusted p < 0.05"
    if effect.lo > 0 or effect.hi < 0:
        return INCONCLUSIVE, "the raw interval excludes 0, but not after Holm's correction"
    return INCONCLUSIVE, "the interval includes 0"


class ArmRow(NamedTuple):
    arm: Arm
    place_gap: Interval
    pose_gap: Interval
    seen_rmse: float  # means over places and seeds
    unseen_rmse: float
    seeds: int


class Answer(NamedTuple):
    """Everything summary.md and summary.json say about the question."""

    parameter: str
    values: tuple[Arm, Arm]  # the claim predicts a larger place gap for values[0]
    primary: Comparison
    verdict: str
    reason: str
    control: Comparison | None
    secondary: list[Comparison]  # per extra arm: that arm - values[0]
    arms: list[ArmRow]
    seeds: list[int]  # every seed of the primary contrast
    n_places: int
    n_models: int  # the models behind the primary contrast: 2 arms x folds x seeds
    budget_epochs: int
    half_width_target: float
    seeds_needed: int | None  # for the target half-width (None: seeds alone cannot reach it)
    records: list[PlaceRecord]


def _models(records: Sequence[PlaceRecord], arms: set[Arm], seeds: int) -> int:
    folds = len({r.fold for r in records if r.arm in arms})
    return len(arms) * folds * seeds


def answer(records: Sequence[PlaceRecord], parameter: str, values: Sequence[Arm],
           extra_arms: Sequence[str], budget_epochs: int, half_width: float) -> Answer:
    """The question's answer from per-place records of every arm and seed."""
    first, second = values
    present = list(dict.fromkeys(r.arm for r in records))
    primary = contrast(records, first, second)
    family = [(f"{parameter} {first} - {second} (place gap)", primary.effect)]
    if CONTROL in present:
        family.append(("positive control: place gap", arm_measure(records, CONTROL)))
    secondary = [contrast(records, arm, first) for arm in extra_arms if arm in present]
    family += [(f"{c.a} - {parameter} {first} (place gap)", c.effect) for c in secondary]
    tests = [Comparison(name, effect, p, detectable_effect(effect))
             for (name, effect), p in zip(family, holm([e.p_value for _, e in family]))]
    primary_test = tests[0]
    control_test = tests[1] if CONTROL in present else None
    seeds = sorted({r.seed for r in records if r.arm in (first, second)})
    verdict, reason = decide(primary_test, control_test, primary.effect.seeds)
    arms = []
    for arm in [first, second, *extra_arms, CONTROL]:
        if arm in present:
            seen = _cells(records, arm, "seen_rmse")
            unseen = _cells(records, arm, "unseen_rmse")
            arms.append(ArmRow(arm, arm_measure(records, arm),
                               arm_measure(records, arm, "pose_gap"),
                               sum(seen.values()) / len(seen),
                               sum(unseen.values()) / len(unseen), len({s for _, s in seen})))
    components = primary.effect.components
    needed = (seeds_needed(components, primary.effect.places, half_width)
              if components is not None else None)
    return Answer(parameter, (first, second), primary_test, verdict, reason, control_test,
                  tests[1 + (control_test is not None):], arms, seeds, primary.effect.places,
                  _models(records, {first, second}, primary.effect.seeds), budget_epochs,
                  half_width, needed, list(records))


# ------------------------------------------------------------------------ reporting
class Plan(NamedTuple):
    """More seeds for the target half-width: the command and its time at the runs' own pace."""

    add_seeds: int
    minutes: float | None  # None: no finished run's time to go by
    command: str


def _test_json(test: Comparison) -> dict[str, Any]:
    effect = test.interval
    return {"effect_m": effect.mean, "ci95_m": [effect.lo, effect.hi], "se_m": effect.se,
            "df": effect.df, "n_places": effect.places, "n_seeds": effect.seeds,
            "method": effect.method, "p_value": effect.p_value, "p_holm": test.p_holm,
            "detectable_m": test.detectable,
            "variance_m": effect.components.sds() if effect.components else None}


def _arm_json(interval: Interval) -> dict[str, Any]:
    return {"effect_m": interval.mean, "ci95_m": [interval.lo, interval.hi],
            "n_places": interval.places, "n_seeds": interval.seeds, "p_value": interval.p_value}


def answer_json(result: Answer, plan: Plan | None = None) -> dict[str, Any]:
    """summary.json's ``question``: enough to recompute the effect from ``per_place``."""
    first, second = result.values
    effect = result.primary.interval
    return {
        "contrast": f"{result.parameter} {first} - {second}",
        "parameter": result.parameter, "values": list(result.values),
        "measure": "place gap (unseen - seen RMSE on the same held-out poses), per place and "
                   "seed, paired; ci95_m is the raw 95 % interval, the verdict reads p_holm",
        "method": effect.method,
        "effect_m": effect.mean, "ci95_m": [effect.lo, effect.hi], "se_m": effect.se,
        "df": effect.df, "p_value": effect.p_value, "p_holm": result.primary.p_holm,
        "variance_m": effect.components.sds() if effect.components else None,
        "n_places": result.n_places, "seeds": result.seeds, "n_seeds": effect.seeds,
        "n_models": result.n_models,
        "verdict": result.verdict, "reason": result.reason,
        "detectable_m": result.primary.detectable,
        "half_width_target_m": result.half_width_target, "seeds_needed": result.seeds_needed,
        "plan": plan._asdict() if plan else None,
        "positive_control": _test_json(result.control) if result.control else None,
        "pose_gap_m": {arm_key(row.arm): row.pose_gap.mean for row in result.arms},
        "arms": {arm_key(row.arm): {"place_gap": _arm_json(row.place_gap),
                                "pose_gap": _arm_json(row.pose_gap), "seeds": row.seeds,
                                "seen_rmse": row.seen_rmse, "unseen_rmse": row.unseen_rmse}
                 for row in result.arms},
        "secondary": [{"contrast": test.name, **_test_json(test)} for test in result.secondary],
        "holm_family": 1 + (result.control is not None) + len(result.secondary),
        "budget_epochs": result.budget_epochs,
        "per_place": [r._asdict() for r in result.records],
    }


def arm_name(arm: Arm, parameter: str, control_model: str = "the plain U-Net") -> str:
    if arm == CONTROL:
        return f"positive control ({control_model})"
    return f"{parameter} {arm}" if not isinstance(arm, str) else arm


def _test_text(test: Comparison, family: int) -> str:
    effect = test.interval
    seeds = f"{effect.seeds} seed" + "s" * (effect.seeds != 1)
    return (f"{effect.text()} over {effect.places} places x {seeds} (raw 95 % interval; "
            f"Holm-adjusted p = {test.p_holm:.3g} over {family} comparisons)")


def answer_lines(result: Answer, claim: str, plan: Plan | None = None,
                 control_model: str = "the plain U-Net") -> list[str]:
    """summary.md's opening: the question in words, the answer, the control, the arms."""
    first, second = result.values
    effect = result.primary.interval
    family = 1 + (result.control is not None) + len(result.secondary)
    lines = [
        "## The question",
        "",
        claim,
        "",
        f"**Answer: {result.verdict}** ({result.reason}). Per place and seed, "
        f"{result.parameter} {first}'s place gap minus {second}'s: "
        f"{_test_text(result.primary, family)}; {result.n_models} models of "
        f"{result.budget_epochs} epochs; {effect.method}: {effect.df:.1f}.",
    ]
    if effect.components is not None:
        sds = effect.components.sds()
        lines += ["", f"Variance components (SD): place {sds['place']:.3f} m, seed "
                      f"{sds['seed']:.3f} m, residual {sds['residual']:.3f} m."]
    # one paragraph each (a blank line between), so that Markdown keeps them apart
    if result.verdict == INCONCLUSIVE and math.isfinite(result.primary.detectable):
        lines += ["", f"The smallest effect this design could have detected: "
                      f"{result.primary.detectable:.3f} m (80 % power, two-sided 5 %, seeds "
                      "and places counted)."]
    if plan is not None:
        # the command last, with no punctuation after it: the line pastes as printed
        when = f" (about {plan.minutes:.0f} min here)" if plan.minutes is not None else ""
        lines += ["", f"For a half-width of {result.half_width_target:.3f} m the components "
                      f"call for {result.seeds_needed} seeds in all{when}: {plan.command}"]
    elif result.seeds_needed is None and effect.components is not None:
        lines += ["", f"No number of seeds up to 100 reaches a half-width of "
                      f"{result.half_width_target:.3f} m at {result.n_places} places: the "
                      "place term needs more places."]
    if result.control is not None:
        sees = result.control.decided and result.control.interval.mean > 0
        lines += ["", f"Positive control, {control_model}: place gap "
                      f"{_test_text(result.control, family)}: "
                      f"{'it can see memorisation' if sees else 'it cannot'}."]
    for test in result.secondary:
        lines += ["", f"Secondary: {test.name}: {_test_text(test, family)}."]
    lines += ["", "| arm | seeds | place gap (m) | pose gap (m) | seen RMSE | unseen RMSE |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {arm_name(row.arm, result.parameter, control_model)} | {row.seeds} | "
              f"{row.place_gap.text('')} | {row.pose_gap.text('')} | {row.seen_rmse:.3f} | "
              f"{row.unseen_rmse:.3f} |" for row in result.arms]
    lines += ["", "Place gap: unseen - seen RMSE on the same held-out poses of a place; pose "
              "gap: a seen place's held-out poses - its training poses. Both per place and "
              "seed; intervals count places and seeds (raw 95 %)."]
    return lines
