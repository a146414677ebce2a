"""Policies replayed as the service spends an epoch budget, on a tiny hand-made curve table:
the searcher's FINISHED ends the search, no early stopping trains every trial fully, the
baselines run first and are never stopped, and a seed without a full-budget trial counts as
a median config."""

import math
from dataclasses import replace

import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from bench.curves import Curve, Table, bench_study
from bench.policies import Setting, _asha
from bench.service_budget import NO_EARLY_STOP, POLICIES, builders, full_budget, regret
from bench.simulate import Lookup, RayDriver, simulate
from tune.budget import epochs_reported
from tune.experiment import driving
from tune.searcher import StudySearcher, create_study
from tune.study import BASELINE_KEY, AshaSpec, Budget

LAMBDA, DIVISOR = "lambda_base_init", "base_channel_divisor"
SPACE = {LAMBDA: FloatDistribution(1.0, 100.0, log=True), DIVISOR: CategoricalDistribution([1, 2])}
MAX_T, WORKERS = 4, 2


def curve(x, d, values, baseline=None):
    return Curve({LAMBDA: x, DIVISOR: d}, tuple(values), tuple(0.1 for _ in values), 100 * d,
                 baseline)


SAMPLED = (curve(2.0, 1, [3.0, 2.0, 1.5, 1.0]), curve(10.0, 1, [2.5, 2.4, 2.3, 2.2]),
           curve(50.0, 2, [4.0, 3.9, 3.8, 3.7]), curve(20.0, 2, [3.5, 2.9, 2.7, 2.6]),
           curve(5.0, 2, [2.8, 2.1, 1.9, 1.8]), curve(80.0, 1, [3.1, 3.0, 2.95, 2.9]))
# Two baselines, run in this order: "good" leads every rung; "bad" is worse than anything at
# every epoch, so plain ASHA would stop it at its first rung, behind good's 1.0.
GOOD = curve(3.0, 1, [1.0, 0.9, 0.8, 0.7], "good")
BAD = curve(60.0, 2, [9.0, 8.9, 8.8, 8.7], "bad")
TABLE = Table("tiny", MAX_T, SAMPLED, {"command": "hand-made"})
WITH_BASELINES = replace(TABLE, curves=(GOOD, *SAMPLED, BAD))  # baselines anywhere in a table
SPEC = replace(bench_study(MAX_T, root="unused"), space=SPACE, baselines={},
               max_concurrent_trials=WORKERS, num_samples=None,
               scheduler=AshaSpec(grace_period=1, reduction_factor=2, max_t=MAX_T))


class Logged(RayDriver):
    """Notes the epochs reported before each trial started."""

    def __init__(self, *args):
        super().__init__(*args)
        self.reported, self.started_after = 0, []

    def start(self, number):
        started = super().start(number)
        if started is not None:
            self.started_after.append(self.reported)
        return started

    def report(self, trial, result):
        self.reported += 1
        return super().report(trial, result)


def search(folder, table, epochs, asha, baselines=()):
    """The service's searcher with budget.epochs = `epochs` (and ASHA grace 1 factor 2, or
    none), run until it is FINISHED and its trials have ended."""
    spec = replace(SPEC, budget=Budget(epochs, None),
                   baselines={c.baseline: dict(c.params) for c in baselines})
    with driving(folder):
        create_study(spec, folder)
        scheduler = _asha(Setting(spec, 1, 2)) if asha else None
        if scheduler is not None:
            scheduler.hold(folder)
        driver = Logged(StudySearcher(spec, folder), scheduler, Lookup(table.curves, SPACE))
        simulate(driver, table.curves, WORKERS, None, MAX_T)
        trials = driver.searcher.study.get_trials(deepcopy=False)
        counted = full_budget(driver, [])
    return driver, trials, counted


@pytest.mark.parametrize("asha", [False, True])
@pytest.mark.parametrize("epochs", [1, 9, 13])
def test_the_search_starts_no_trial_once_the_budget_is_reported_and_ends_within_a_round(
        tmp_path, asha, epochs):
    driver, trials, _ = search(tmp_path, TABLE, epochs, asha)
    assert all(reported < epochs for reported in driver.started_after)
    spent = sum(epochs_reported(t) for t in trials)
    assert spent == driver.reported  # every report reached the journal: no curve diverges
    # the trials running when the budget was reached finish: at most max_t more each
    assert epochs <= spent < epochs + WORKERS * MAX_T
    assert all(t.state.is_finished() for t in trials)


def test_without_early_stopping_every_started_trial_trains_max_t_epochs(tmp_path):
    _, trials, (full, best) = search(tmp_path, TABLE, 13, asha=False)
    # 2 workers in step: 4 trials start before 13 epochs are reported (the second pair after
    # 7 and 8), 16 epochs in all
    assert [epochs_reported(t) for t in trials] == [MAX_T] * 4
    assert full == 4
    assert best == min(min(t.intermediate_values.values()) for t in trials)


def test_the_baselines_run_first_and_asha_never_stops_them(tmp_path):
    driver, trials, (full, best) = search(tmp_path, WITH_BASELINES, 2 * MAX_T + 6, asha=True,
                                          baselines=(GOOD, BAD))
    names = [t.user_attrs.get(BASELINE_KEY) for t in trials]
    assert names[:2] == ["good", "bad"] and not any(names[2:])
    assert driver.started_after[:2] == [0, 0]
    # each baseline replays its own recorded curve, to max_t
    assert [list(t.intermediate_values.values()) for t in trials[:2]] == [
        list(GOOD.val_rmse), list(BAD.val_rmse)]
    searched = trials[2:]
    assert searched and all(not t.user_attrs.get(BASELINE_KEY) for t in searched)
    # the baselines count towards the budget but not among the full-budget searched trials
    assert full == sum(epochs_reported(t) == MAX_T for t in searched)
    assert best == min((min(t.intermediate_values.values()) for t in searched
                        if epochs_reported(t) == MAX_T), default=math.inf)


def test_a_searched_config_is_never_looked_up_as_a_baseline_curve():
    lookup = Lookup(WITH_BASELINES.curves, SPACE)
    # good's own values: the nearest sampled config (x=2, row 1), not good's curve (row 0)
    assert lookup(dict(GOOD.params)) == 1
    assert lookup({**BAD.params, BASELINE_KEY: "bad"}) == len(WITH_BASELINES.curves) - 1


def test_a_seed_without_a_full_budget_trial_counts_as_a_median_config():
    found = np.array([1.0, 1.5, 2.0, math.inf])
    assert regret(found, best=1.0, median=2.0).tolist() == [0.0, 0.5, 1.0, 1.0]


def test_every_policy_is_random_search_and_the_reference_stops_nothing():
    assert POLICIES[NO_EARLY_STOP] is None
    assert set(builders()) == set(POLICIES)
    assert {knobs for knobs in POLICIES.values() if knobs} == {(1, 3), (2, 3), (3, 3), (4, 3),
                                                                (1, 4)}
