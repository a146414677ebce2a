"""The crossed places x seeds interval: a hand-worked ANOVA table, its standard error never
below the places' or the seeds' alone, the planner, and its coverage on simulated experiments
of the question's design (with the old t over places as the regression guard)."""

import math

import numpy as np
import pytest
from scipy import stats

from tune.question.answer import CONTRADICTED, SUPPORTED, PlaceRecord, answer
from tune.question.intervals import (
    ALPHA,
    CROSSED,
    SEEDS_ONLY,
    Components,
    crossed_interval,
    holm,
    planned_half_width,
    seeds_needed,
    t_interval,
)


def cells(rows: list[list[float]], places: str = "ABC") -> dict[tuple[str, int], float]:
    return {(p, s + 1): v for p, row in zip(places, rows) for s, v in enumerate(row)}


def test_a_hand_worked_two_way_table():
    # places A B C x seeds 1 2: [[1, 3], [5, 8], [3, 4]]; grand mean 4, place means 2 6.5
    # 3.5, seed means 3 5. MS_place = 2 x (4 + 6.25 + .25) / 2 = 10.5, MS_seed = 3 x 2 / 1 =
    # 6, residuals 0 0 -.5 .5 .5 -.5: MS_res = 1 / 2 = .5. Components: place (10.5 - .5) / 2
    # = 5, seed (6 - .5) / 3 = 11/6, residual .5. n_p n_s var = 10.5 + 6 - .5 = 16, SE =
    # sqrt(16 / 6) = 1.632993; df = 16^2 / (10.5^2 / 2 + 6^2 / 1 + .5^2 / 2) = 2.805479.
    effect = crossed_interval(cells([[1, 3], [5, 8], [3, 4]]))
    assert effect.method == CROSSED and (effect.places, effect.seeds) == (3, 2)
    assert effect.mean == pytest.approx(4.0)
    assert effect.se == pytest.approx(1.632993, rel=1e-6)
    assert effect.df == pytest.approx(2.805479, rel=1e-6)
    assert effect.components == pytest.approx(Components(5.0, 11 / 6, 0.5))
    # t = 4 / sqrt(16 / 6) = sqrt(6) on 2.805479 df; scipy's t as the reference
    assert effect.p_value == pytest.approx(2 * stats.t.sf(math.sqrt(6), 2.805479), rel=1e-6)


def test_a_negative_component_is_truncated_and_drops_out_of_the_sum():
    # [[1, 3], [2, 6], [3, 3]]: MS_place 2 = MS_res 2, so the place component is 0 and the
    # variance is MS_seed / 6 = 6 / 6: SE 1 with the seed's 1 df.
    effect = crossed_interval(cells([[1, 3], [2, 6], [3, 3]]))
    assert effect.components.place == 0.0
    assert (effect.se, effect.df) == (pytest.approx(1.0), pytest.approx(1.0))


def test_one_place_is_a_t_over_seeds_and_a_missing_cell_drops_its_place():
    effect = crossed_interval({("A", 1): 0.1, ("A", 2): 0.3, ("A", 3): 0.2, ("B", 1): 0.5})
    assert effect.method == SEEDS_ONLY and effect.places == 1 and effect.mean == pytest.approx(0.2)


@pytest.mark.parametrize("seed", range(20))
def test_the_standard_error_is_never_below_the_places_or_the_seeds_alone(seed):
    rng = np.random.default_rng(seed)
    n_p, n_s = int(rng.integers(2, 9)), int(rng.integers(2, 6))
    y = (rng.normal(0, rng.uniform(0, .05), (n_p, 1)) + rng.normal(0, rng.uniform(0, .05),
         (1, n_s)) + rng.normal(0, rng.uniform(.001, .08), (n_p, n_s)))
    effect = crossed_interval(cells(y.tolist(), "ABCDEFGH"[:n_p]))
    by_place = t_interval(y.mean(axis=1), n_p, n_s, "places")
    by_seed = t_interval(y.mean(axis=0), n_p, n_s, "seeds")
    assert effect.se >= max(by_place.se, by_seed.se) * (1 - 1e-9)


def test_the_planner_finds_the_fewest_seeds_for_a_half_width():
    measured = Components(0.0, 0.021 ** 2, 0.079 ** 2)  # the default's SDs (docs/question.md)
    needed = seeds_needed(measured, 12, 0.02)
    assert planned_half_width(measured, 12, needed) <= 0.02
    assert planned_half_width(measured, 12, needed - 1) > 0.02
    assert seeds_needed(Components(0.05 ** 2, 0.0, 0.01), 4, 0.01) is None  # places limit it


def test_holm_adjusts_step_down_and_keeps_the_order():
    # sorted .01 .03 .04: x3 = .03, x2 = .06, x1 = .04 -> raised to .06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    adjusted = holm([math.nan, 0.02])
    assert math.isnan(adjusted[0]) and adjusted[1] == pytest.approx(0.02)


# ------------------------------------------------------------------------ coverage
# The default design (docs/question.md): 12 places in 3 folds, 3 seeds, components near the
# ones measured on the default (SDs: place 0, seed 0.021, seed x fold 0.013, residual 0.079).
PLACES, FOLDS, SEEDS = 12, 3, 3
SD = {"place": 0.0, "seed": 0.021, "seed_fold": 0.013, "residual": 0.079}
EXPERIMENTS = 2000


def simulated(truth: float, rng) -> np.ndarray:
    """effects[experiment, place, seed] of a design with `truth` as its mean effect."""
    fold = np.arange(PLACES) % FOLDS
    shape = (EXPERIMENTS, PLACES, SEEDS)
    return (truth + rng.normal(0, SD["place"], (EXPERIMENTS, PLACES, 1))
            + rng.normal(0, SD["seed"], (EXPERIMENTS, 1, SEEDS))
            + rng.normal(0, SD["seed_fold"], (EXPERIMENTS, FOLDS, SEEDS))[:, fold, :]
            + rng.normal(0, SD["residual"], shape))


def as_records(effects: np.ndarray) -> list[PlaceRecord]:
    """Two arms whose place gaps differ by `effects`, and a control that clearly sees."""
    records = []
    for p in range(PLACES):
        for s in range(SEEDS):
            place, fold = f"P{p}", p % FOLDS
            records += [PlaceRecord(place, 1, s, fold, 1.0, 1.1 + effects[p, s], 0.9),
                        PlaceRecord(place, 4, s, fold, 1.0, 1.1, 0.9),
                        PlaceRecord(place, "control", s, fold, 1.0, 1.5 + 0.01 * (p % 3), 0.9)]
    return records


@pytest.mark.parametrize("truth", [0.0, -0.025])
def test_the_service_interval_covers_the_truth_at_its_nominal_rate(truth):
    rng = np.random.default_rng(20261206)
    covered = false = old_covered = 0
    for effects in simulated(truth, rng):
        result = answer(as_records(effects), "base_channel_divisor", (1, 4), [], 16, 0.02)
        interval = result.primary.interval
        covered += interval.lo <= truth <= interval.hi
        if truth == 0:
            false += result.verdict in (SUPPORTED, CONTRADICTED)
        # the old interval: seeds averaged within a place, a t over places
        old = t_interval(effects.mean(axis=1), PLACES, SEEDS, "places")
        old_covered += old.lo <= truth <= old.hi
    assert 0.93 <= covered / EXPERIMENTS <= 0.97
    assert false / EXPERIMENTS <= ALPHA
    assert old_covered / EXPERIMENTS < 0.93  # the regression guard: the old t fails
