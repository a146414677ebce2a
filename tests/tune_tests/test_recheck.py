"""The re-check of the search's winners: which configs re-train, one run per config and fresh
seed, and the statistics worked out by hand (the re-trained mean, the drop from the search's
selected value, the paired difference to the best baseline, Holm over the configs)."""

import math

import pytest
from helpers import fake_trial

from tune.recheck import (
    RecheckRun,
    baselines_and_top,
    better_than_baseline,
    recheck_arms,
    recheck_points,
    summarise_recheck,
)

T975_DF2 = 4.302653  # Student t quantile, from a printed table


def test_the_top_full_budget_configs_the_best_baseline_and_the_unet_re_train(smoke_spec):
    full = smoke_spec.max_t
    trials = [fake_trial("early", rows=[{"val_rmse": 0.5}]),  # stopped early: not a candidate
              fake_trial("s1", rows=[{"val_rmse": 0.9}] * full, lambda_sparse=0.1),
              fake_trial("s2", rows=[{"val_rmse": 1.0}] * full),
              fake_trial("s3", rows=[{"val_rmse": 1.1}] * full),
              fake_trial("after", rows=[{"val_rmse": 0.95}] * full, baseline="seed_after"),
              fake_trial("before", rows=[{"val_rmse": 1.2}] * full, baseline="seed_before"),
              fake_trial("u", rows=[{"val_rmse": 1.3}] * full, baseline="unet", model="unet")]
    arms = recheck_arms(trials, smoke_spec, top=2)
    assert [a.trial_id for a in arms] == ["s1", "s2", "after", "u"]
    assert arms[0].values == {"lambda_sparse": 0.1} and arms[0].search_value == 0.9
    points = recheck_points(arms, [1, 2])
    assert len(points) == 8 and points[0]["values"] == {"lambda_sparse": 0.1, "seed": 1}
    assert {p["label"] for p in points} >= {"recheck-s1_seed-1", "recheck-u_seed-2"}


def test_evaluate_gets_the_baselines_and_only_searched_trials_that_ran_the_full_budget(
        smoke_spec):
    full = smoke_spec.max_t
    found = [fake_trial("early", rows=[{"val_rmse": 0.5}]),  # best value, stopped at epoch 1
             fake_trial("b", rows=[{"val_rmse": 1.0}] * full, baseline="seed_after"),
             fake_trial("s1", rows=[{"val_rmse": 1.1}] * full),
             fake_trial("s2", rows=[{"val_rmse": 1.2}] * full)]
    baselines, searched = baselines_and_top(found, full, 2)
    assert [t.trial_id for t in [*baselines, *searched]] == ["b", "s1", "s2"]


def run(arm: str, seed: int, value: float | None, search: float, baseline: str | None = None):
    return RecheckRun({"arm": arm, "trial": arm, "baseline": baseline, "seed": seed,
                       "search_value": search}, value)


def test_the_statistics_of_a_hand_made_recheck():
    runs = [run("s1", s, v, 0.90) for s, v in zip((1, 2, 3), (0.95, 0.97, 0.96))]
    runs += [run("s2", s, v, 0.92) for s, v in zip((1, 2, 3), (0.93, 0.99, 0.99))]
    runs += [run("b", s, v, 0.97, "seed_after") for s, v in zip((1, 2, 3), (1.00, 1.02, 1.01))]
    runs += [run("u", 1, None, 0.99, "unet")]  # still training: not counted
    result = summarise_recheck(runs, selected_from=7, planned=12)
    assert (result.seeds, result.best_baseline, result.best) == ([1, 2, 3], "b", "s1")
    assert (result.runs, result.planned, result.selected_from) == (9, 12, 7)
    s1 = result.rows[0]
    assert s1.name == "s1" and s1.retrained.mean == pytest.approx(0.96)
    assert s1.drop == pytest.approx(0.06)  # 0.96 re-trained against 0.90 selected
    # paired by seed: -0.05 -0.05 -0.05, no spread: the interval is the point, p 0
    assert s1.versus_best_baseline.mean == pytest.approx(-0.05)
    s2 = result.rows[1]
    # -0.07 -0.03 -0.02: mean -0.04, sd 0.026458, se 0.015275
    assert s2.versus_best_baseline.mean == pytest.approx(-0.04)
    assert s2.versus_best_baseline.lo == pytest.approx(-0.04 - T975_DF2 * 0.015275, rel=1e-4)
    # t^2 = .04^2 / (.0007 / 3) = 48 / 7 on 2 df, whose two-sided p is 1 - |t| / sqrt(2 + t^2)
    # = 1 - sqrt(48 / 62) = 0.120117
    assert s2.versus_best_baseline.p_value == pytest.approx(0.120117, abs=1e-6)
    # Holm over the two: s1's p is 0 (no spread), so s2's is max(2 x 0, 1 x 0.120117)
    assert s1.p_holm == 0.0 and s2.p_holm == pytest.approx(0.120117, abs=1e-6)
    assert better_than_baseline(s1) and not better_than_baseline(s2)
    baseline = result.rows[2]
    assert baseline.baseline == "seed_after" and baseline.versus_best_baseline is None
    assert math.isnan(baseline.p_holm)


def test_nothing_finished_is_no_recheck_yet():
    assert summarise_recheck([run("s1", 1, None, 0.9)], selected_from=1, planned=2) is None
