"""The study's question, answered from room folds: place and pose gaps, the contrast between
the two values of the scientific parameter, its interval over places, and the verdict.

Each place's held-out poses (its val rows, which no model trains on) are scored by the model
of the fold that trained on that place's other poses (seen) and by the models of the other
folds, which never saw the place (unseen). Per place:

- place gap = unseen RMSE - seen RMSE, on the same poses;
- pose gap = the seen model's RMSE on the place's held-out poses - on its training poses.

Seeds are averaged within a place; intervals are Student-t intervals over places (the unit
that generalises), paired: a contrast is the per-place difference of two arms' place gaps.
Pure functions over ``PlaceRecord`` rows returning NamedTuples (tested on hand-made tables).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

ALPHA = 0.05  # two-sided: 95 % intervals
POWER = 0.80  # the power at which the detectable effect is stated
CONTROL = "control"
SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"


class PlaceRecord(NamedTuple):
    """One place, scored by one arm's models of one seed (summary.json's ``per_place``)."""

    place: str
    arm: Any  # the scientific parameter's value, CONTROL, or an extra arm's name
    seed: int
    seen_rmse: float  # held-out poses, by the model that trained on the place's other poses
    unseen_rmse: float  # the same poses, by the models that never saw the place
    train_rmse: float  # the place's training poses, by the model that trained on them

    @property
    def place_gap(self) -> float:
        return self.unseen_rmse - self.seen_rmse

    @property
    def pose_gap(self) -> float:
        return self.seen_rmse - self.train_rmse


class Interval(NamedTuple):
    """The mean of n per-place values with its two-sided 95 % Student-t interval."""

    mean: float
    lo: float
    hi: float
    n: int
    se: float  # standard error of the mean
    p_value: float  # two-sided, against a mean of 0

    def text(self, unit: str = " m") -> str:
        if self.n < 2:
            return f"{self.mean:+.3f}{unit} (one place: no interval)"
        return f"{self.mean:+.3f}{unit} [{self.lo:+.3f}, {self.hi:+.3f}]"


def t_interval(values: Sequence[float]) -> Interval:
    """Mean, 95 % t-interval and p-value (t-test of mean 0) over `values`; NaN bounds for
    fewer than two values."""
    from scipy import stats

    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, math.nan, math.nan)
    mean = sum(values) / n
    if n < 2:
        return Interval(mean, math.nan, math.nan, 1, math.nan, math.nan)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    se = sd / math.sqrt(n)
    half = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) * se
    if se == 0:
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(2 * stats.t.sf(abs(mean) / se, n - 1))
    return Interval(mean, mean - half, mean + half, n, se, p)


def detectable_effect(interval: Interval) -> float:
    """The smallest true effect this design finds with POWER at two-sided ALPHA:
    (t_{1-alpha/2} + t_{power}) x SE, with the interval's n - 1 degrees of freedom."""
    from scipy import stats

    if interval.n < 2 or not math.isfinite(interval.se):
        return math.nan
    df = interval.n - 1
    return float((stats.t.ppf(1 - ALPHA / 2, df) + stats.t.ppf(POWER, df)) * interval.se)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: each p-value as it must be read after testing them all
    (NaN stays NaN and is not counted)."""
    order = sorted((p, i) for i, p in enumerate(p_values) if math.isfinite(p))
    m = len(order)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


# ------------------------------------------------------------------------ per place
def _by_place(records: Iterable[PlaceRecord], arm: Any, value: str) -> dict[str, float]:
    """place -> the mean over seeds of one arm's `value` (place_gap, pose_gap, ...)."""
    sums: dict[str, list[float]] = {}
    for record in records:
        if record.arm == arm:
            sums.setdefault(record.place, []).append(getattr(record, value))
    return {place: sum(v) / len(v) for place, v in sorted(sums.items())}


def arm_measure(records: Sequence[PlaceRecord], arm: Any, value: str = "place_gap"
                ) -> Interval:
    """One arm's per-place `value` (seeds averaged within a place), over places."""
    return t_interval(list(_by_place(records, arm, value).values()))


class Contrast(NamedTuple):
    """a's place gap - b's, per place (each averaged over seeds), over the places both have."""

    a: Any
    b: Any
    effect: Interval
    detectable: float
    places: int


def contrast(records: Sequence[PlaceRecord], a: Any, b: Any) -> Contrast:
    gaps_a, gaps_b = _by_place(records, a, "place_gap"), _by_place(records, b, "place_gap")
    places = [p for p in gaps_a if p in gaps_b]
    effect = t_interval([gaps_a[p] - gaps_b[p] for p in places])
    return Contrast(a, b, effect, detectable_effect(effect), len(places))


def decide(effect: Interval, control: Interval | None) -> tuple[str, str]:
    """The verdict on the seed's direction (effect > 0) and why.

    supported: the interval lies above 0; contradicted: below 0; otherwise inconclusive. A
    positive control whose place gap does not exclude 0 means the design could not see
    memorisation at all: inconclusive, whatever the effect.
    """
    if control is not None and not control.lo > 0:
        return INCONCLUSIVE, ("the positive control's place gap does not exclude 0: this data "
                              "and budget cannot pose the question")
    if effect.n < 2 or not math.isfinite(effect.lo):
        return INCONCLUSIVE, "fewer than two places: no interval"
    if effect.lo > 0:
        return SUPPORTED, "the interval lies above 0"
    if effect.hi < 0:
        return CONTRADICTED, "the interval lies below 0"
    return INCONCLUSIVE, "the interval includes 0"


class ArmRow(NamedTuple):
    arm: Any
    place_gap: Interval
    pose_gap: Interval
    seen_rmse: float  # means over places of the seed-averaged values
    unseen_rmse: float


class Answer(NamedTuple):
    """Everything summary.md and summary.json say about the question."""

    parameter: str
    values: tuple[Any, Any]  # (wide, narrow): the seed predicts a larger place gap for [0]
    primary: Contrast
    verdict: str
    reason: str
    control: Interval | None
    secondary: list[tuple[Contrast, float]]  # (contrast, Holm-adjusted p) per extra arm
    arms: list[ArmRow]
    seeds: list[int]
    n_places: int
    budget_epochs: int
    records: list[PlaceRecord]


def answer(records: Sequence[PlaceRecord], parameter: str, values: Sequence[Any],
           extra_arms: Sequence[str], budget_epochs: int) -> Answer:
    """The question's answer from per-place records of every arm and seed."""
    wide, narrow = values
    primary = contrast(records, wide, narrow)
    arms_present = list(dict.fromkeys(r.arm for r in records))
    control = arm_measure(records, CONTROL) if CONTROL in arms_present else None
    verdict, reason = decide(primary.effect, control)
    # each extra arm against the arm of the first value, which it varies by its own knobs
    secondary = [contrast(records, arm, wide) for arm in extra_arms if arm in arms_present]
    adjusted = holm([c.effect.p_value for c in secondary])
    arms = []
    for arm in [wide, narrow, *extra_arms, CONTROL]:
        if arm not in arms_present:
            continue
        seen, unseen = _by_place(records, arm, "seen_rmse"), _by_place(records, arm, "unseen_rmse")
        arms.append(ArmRow(arm, arm_measure(records, arm), arm_measure(records, arm, "pose_gap"),
                           sum(seen.values()) / len(seen), sum(unseen.values()) / len(unseen)))
    return Answer(parameter, (wide, narrow), primary, verdict, reason, control,
                  list(zip(secondary, adjusted)), arms,
                  sorted({r.seed for r in records}), len({r.place for r in records}),
                  budget_epochs, list(records))


# ------------------------------------------------------------------------ reporting
def _interval_json(interval: Interval) -> dict[str, Any]:
    return {"effect_m": interval.mean, "ci95_m": [interval.lo, interval.hi], "n": interval.n,
            "p_value": interval.p_value}


def answer_json(result: Answer) -> dict[str, Any]:
    """summary.json's ``question``: enough to recompute the effect from ``per_place``."""
    wide, narrow = result.values
    primary = result.primary
    return {
        "contrast": f"{result.parameter} {wide} - {narrow}",
        "parameter": result.parameter, "values": list(result.values),
        "measure": "place gap (unseen - seen RMSE on the same held-out poses), per place, "
                   "seeds averaged within a place; 95 % Student-t interval over places",
        "effect_m": primary.effect.mean, "ci95_m": [primary.effect.lo, primary.effect.hi],
        "p_value": primary.effect.p_value, "n_places": primary.places, "seeds": result.seeds,
        "verdict": result.verdict, "reason": result.reason,
        "detectable_m": primary.detectable,
        "positive_control": _interval_json(result.control) if result.control else None,
        "pose_gap_m": {str(row.arm): row.pose_gap.mean for row in result.arms},
        "arms": {str(row.arm): {"place_gap": _interval_json(row.place_gap),
                                "pose_gap": _interval_json(row.pose_gap),
                                "seen_rmse": row.seen_rmse, "unseen_rmse": row.unseen_rmse}
                 for row in result.arms},
        "secondary": [{"contrast": f"{c.a} - {c.b}", **_interval_json(c.effect),
                       "p_holm": p, "detectable_m": c.detectable}
                      for c, p in result.secondary],
        "budget_epochs": result.budget_epochs,
        "per_place": [r._asdict() for r in result.records],
    }


def arm_name(arm: Any, parameter: str) -> str:
    if arm == CONTROL:
        return "positive control (U-Net)"
    return f"{parameter} {arm}" if not isinstance(arm, str) else arm


def answer_lines(result: Answer, claim: str) -> list[str]:
    """summary.md's opening: the question in words, the answer, the control, the arms."""
    wide, narrow = result.values
    primary = result.primary
    effect = primary.effect
    lines = [
        "## The question",
        "",
        claim,
        "",
        f"**Answer: {result.verdict}** ({result.reason}). Per place, {result.parameter} "
        f"{wide}'s place gap minus {narrow}'s: {effect.text()} (95 % t-interval over "
        f"{primary.places} places x {len(result.seeds)} seed(s) averaged within each place, "
        f"p = {effect.p_value:.3g}; {result.budget_epochs} epochs per model).",
    ]
    # one paragraph each (a blank line between), so that Markdown keeps them apart
    if result.verdict == INCONCLUSIVE:
        lines += ["", f"The smallest effect this design could have detected: "
                      f"{primary.detectable:.3f} m (80 % power, two-sided 5 %)."]
    if result.control is not None:
        seen = "it can see memorisation" if result.control.lo > 0 else "it cannot"
        lines += ["", f"Positive control, the plain U-Net: place gap {result.control.text()} "
                      f"over {result.control.n} places: {seen}."]
    for c, p in result.secondary:
        lines += ["", f"Secondary: {arm_name(c.a, result.parameter)} - "
                      f"{arm_name(c.b, result.parameter)} in place gap: {c.effect.text()}, "
                      f"Holm-adjusted p = {p:.3g} over {len(result.secondary)} comparison(s)."]
    lines += ["", "| arm | place gap (m) | pose gap (m) | seen RMSE | unseen RMSE |",
              "|---|---|---|---|---|"]
    lines += [f"| {arm_name(row.arm, result.parameter)} | {row.place_gap.text('')} | "
              f"{row.pose_gap.text('')} | {row.seen_rmse:.3f} | {row.unseen_rmse:.3f} |"
              for row in result.arms]
    lines += ["", "Place gap: unseen - seen RMSE on the same held-out poses of a place; pose "
              "gap: a seen place's held-out poses - its training poses. Both per place, "
              "seeds averaged, intervals over places."]
    return lines
