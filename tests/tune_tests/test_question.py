"""The question's statistics on hand-made per-place tables, every figure worked out by hand:
place and pose gaps, contrasts paired per place and seed, the verdict's branches (the seed
count, the positive control, Holm over the family), the JSON that lets anyone recompute."""

import json
import math

import pytest
from helpers import gap_records
from scipy import stats

from tune.confirm import comparison
from tune.question.answer import (
    CONTRADICTED,
    INCONCLUSIVE,
    SUPPORTED,
    PlaceRecord,
    answer,
    answer_json,
    answer_lines,
    contrast,
)
from tune.question.intervals import (
    CROSSED,
    PLACES_ONLY,
    SEEDS_ONLY,
    Components,
    crossed_interval,
    detectable_effect,
    t_interval,
)

T975_DF3 = 3.182446  # Student t quantiles, from a printed table
T80_DF3 = 0.978472
PLACE_EFFECT = (0.01, -0.01, 0.01, -0.01)  # places A..D
SEED_EFFECT = {1: 0.02, 2: 0.0, 3: -0.02}


def table(centre: float, sign: float = 1.0) -> dict[int, list[float]]:
    """Per seed, centre + sign x (place effect + seed effect), no residual."""
    return {s: [centre + sign * (a + b) for a in PLACE_EFFECT] for s, b in SEED_EFFECT.items()}


NARROW = gap_records(4, table(0.1))
WIDE = gap_records(1, table(0.2, 2.0))  # wide - narrow = 0.1 + place effect + seed effect
CONTROL_SEES = gap_records("control", table(0.25))
CONTROL_BLIND = gap_records("control", table(0.0))
# With no residual: MS_place = 3 x 4e-4 / 3 = 4e-4, MS_seed = 4 x 8e-4 / 2 = 1.6e-3, so
# n_p n_s var(mean) = 2e-3, SE = sqrt(2e-3 / 12) = 0.0129099, and Satterthwaite's df =
# (2e-3)^2 / ((4e-4)^2 / 3 + (1.6e-3)^2 / 2) = 3.
SE = 0.0129099


def p_two_sided_df3(t: float) -> float:
    """Student's t with 3 df in closed form, x = |t| / sqrt(3):
    P(|T| > |t|) = 1 - (2 / pi) (x / (1 + x^2) + atan x)."""
    x = abs(t) / math.sqrt(3)
    return 1 - 2 / math.pi * (x / (1 + x * x) + math.atan(x))


def test_place_and_pose_gaps_of_one_record():
    record = PlaceRecord("A", 1, 1, 0, seen_rmse=1.0, unseen_rmse=1.25, train_rmse=0.8)
    assert record.place_gap == pytest.approx(0.25) and record.pose_gap == pytest.approx(0.2)


def test_the_contrast_pairs_place_and_seed_and_counts_both_in_its_interval():
    result = contrast(WIDE + NARROW, 1, 4)
    effect = result.effect
    assert (effect.places, effect.seeds, effect.method) == (4, 3, CROSSED)
    assert effect.mean == pytest.approx(0.1)
    assert effect.se == pytest.approx(SE, rel=1e-5) and effect.df == pytest.approx(3.0)
    assert (effect.lo, effect.hi) == (pytest.approx(0.1 - T975_DF3 * SE, rel=1e-5),
                                      pytest.approx(0.1 + T975_DF3 * SE, rel=1e-5))
    assert result.detectable == pytest.approx((T975_DF3 + T80_DF3) * SE, rel=1e-5)
    # t = 0.1 / SE = sqrt(0.01 x 12 / 2e-3) = sqrt(60) = 7.745967 on 3 df: x = sqrt(20),
    # p = 1 - (2 / pi) (sqrt(20) / 21 + atan sqrt(20)) = 1 - (2 / pi) 1.563767 = 0.004475
    assert effect.p_value == pytest.approx(p_two_sided_df3(math.sqrt(60)), rel=1e-9)
    assert effect.p_value == pytest.approx(0.004475, abs=1e-6)
    # the components: place var 4e-4 / 3 (SD 0.011547), seed var 1.6e-3 / 4 (SD 0.02)
    assert effect.components.sds() == pytest.approx(
        {"place": 0.0115470, "seed": 0.02, "residual": 0.0}, abs=1e-6)


def narrow_for(effect: dict[int, list[float]]) -> list[PlaceRecord]:
    """The narrow arm whose gaps make wide - narrow = `effect` per seed and place."""
    wide = table(0.2, 2.0)
    return gap_records(4, {s: [w - e for w, e in zip(wide[s], effect[s])] for s in wide})


@pytest.mark.parametrize("effect, control, verdict, reason", [
    (table(0.1), CONTROL_SEES, SUPPORTED,
     "the interval lies above 0, Holm-adjusted p < 0.05"),
    (table(-0.1, -1.0), CONTROL_SEES, CONTRADICTED,
     "the interval lies below 0, Holm-adjusted p < 0.05"),
    (table(0.0), CONTROL_SEES, INCONCLUSIVE, "the interval includes 0"),
    # a control that sees nothing: whatever the effect, the question cannot be posed
    (table(0.1), CONTROL_BLIND, INCONCLUSIVE,
     "the positive control's place gap does not exclude 0 after Holm's correction: this data "
     "and budget cannot pose the question"),
])
def test_each_verdict_branch(effect, control, verdict, reason):
    result = answer(WIDE + narrow_for(effect) + control, "base_channel_divisor", (1, 4), [],
                    12, 0.02)
    assert (result.verdict, result.reason) == (verdict, reason)
    primary = result.primary
    assert primary.interval.mean == pytest.approx(sum(sum(v) for v in effect.values()) / 12)
    # primary and control, one Holm family of two: the smaller p doubled, the larger kept
    # (but never below the smaller's adjusted value)
    p, q = primary.interval.p_value, result.control.interval.p_value
    expected = min(1.0, 2 * p) if p <= q else min(1.0, max(2 * q, p))
    assert primary.p_holm == pytest.approx(expected, rel=1e-9)


# The control's place gaps in cm: 25, places +1 -1 +1 -1, no seed effect, residuals
# A +1 -1 0 and B -1 +1 0 over seeds 1 2 3 (C and D none): A 27 25 26, B 23 25 24, C 26 26
# 26, D 24 24 24.
CONTROL_RESIDUAL = gap_records("control", {1: [0.27, 0.23, 0.26, 0.24],
                                           2: [0.25, 0.25, 0.26, 0.24],
                                           3: [0.26, 0.24, 0.26, 0.24]})


def test_the_positive_control_interval_and_the_pose_gap():
    pose = table(0.15, -1.0)  # wide's pose gaps: 0.15 - (place effect + seed effect)
    wide = [r._replace(train_rmse=r.seen_rmse - pose[r.seed]["ABCD".index(r.place)])
            for r in WIDE]
    result = answer(wide + NARROW + CONTROL_RESIDUAL, "base_channel_divisor", (1, 4), [], 12,
                    0.02)
    control = result.control.interval
    # in cm^2: MS_place = 3 x (1 + 1 + 1 + 1) / 3 = 4, MS_seed = 0 (seed means 25 25 25),
    # MS_res = (1 + 1 + 1 + 1) / 6 = 2/3. Components: place (4 - 2/3) / 3 = 10/9, seed
    # (0 - 2/3) / 4 < 0 truncated to 0, residual 2/3; so n_p n_s var(mean) = MS_place = 4 on
    # its 3 df: SE = sqrt(4 / 12) cm = 0.0057735 m, lo = .25 - 3.182446 x .0057735 = .231626
    assert (control.method, control.places, control.seeds) == (CROSSED, 4, 3)
    assert control.mean == pytest.approx(0.25)
    assert control.components == pytest.approx(Components(10 / 9 * 1e-4, 0.0, 2 / 3 * 1e-4))
    assert control.se == pytest.approx(0.0057735, rel=1e-5)
    assert control.df == pytest.approx(3.0)
    assert control.lo == pytest.approx(0.231626, abs=1e-6)
    assert control.hi == pytest.approx(0.268374, abs=1e-6)
    rows = {row.arm: row for row in result.arms}
    # wide's pose gaps have the contrast table's shape (mean 0.15, SE 0.0129099, df 3);
    # lo = .15 - 3.182446 x .0129099 = .108915
    assert rows[1].pose_gap.mean == pytest.approx(0.15)
    assert rows[1].pose_gap.lo == pytest.approx(0.108915, abs=1e-6)
    assert rows[4].pose_gap.mean == pytest.approx(0.1)  # seen 1.0 - train 0.9 everywhere
    # seen 1.0 everywhere, unseen = seen + place gap: 1.0 + wide's mean gap 0.2; the
    # control's: 1.0 + 0.25
    assert rows[1].seen_rmse == pytest.approx(1.0)
    assert rows[1].unseen_rmse == pytest.approx(1.2)
    assert rows["control"].unseen_rmse == pytest.approx(1.25)


def test_one_place_and_one_seed_have_no_interval_and_no_detectable_effect():
    single = crossed_interval({("A", 1): 0.3})
    assert (single.mean, single.places, single.seeds, single.method) == (0.3, 1, 1, PLACES_ONLY)
    assert math.isnan(single.lo) and math.isnan(single.hi) and math.isnan(single.p_value)
    assert not single.defined and single.text() == "+0.300 m (no interval)"
    assert math.isnan(detectable_effect(single))
    # the same through the answer: arms 1 and 4 at place A, seed 1 only; wide's gap there
    # .2 + 2 x (.01 + .02) = .26, narrow's .1 + .01 + .02 = .13: effect .13
    one = [r for r in WIDE + NARROW if (r.place, r.seed) == ("A", 1)]
    result = answer(one, "base_channel_divisor", (1, 4), [], 12, 0.02)
    assert result.primary.interval.mean == pytest.approx(0.13)
    assert math.isnan(result.primary.interval.lo) and math.isnan(result.primary.p_holm)
    assert math.isnan(result.primary.detectable) and result.seeds_needed is None
    assert result.verdict == INCONCLUSIVE and result.reason.startswith("1 seed(s): fewer than 3")
    text = "\n".join(answer_lines(result, "The claim."))
    assert "(no interval)" in text and "smallest effect" not in text
    # no spread: the interval is the point; p 0 for a nonzero mean, 1 for a zero one
    flat = t_interval([0.5, 0.5, 0.5], 1, 3, SEEDS_ONLY)
    assert (flat.lo, flat.hi, flat.p_value) == (0.5, 0.5, 0.0)
    assert t_interval([0.0, 0.0, 0.0], 1, 3, SEEDS_ONLY).p_value == 1.0


def test_one_seed_p_values_are_t_tests_over_places_and_holm_corrected():
    found = (gap_records(1, {1: [0.2, 0.2, 0.3, 0.1]}) + gap_records(4, {1: [0.1] * 4})
             + gap_records("control", {1: [0.2, 0.3, 0.25, 0.25]}))
    result = answer(found, "base_channel_divisor", (1, 4), [], 12, 0.02)
    primary, control = result.primary, result.control
    assert primary.interval.method == control.interval.method == PLACES_ONLY
    # effects .1 .1 .2 0: mean .1, sd^2 = .02 / 3, se^2 = .02 / 12, t = sqrt(.01 / se^2) =
    # sqrt(6) on 3 df: x = sqrt(2), p = 1 - (2 / pi)(sqrt(2) / 3 + atan sqrt(2)) = 0.091721
    assert primary.interval.p_value == pytest.approx(p_two_sided_df3(math.sqrt(6)), rel=1e-9)
    assert primary.interval.p_value == pytest.approx(0.091721, abs=1e-6)
    # control .2 .3 .25 .25: mean .25, sd^2 = .005 / 3, t = sqrt(.0625 x 12 / .005) =
    # sqrt(150) on 3 df: p = 0.0011722
    assert control.interval.p_value == pytest.approx(p_two_sided_df3(math.sqrt(150)), rel=1e-9)
    assert control.interval.p_value == pytest.approx(0.0011722, abs=1e-7)
    for values, p in (([0.1, 0.1, 0.2, 0.0], primary), ([0.2, 0.3, 0.25, 0.25], control)):
        assert p.interval.p_value == pytest.approx(stats.ttest_1samp(values, 0.0).pvalue)
    # Holm over the two: the control's 2 x 0.0011722 = 0.0023444; the primary's
    # max(0.0023444, 1 x 0.091721) = 0.091721
    assert control.p_holm == pytest.approx(0.0023444, abs=1e-7)
    assert primary.p_holm == pytest.approx(0.091721, abs=1e-6)
    # one seed decides nothing; tune.confirm's words: the control decided, the contrast
    # could detect (3.182446 + 0.978472) x sqrt(.02 / 12) = 0.169868 m
    assert result.verdict == INCONCLUSIVE
    assert comparison(control).outcome == "above 0"
    assert comparison(primary).outcome == "inconclusive at this power (could detect 0.170 m)"


def test_fewer_than_three_seeds_decide_nothing_and_say_how_many_are_needed():
    two = [r for r in WIDE + NARROW + CONTROL_SEES if r.seed != 3]
    result = answer(two, "base_channel_divisor", (1, 4), [], 12, 0.02)
    assert result.verdict == INCONCLUSIVE and "fewer than 3" in result.reason
    assert result.primary.interval.lo > 0  # the interval alone would have said supported
    assert result.seeds_needed is not None and result.seeds_needed >= 3


def test_one_seed_falls_back_to_a_t_over_places_and_says_so():
    one = [r for r in WIDE + NARROW if r.seed == 1]
    effect = contrast(one, 1, 4).effect
    assert effect.method == PLACES_ONLY and effect.components is None
    # effects .13 .11 .13 .11: mean .12, sd 0.011547, se 0.0057735
    assert effect.mean == pytest.approx(0.12)
    assert effect.lo == pytest.approx(0.12 - T975_DF3 * 0.0057735, rel=1e-4)


def test_the_positive_control_gates_after_holm_and_extra_arms_join_the_family():
    freeze = gap_records("ramp_only", table(0.25, 2.0))  # its gap - wide's = 0.05 + 0
    result = answer(WIDE + NARROW + CONTROL_SEES + freeze, "base_channel_divisor", (1, 4),
                    ["ramp_only"], 12, 0.02)
    assert result.control.interval.mean == pytest.approx(0.25)
    (second,) = result.secondary
    assert second.interval.mean == pytest.approx(0.05)
    raw = sorted([result.primary.interval.p_value, result.control.interval.p_value,
                  second.interval.p_value])
    adjusted = sorted([result.primary.p_holm, result.control.p_holm, second.p_holm])
    assert adjusted[0] == pytest.approx(3 * raw[0])  # the smallest p times the family's size


def test_summary_json_lets_anyone_recompute_the_effect():
    result = answer(WIDE + NARROW + CONTROL_SEES, "base_channel_divisor", (1, 4), [], 12, 0.02)
    data = json.loads(json.dumps(answer_json(result)))
    assert data["n_places"] == 4 and data["seeds"] == [1, 2, 3] and data["verdict"] == SUPPORTED
    assert data["method"] == CROSSED and data["df"] == pytest.approx(3.0)
    assert data["n_models"] == 2 * 2 * 3  # two arms x two folds x three seeds
    assert set(data["variance_m"]) == {"place", "seed", "residual"}
    assert {row["fold"] for row in data["per_place"]} == {0, 1}
    gaps = {(row["arm"], row["place"], row["seed"]): row["unseen_rmse"] - row["seen_rmse"]
            for row in data["per_place"]}
    effects = [gaps[1, p, s] - gaps[4, p, s] for p in "ABCD" for s in (1, 2, 3)]
    assert sum(effects) / len(effects) == pytest.approx(data["effect_m"])
    assert data["positive_control"]["ci95_m"][0] > 0


def test_the_answer_in_words_names_the_method_the_components_and_the_raw_interval():
    result = answer(WIDE + narrow_for(table(0.0)) + CONTROL_SEES, "base_channel_divisor",
                    (1, 4), [], 12, 0.02)
    text = "\n".join(answer_lines(result, "The claim."))
    assert "**Answer: inconclusive**" in text and "raw 95 % interval" in text
    assert "Holm-adjusted p" in text and "Variance components (SD)" in text
    assert "The smallest effect this design could have detected" in text
    assert not any(math.isnan(row.place_gap.mean) for row in result.arms)
