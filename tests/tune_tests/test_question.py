"""The question's statistics on hand-made per-place tables, every figure worked out by hand:
place and pose gaps, seeds averaged within a place, t-intervals over places, the verdict's
branches, Holm's correction, the detectable effect."""

import json
import math

import pytest
from helpers import gap_records

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
WIDE = gap_records(1, {1: [0.3, 0.2, 0.4, 0.1], 2: [0.1, 0.2, 0.2, 0.1]})  # A .2 B .2 C .3 D .1
NARROW = gap_records(4, {1: [0.1] * 4, 2: [0.1] * 4})
CONTROL_SEES = gap_records("control", {1: [0.2, 0.3, 0.25, 0.25]})
CONTROL_BLIND = gap_records("control", {1: [0.1, -0.1, 0.05, -0.05]})


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
    narrow = gap_records(4, {1: narrow_gaps, 2: narrow_gaps})
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
