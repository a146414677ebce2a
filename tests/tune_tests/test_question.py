"""The question's statistics on hand-made per-place tables, every figure worked out by hand:
place and pose gaps, seeds averaged within a place, t-intervals over places, the verdict's
branches, Holm's correction, the detectable effect; and fold runs read back into records."""

import json
import math
from pathlib import Path

import pytest

from tune.folds import FoldRun, fold_points, place_records
from tune.question import (
    CONTRADICTED,
    INCONCLUSIVE,
    SUPPORTED,
    PlaceRecord,
    answer,
    answer_json,
    contrast,
    detectable_effect,
    holm,
    t_interval,
)

T975_DF3 = 3.182446  # Student t quantiles, from a printed table
T80_DF3 = 0.978472
PLACES = ("A", "B", "C", "D")


def records(arm, gaps_by_seed, seen=1.0, train=0.9):
    """Per seed, the place gaps of A..D (seen RMSE 1.0, so unseen = 1.0 + gap)."""
    return [PlaceRecord(place, arm, seed, seen, seen + gap, train)
            for seed, gaps in gaps_by_seed.items() for place, gap in zip(PLACES, gaps)]


WIDE = records(1, {1: [0.3, 0.2, 0.4, 0.1], 2: [0.1, 0.2, 0.2, 0.1]})  # A .2 B .2 C .3 D .1
NARROW = records(4, {1: [0.1] * 4, 2: [0.1] * 4})
CONTROL_SEES = records("control", {1: [0.2, 0.3, 0.25, 0.25]})
CONTROL_BLIND = records("control", {1: [0.1, -0.1, 0.05, -0.05]})


def test_place_and_pose_gaps_of_one_record():
    record = PlaceRecord("A", 1, 1, seen_rmse=1.0, unseen_rmse=1.25, train_rmse=0.8)
    assert record.place_gap == pytest.approx(0.25) and record.pose_gap == pytest.approx(0.2)


def test_the_contrast_averages_seeds_within_a_place_then_takes_a_t_interval_over_places():
    result = contrast(WIDE + NARROW, 1, 4)
    # per place: wide .2 .2 .3 .1 minus narrow .1 each = .1 .1 .2 0; mean .1
    # sd = sqrt((0 + 0 + .01 + .01) / 3) = 0.0816497; se = sd / 2 = 0.0408248
    assert result.places == 4 and result.effect.n == 4
    assert result.effect.mean == pytest.approx(0.1)
    assert result.effect.se == pytest.approx(0.0408248, rel=1e-5)
    half = T975_DF3 * 0.0408248
    assert (result.effect.lo, result.effect.hi) == (
        pytest.approx(0.1 - half, rel=1e-5), pytest.approx(0.1 + half, rel=1e-5))
    assert result.detectable == pytest.approx((T975_DF3 + T80_DF3) * 0.0408248, rel=1e-5)


@pytest.mark.parametrize("narrow_gaps, control, verdict, reason", [
    # effects .1 .12 .08 .1: mean .1, se 0.008165, half 0.02598: [0.074, 0.126] above 0
    ([0.1, 0.08, 0.22, 0.0], CONTROL_SEES, SUPPORTED, "the interval lies above 0"),
    # the mirror image: narrow's gaps exceed wide's by as much
    ([0.3, 0.32, 0.38, 0.2], CONTROL_SEES, CONTRADICTED, "the interval lies below 0"),
    ([0.1, 0.1, 0.1, 0.1], CONTROL_SEES, INCONCLUSIVE, "the interval includes 0"),
    # a control that sees nothing: whatever the effect, the question cannot be posed
    ([0.1, 0.08, 0.22, 0.0], CONTROL_BLIND, INCONCLUSIVE, "cannot pose the question"),
])
def test_each_verdict_branch(narrow_gaps, control, verdict, reason):
    narrow = records(4, {1: narrow_gaps, 2: narrow_gaps})
    result = answer(WIDE + narrow + control, "base_channel_divisor", (1, 4), [], 12)
    assert result.verdict == verdict and reason in result.reason
    if verdict == SUPPORTED:
        assert result.primary.effect.mean == pytest.approx(0.1)
        assert result.primary.effect.lo == pytest.approx(0.1 - T975_DF3 * 0.0081650, rel=1e-4)
    if verdict == CONTRADICTED:
        assert result.primary.effect.mean == pytest.approx(-0.1)


def test_the_positive_control_interval_and_the_pose_gap():
    result = answer(WIDE + NARROW + CONTROL_SEES, "base_channel_divisor", (1, 4), [], 12)
    # control gaps .2 .3 .25 .25: mean .25, sd sqrt(.005/3) = 0.0408248, se 0.0204124
    assert result.control.mean == pytest.approx(0.25)
    assert result.control.lo == pytest.approx(0.25 - T975_DF3 * 0.0204124, rel=1e-5)
    rows = {row.arm: row for row in result.arms}
    assert rows[1].pose_gap.mean == pytest.approx(0.1)  # seen 1.0 - train 0.9
    assert rows[1].unseen_rmse == pytest.approx(1.2)  # 1.0 + mean gap (.2 .2 .3 .1)


def test_summary_json_lets_anyone_recompute_the_effect():
    result = answer(WIDE + NARROW + CONTROL_SEES, "base_channel_divisor", (1, 4), [], 12)
    data = json.loads(json.dumps(answer_json(result)))
    assert data["n_places"] == 4 and data["seeds"] == [1, 2] and data["verdict"] == INCONCLUSIVE
    assert data["budget_epochs"] == 12 and set(data["pose_gap_m"]) == {"1", "4", "control"}
    by = {}
    for row in data["per_place"]:
        by.setdefault((row["arm"], row["place"]), []).append(
            row["unseen_rmse"] - row["seen_rmse"])
    effects = [sum(by[1, p]) / len(by[1, p]) - sum(by[4, p]) / len(by[4, p]) for p in PLACES]
    assert sum(effects) / len(effects) == pytest.approx(data["effect_m"])
    assert data["positive_control"]["ci95_m"][0] > 0


def test_holm_adjusts_step_down_and_keeps_the_order():
    # sorted .01 .03 .04: x3 = .03, x2 = .06, x1 = .04 -> raised to .06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    adjusted = holm([math.nan, 0.02])
    assert math.isnan(adjusted[0]) and adjusted[1] == pytest.approx(0.02)


def test_one_place_has_no_interval_and_no_detectable_effect():
    single = t_interval([0.3])
    assert single.mean == 0.3 and single.n == 1 and math.isnan(single.lo)
    assert math.isnan(detectable_effect(single))
    assert t_interval([0.5, 0.5, 0.5]).p_value == 0.0  # no spread, a nonzero mean


def run(arm, fold, seed, seen, scores, folds=2):
    """A finished fold run: `scores` maps place -> val RMSE; `seen` its own fold's places."""
    point = {"arm": arm, "fold": fold, "folds": folds, "seed": seed, "places": list(scores),
             "values": {"locations": list(seen)}}
    places = {p: {"seen": p in seen, "val_rmse": v, **({"train_rmse": v - 0.1}
                                                       if p in seen else {})}
              for p, v in scores.items()}
    return FoldRun(point, Path("x"), places)


def test_fold_runs_become_records_seen_by_their_own_fold_unseen_by_the_others():
    scores = {"A": 1.0, "B": 2.0, "C": 3.0}
    runs = [run(1, 0, 1, ["A"], {"A": 1.0, "B": 2.5, "C": 3.5}, folds=3),
            run(1, 1, 1, ["B"], {"A": 1.4, "B": 2.0, "C": 3.3}, folds=3),
            run(1, 2, 1, ["C"], {"A": 1.6, "B": 2.3, "C": 3.0}, folds=3)]
    found = {r.place: r for r in place_records(runs)}
    assert set(found) == set(scores)
    # A: seen 1.0 by fold 0; unseen by folds 1 and 2: (1.4 + 1.6) / 2 = 1.5
    assert (found["A"].seen_rmse, found["A"].unseen_rmse) == (1.0, pytest.approx(1.5))
    assert found["A"].train_rmse == pytest.approx(0.9)
    assert found["C"].unseen_rmse == pytest.approx(3.4)  # (3.5 + 3.3) / 2
    # a design whose third fold has not finished gives no record for that arm and seed
    assert place_records(runs[:2]) == []


def test_fold_points_cover_every_arm_fold_and_seed():
    from tune.space import load_study

    spec = load_study("generalization.yaml")
    question = spec.question
    points = fold_points(question, question.folds, question.seeds)
    assert len(points) == len(question.arms()) * 2 * len(question.seeds)
    wide = [p for p in points if p["arm"] == 1]
    narrow = [p for p in points if p["arm"] == 4]
    # the two arms differ in the question's parameter only
    for a, b in zip(wide, narrow):
        apart = {k for k in {**a["values"], **b["values"]} if a["values"].get(k) !=
                 b["values"].get(k)}
        assert apart == {"base_channel_divisor"}
    places = {p for fold in question.folds for p in fold}
    assert len(places) == 16 and all(set(p["places"]) == places for p in points)
