"""Targets (absolute and relative), equal-budget comparisons and the verdict, on hand-made
trials whose figures are worked out by hand."""

import math

import pytest
from helpers import fake_trial

from tune.compare import (
    compare,
    full_budget_points,
    in_band,
    isolation_table,
    judge_targets,
    pareto_front,
    verdict,
)
from tune.experiment import TrialRecord


def trial(trial_id, curve, model="base_residual", baseline=None, **params) -> TrialRecord:
    """A trial whose epoch e (1-based) scored curve[e - 1]; other metrics fixed."""
    rows = [{"training_iteration": e, "val_rmse": v, "val_delta1": 0.5, "train_sparse": 0.1}
            for e, v in enumerate(curve, 1)]
    if model == "unet":
        rows = [{k: v for k, v in r.items() if k != "train_sparse"} for r in rows]
        params = {"model": "unet"}
    if baseline:
        params = {**params, "baseline": baseline}
    return fake_trial(trial_id, rows, **params)


@pytest.mark.parametrize("value, band, expected", [
    (0.2, (0.2, 0.3), True), (0.3, (0.2, 0.3), True), (0.25, (0.2, 0.3), True),
    (0.1999, (0.2, 0.3), False), (0.3001, (0.2, 0.3), False),
    (2.2, (None, 2.2), True), (2.2001, (None, 2.2), False),
    (0.45, (0.45, None), True), (0.4499, (0.45, None), False),
    (math.nan, (None, 2.2), False), (math.inf, (0.1, None), False),
])
def test_target_bands_are_inclusive_at_their_edges(value, band, expected):
    assert in_band(value, band) is expected


def test_a_relative_target_is_judged_against_the_baselines_value(smoke_spec):
    # seed_before's best is 2.0 m: minimum 0.85 x 2.0 = 1.7 m, ideal 0.70 x 2.0 = 1.4 m
    before = trial("b", [2.4, 2.0], baseline="seed_before")
    checks = {(c.level, c.metric): c for c in judge_targets(
        trial("x", [1.6]), smoke_spec, {"seed_before": before})}
    minimum, ideal = checks["minimum", "val_rmse"], checks["ideal", "val_rmse"]
    assert minimum.band == (None, pytest.approx(1.7)) and minimum.passed is True
    assert ideal.band == (None, pytest.approx(1.4)) and ideal.passed is False
    assert "0.85 x seed_before (2)" in minimum.scale
    assert str(ideal) == "val_rmse 1.6 <= 1.4 [0.7 x seed_before (2)] ideal: fail"
    # the sparse band is absolute (train_sparse 0.1: minimum >= 0.06 passes, ideal 0.08-0.12)
    assert checks["minimum", "train_sparse"].scale == "absolute"
    assert checks["ideal", "train_sparse"].passed is True


def test_unresolved_and_inapplicable_targets_are_not_judged(smoke_spec):
    checks = {(c.level, c.metric): c for c in judge_targets(
        trial("u", [1.0], model="unet", baseline="unet"), smoke_spec, {})}
    assert checks["minimum", "val_rmse"].passed is None
    assert checks["minimum", "val_rmse"].note == "seed_before has no val_rmse yet"
    assert checks["ideal", "train_sparse"].passed is None
    assert "a unet reports no train_sparse" in str(checks["ideal", "train_sparse"])
    assert checks["minimum", "val_delta1"].passed is True


def test_comparisons_are_made_at_the_highest_epoch_both_reached():
    long = trial("long", [3.0, 2.0, 1.0, 0.5])
    short = trial("short", [2.5, 1.5])
    result = compare(short, long)
    assert (result.epoch, result.a_rmse, result.b_rmse) == (2, 1.5, 2.0)
    assert result.ratio == pytest.approx(0.75)  # at epoch 4 `long` would win, 0.5 vs 1.5


def test_isolation_compares_only_trials_that_ran_the_full_budget(smoke_spec):
    full = smoke_spec.max_t  # 3 epochs
    trials = [trial("a", [2.0, 1.5, 1.2], base_channel_divisor=1),
              trial("b", [1.8, 1.1], base_channel_divisor=4),  # stopped: better, not compared
              trial("c", [1.9, 1.6, 1.45], base_channel_divisor=4),
              trial("d", [1.7], base_channel_divisor=2),
              trial("u", [0.9], model="unet", baseline="unet")]
    assert full == 3
    table = {r.value: r for r in isolation_table(trials, smoke_spec)}
    assert (table[1].trial_id, table[1].val_rmse, table[1].trials, table[1].stopped) == (
        "a", 1.2, 1, 0)
    assert (table[4].trial_id, table[4].val_rmse, table[4].trials, table[4].stopped) == (
        "c", 1.45, 1, 1)
    assert table[2].trial_id is None and math.isnan(table[2].val_rmse)
    assert (table[2].trials, table[2].stopped) == (0, 1)
    assert table[8].trial_id is None and (table[8].trials, table[8].stopped) == (0, 0)


def test_the_verdict_names_the_best_searched_trial_and_its_margin_to_each_baseline(smoke_spec):
    before = trial("b", [1.5, 1.0, 0.9], baseline="seed_before")
    unet = trial("u", [1.6, 1.2, 1.1], model="unet", baseline="unet")
    searched = trial("s", [1.2, 0.95, 0.92])
    early = trial("e", [0.8])  # stopped early: never called best, however low its value
    ranked = [early, before, searched, unet]
    checks = {t.label: judge_targets(t, smoke_spec, {"seed_before": before}) for t in ranked}
    lines = verdict(ranked, {"seed_before": before, "unet": unet}, checks, 3)
    assert lines[0] == "Best at the full budget (3 epochs): b (seed_before), val RMSE 0.9 m."
    assert lines[1] == ("Best searched trial: s, val RMSE 0.92 m, selected from 1 searched "
                        "trial(s) that ran the full budget (optimistic: one seed each).")
    assert lines[2] == "  - against seed_before: 2.2 % worse (0.92 vs 0.9 m at epoch 3)."
    assert lines[3] == "  - against unet: 16.4 % better (0.92 vs 1.1 m at epoch 3)."
    # no trial reaches 0.70 x 0.9 = 0.63 m; the unet is never judged on train_sparse
    assert "val_rmse ideal" in lines[-1] and lines[-1].startswith("Targets no trial met: ")


def test_a_baseline_is_never_called_searched():
    before = trial("b", [1.0], baseline="seed_before")
    lines = verdict([before], {"seed_before": before}, {}, 1)
    assert lines[1] == "No searched trial has a result yet (1 trials have one, all baselines)."


def test_no_searched_trial_is_called_best_before_one_ran_the_full_budget():
    before = trial("b", [1.0, 0.9], baseline="seed_before")
    lines = verdict([trial("s", [0.8]), before], {"seed_before": before}, {}, 2)
    assert lines[1] == ("No searched trial ran the full budget (1 searched, each stopped "
                        "early): none is called best.")


def test_the_pareto_front_keeps_full_budget_trials_no_other_beats_on_both(smoke_spec):
    full = smoke_spec.max_t
    trials = [trial("d1", [1.0] * full, base_channel_divisor=1),
              trial("d4", [1.1] * full, base_channel_divisor=4),
              trial("d2", [1.3] * full, base_channel_divisor=2),  # d4: smaller and better
              trial("d8-short", [0.9], base_channel_divisor=8),  # stopped early: unequal budget
              trial("d8", [1.2] * full, base_channel_divisor=8),
              trial("u", [0.8] * full, model="unet")]  # no base decoder: not on this axis
    front = pareto_front(full_budget_points(trials, smoke_spec))
    assert [p.trial for p in front] == ["d8", "d4", "d1"]  # smallest base first
    assert [p.val_rmse for p in front] == [1.2, 1.1, 1.0]
    assert [p.scientific for p in front] == [8, 4, 1]
    sizes = [p.base_params for p in front]
    assert sizes == sorted(sizes) and sizes[0] < sizes[1] < sizes[2]
