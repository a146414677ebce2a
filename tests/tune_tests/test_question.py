"""The question's statistics on hand-made per-place tables, every figure worked out by hand:
place and pose gaps, contrasts paired per place and seed, the verdict's branches (the seed
count, the positive control, Holm over the family), the JSON that lets anyone recompute."""

import json
import math

import pytest
from helpers import gap_records

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
from tune.question.intervals import CROSSED, PLACES_ONLY

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
    # the components: place var 4e-4 / 3 (SD 0.011547), seed var 1.6e-3 / 4 (SD 0.02)
    assert effect.components.sds() == pytest.approx(
        {"place": 0.0115470, "seed": 0.02, "residual": 0.0}, abs=1e-6)


def narrow_for(effect: dict[int, list[float]]) -> list[PlaceRecord]:
    """The narrow arm whose gaps make wide - narrow = `effect` per seed and place."""
    wide = table(0.2, 2.0)
    return gap_records(4, {s: [w - e for w, e in zip(wide[s], effect[s])] for s in wide})


@pytest.mark.parametrize("effect, control, verdict, reason", [
    (table(0.1), CONTROL_SEES, SUPPORTED, "above 0"),
    (table(-0.1, -1.0), CONTROL_SEES, CONTRADICTED, "below 0"),
    (table(0.0), CONTROL_SEES, INCONCLUSIVE, "the interval includes 0"),
    # a control that sees nothing: whatever the effect, the question cannot be posed
    (table(0.1), CONTROL_BLIND, INCONCLUSIVE, "cannot pose the question"),
])
def test_each_verdict_branch(effect, control, verdict, reason):
    result = answer(WIDE + narrow_for(effect) + control, "base_channel_divisor", (1, 4), [],
                    12, 0.02)
    assert result.verdict == verdict and reason in result.reason
    primary = result.primary
    assert primary.interval.mean == pytest.approx(sum(sum(v) for v in effect.values()) / 12)
    # primary and control, one Holm family of two: the smaller p doubled, the larger kept
    # (but never below the smaller's adjusted value)
    p, q = primary.interval.p_value, result.control.interval.p_value
    expected = min(1.0, 2 * p) if p <= q else min(1.0, max(2 * q, p))
    assert primary.p_holm == pytest.approx(expected, rel=1e-9)


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
