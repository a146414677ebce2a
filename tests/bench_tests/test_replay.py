"""The policy replay on a tiny hand-made curve table: deterministic per seed, ASHA stopping at
the rungs worked out by hand, nearest-config lookup, regret and rank arithmetic; SMAC3's row
where the optional extra smac is installed, and the row saying it was skipped where not."""

import math
from dataclasses import replace

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

import bench.policies
from bench.curves import Curve, Table, bench_study
from bench.policies import (
    SMAC,
    SMAC_INSTALL,
    TPE_ASHA,
    Setting,
    _asha,
    _halving,
    _random,
    optuna_policy,
    policies,
    service_policy,
    smac_installed,
    smac_policy,
)
from bench.replay import (
    GRID,
    HEADLINE,
    mean_ranks,
    normalised_regret,
    paired,
    replay,
    skipped,
    within_best,
)
from bench.simulate import Lookup, OptunaDriver, RayDriver, SmacDriver, simulate
from bench.stats import Band
from tune.experiment import driving, journal_storage
from tune.searcher import BaselinesRunFull, StudySearcher, create_study
from tune.study import AshaSpec

LAMBDA, DIVISOR = "lambda_base_init", "base_channel_divisor"
SPACE = {LAMBDA: FloatDistribution(1.0, 100.0, log=True), DIVISOR: CategoricalDistribution([1, 2])}


def curve(x, d, values):
    return Curve({LAMBDA: x, DIVISOR: d}, tuple(values), tuple(0.1 for _ in values), 100 * d)


# A is the best config; B is worse than A at epoch 2; C is the worst from epoch 1 on.
A = curve(2.0, 1, [3.0, 2.0, 1.5, 1.0])
B = curve(10.0, 1, [2.5, 2.4, 2.3, 2.2])
C = curve(50.0, 2, [4.0, 3.9, 3.8, 3.7])
D = curve(20.0, 2, [3.5, 2.9, 2.7, 2.6])
E = curve(5.0, 2, [2.8, 2.1, 1.9, 1.8])
F = curve(80.0, 1, [3.1, 3.0, 2.95, 2.9])
TABLE = Table("tiny", 4, (A, B, C, D, E, F), {"command": "hand-made"})
# max_t 4, grace 1, factor 2: ASHA's rungs at epochs 1 and 2 (4 is max_t); 2 workers
SPEC = replace(bench_study(4, root="unused"), space=SPACE, baselines={}, max_concurrent_trials=2,
               scheduler=AshaSpec(grace_period=1, reduction_factor=2, max_t=4))
SETTING = Setting(SPEC, grace_period=1, reduction_factor=2)
needs_smac = pytest.mark.skipif(not smac_installed(), reason="the optional extra smac is not "
                                f"installed: {SMAC_INSTALL}")


class Logged(RayDriver):
    """Notes every (trial, epoch) the controller processes."""

    def __init__(self, *args):
        super().__init__(*args)
        self.epochs: dict[str, int] = {}

    def report(self, trial, result):
        self.epochs[trial.trial_id] = result["training_iteration"]
        return super().report(trial, result)


def service_searcher(folder, first):
    """The service's searcher on a new journal whose first trials are `first`, in order."""
    create_study(SPEC, folder)
    study = optuna.load_study(study_name=SPEC.name, storage=journal_storage(folder))
    for c in first:
        study.enqueue_trial(dict(c.params))
    return StudySearcher(SPEC, folder)


def test_asha_stops_trials_at_the_rungs_worked_out_by_hand(tmp_path):
    asha = BaselinesRunFull(SPEC.name, tmp_path, time_attr="training_iteration", metric="val_rmse",
                            mode="min", max_t=4, grace_period=1, reduction_factor=2)
    with driving(tmp_path):
        driver = Logged(service_searcher(tmp_path, (A, B, C)), asha,
                        Lookup(TABLE.curves, SPACE))
        trace = simulate(driver, TABLE.curves, workers=1, budget=7, max_t=4)
        trials = driver.searcher.study.trials
    # One worker. A meets empty rungs and runs all 4 epochs. B: rung 1 cutoff is A's 3.0,
    # 2.5 passes; rung 2 cutoff is A's 2.0, 2.4 is worse: stopped after 2. C: rung 1 cutoff
    # is the median of 3.0 and 2.5 = 2.75, 4.0 is worse: stopped after 1. 4 + 2 + 1 = 7.
    assert driver.epochs == {"00000": 4, "00001": 2, "00002": 1}
    assert trace == [3.0, 2.0, 1.5, 1.0, 1.0, 1.0, 1.0]
    # the service's journal: A complete, B and C pruned with every epoch they trained
    assert [t.state.name for t in trials[:3]] == ["COMPLETE", "PRUNED", "PRUNED"]
    assert [t.intermediate_values for t in trials[1:3]] == [{1: 2.5, 2: 2.4}, {1: 4.0}]


def test_without_a_scheduler_every_trial_runs_max_t_epochs(tmp_path):
    with driving(tmp_path):
        driver = Logged(service_searcher(tmp_path, (C, A)), None, Lookup(TABLE.curves, SPACE))
        # two workers in step: C's and A's epochs interleave, C's first at each time
        trace = simulate(driver, TABLE.curves, workers=2, budget=8, max_t=4)
    assert driver.epochs == {"00000": 4, "00001": 4}
    assert trace == [4.0, 3.0, 3.0, 2.0, 2.0, 1.5, 1.5, 1.0]


@pytest.mark.parametrize("name", [TPE_ASHA, "random + ASHA", "BOHB-style (TPE + Optuna "
                                  "HyperbandPruner)", "TPE + Optuna MedianPruner", "TPE + PASHA",
                                  "TPE + learning-curve stopper", "GP + ASHA",
                                  pytest.param(SMAC, marks=needs_smac)])
def test_the_replay_is_deterministic_per_seed(name):
    builders = {name: policies(SETTING, quick=False)[name]}
    first = replay(TABLE, SETTING, builders, range(3), budget=24)[name]
    again = replay(TABLE, SETTING, builders, range(3), budget=24)[name]
    assert first.shape == (3, len(GRID))
    assert np.array_equal(first, again)


@pytest.mark.parametrize(("name", "sampler", "grace"), [
    ("random + ASHA", optuna.samplers.RandomSampler, 1),  # the study's grace period
    ("random + ASHA, grace 2, factor 3", optuna.samplers.RandomSampler, 2),
    ("random + ASHA, grace 3, factor 3", optuna.samplers.RandomSampler, 3),
    ("TPE + ASHA, grace 3, factor 3", optuna.samplers.TPESampler, 3),
])
def test_a_variant_samples_with_its_sampler_and_stops_no_trial_before_its_grace(
        name, sampler, grace):
    build = policies(SETTING, quick=False)[name]
    with build(SETTING, 0, Lookup(TABLE.curves, SPACE)) as driver:
        simulate(driver, TABLE.curves, workers=2, budget=24, max_t=4)
        assert type(driver.searcher.study.sampler) is sampler
        trials = driver.searcher.study.trials
    ended = [len(t.intermediate_values) for t in trials if t.state.is_finished()]
    # the shortest finished trial is one ASHA stopped at the grace period
    assert min(ended) == grace and max(ended) == 4


def band_at_headline(value, lo, hi):
    """A Band whose only point that matters is the headline's."""
    points = np.full(len(GRID), np.nan)
    at = GRID.index(HEADLINE)
    return Band(*(np.where(np.arange(len(GRID)) == at, x, points) for x in (value, lo, hi)))


def test_within_best_keeps_the_policies_inside_the_best_ones_interval():
    stats = {"best": {"iqm": band_at_headline(0.20, 0.15, 0.30)},
             "inside": {"iqm": band_at_headline(0.29, 0.25, 0.40)},
             "on the bound": {"iqm": band_at_headline(0.30, 0.10, 0.50)},
             "outside": {"iqm": band_at_headline(0.31, 0.16, 0.32)}}
    assert within_best(stats) == {"best", "inside", "on the bound"}


def test_an_optuna_policy_tells_pruned_trials_as_pruned():
    with optuna_policy(_random, _halving)(SETTING, 0, Lookup(TABLE.curves, SPACE)) as driver:
        assert isinstance(driver, OptunaDriver)
        simulate(driver, TABLE.curves, workers=2, budget=24, max_t=4)
    states = {t.state for t in driver.study.get_trials(deepcopy=False)}
    assert optuna.trial.TrialState.PRUNED in states


def test_lookup_matches_the_categorical_value_and_measures_log_ranges_in_logs():
    lookup = Lookup(TABLE.curves, SPACE)
    # On the log range [1, 100] x sits at log10(x) / 2: A (x=2) 0.15, B (x=10) 0.50,
    # F (x=80) 0.95. x=5 (0.35) is nearer B, x=40 (0.80) nearer F; in plain numbers
    # ((x - 1) / 99) x=5 would be nearer A and x=40 nearer B.
    assert lookup({LAMBDA: 5.0, DIVISOR: 1}) == 1
    assert lookup({LAMBDA: 40.0, DIVISOR: 1}) == 5
    assert lookup({LAMBDA: 45.0, DIVISOR: 2}) == 2  # among the d=2 configs only: C (x=50)
    with pytest.raises(ValueError, match="no recorded config"):
        lookup({LAMBDA: 45.0, DIVISOR: 3})


@pytest.mark.parametrize(("found", "regret"), [(1.0, 0.0), (1.5, 0.5), (2.0, 1.0), (3.0, 2.0)])
def test_normalised_regret_is_zero_at_the_best_and_one_at_the_median(found, regret):
    assert normalised_regret(found, best=1.0, reference=2.0) == pytest.approx(regret)


def test_mean_ranks_share_ties():
    # seed 0: p0 < p1 < p2 -> ranks 1, 2, 3; seed 1: p2 best (1), p0 and p1 tie for 2 and 3
    scores = np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 1.0]])
    assert mean_ranks(scores).tolist() == [1.75, 2.25, 2.0]


def test_paired_counts_seeds_better_tied_and_worse_than_the_reference():
    reference = np.array([[1.0, 0.5], [2.0, 0.5], [3.0, 0.5]])  # [seed, fraction]
    scores = np.array([[0.5, 0.5], [2.0, 0.4], [3.5, 0.6]])
    assert paired(scores, reference).tolist() == [[1, 1, 1], [1, 1, 1]]
    assert paired(reference, reference).tolist() == [[0, 3, 0], [0, 3, 0]]


@pytest.mark.parametrize(("keys", "multivariate", "constant_liar"), [
    ({}, False, False), ({"multivariate": True}, True, False),
    ({"constant_liar": True}, False, True),
    ({"multivariate": True, "constant_liar": True}, True, True)])
def test_a_service_variant_hands_its_sampler_keys_to_tpe(keys, multivariate, constant_liar):
    with service_policy("tpe", _asha, **keys)(SETTING, 0, Lookup(TABLE.curves, SPACE)) as driver:
        sampler = driver.searcher.study.sampler
    assert (sampler._multivariate, sampler._constant_liar) == (multivariate, constant_liar)


# G's best epoch (its last) has train_sparse 0.03, below the study's minimum bound 0.06.
G = Curve({LAMBDA: 1.5, DIVISOR: 1}, (2.0, 1.0, 0.9, 0.8), (0.2, 0.1, 0.05, 0.03), 100)


@pytest.mark.parametrize(("constraints", "expected"), [
    (True, [0.06 - 0.1, 0.06 - 0.03, 0.06 - 0.1]), (False, [None, None, None])])
def test_the_constraints_variant_judges_the_recorded_train_sparse(constraints, expected):
    assert SPEC.targets["minimum"]["train_sparse"][0] == 0.06  # generalization.yaml's bound
    table = replace(TABLE, curves=(A, G, C))
    with service_policy("tpe", None, constraints=constraints)(
            SETTING, 0, Lookup(table.curves, SPACE)) as driver:
        for c in table.curves:
            driver.searcher.study.enqueue_trial(dict(c.params))
        simulate(driver, table.curves, workers=1, budget=12, max_t=4)
        trials = driver.searcher.study.get_trials(deepcopy=False)[:3]
    assert [t.constraints.get("train_sparse >= 0.06") for t in trials] == pytest.approx(expected)
    # val_rmse's bound is relative to seed_before, left out of the replay: it counts as met
    assert {t.constraints.get("val_rmse <= 0.85 x seed_before") for t in trials} == {
        0.0 if constraints else None}


def test_the_committed_table_holds_full_curves_of_at_least_100_configs():
    from bench.curves import TABLE as COMMITTED
    from bench.curves import load_table

    table = load_table(COMMITTED)
    assert COMMITTED.stat().st_size < 300_000
    assert len(table.curves) >= 100
    assert table.meta["command"].startswith("python -m bench.curves --record")
    spec = bench_study(table.epochs, root="unused")
    for c in table.curves:
        assert set(c.params) == set(spec.space)
        assert len(c.val_rmse) == len(c.train_sparse) <= table.epochs
        assert c.base_decoder_params > 0


def test_a_table_reads_back_as_written(tmp_path):
    from bench.curves import load_table, save_table

    save_table(TABLE, tmp_path / "curves.json.gz")
    assert load_table(tmp_path / "curves.json.gz") == TABLE


def test_a_table_is_replayed_without_its_baselines_curves(tmp_path):
    from bench.curves import save_table
    from bench.replay import sampled

    unet = Curve({"model": "unet"}, (3.0, 2.0, 1.0, 0.5), (math.nan,) * 4, 0, "unet")
    save_table(replace(TABLE, curves=(unet, *TABLE.curves)), tmp_path / "t.json.gz")
    assert sampled(tmp_path / "t.json.gz").curves == TABLE.curves


class LoggedSmac(SmacDriver):
    """Notes the epochs each SMAC trial reported."""

    def __init__(self, *args):
        super().__init__(*args)
        self.epochs: list[tuple] = []  # (trial info, epochs reported)

    def report(self, trial, result):
        going = super().report(trial, result)
        if not going:
            self.epochs.append((trial.info, result["training_iteration"]))
        return going


@needs_smac
def test_smac_trains_a_trial_the_epochs_of_its_budget_and_is_told_that_epochs_value():
    lookup = Lookup(TABLE.curves, SPACE)
    with smac_policy(SETTING, 0, lookup) as driver:
        logged = LoggedSmac(driver.smac, lookup)
        simulate(logged, TABLE.curves, workers=2, budget=24, max_t=4)
        history = logged.smac.runhistory
        # max_t 4, grace 1, eta 2: Hyperband's budgets 1, 2 and 4 epochs, each reached
        assert {info.budget for info, _ in logged.epochs} == {1, 2, 4}
        told = {(history.get_config(k.config_id), k.budget): history[k].cost for k in history}
        for info, epochs in logged.epochs:
            assert epochs == info.budget
            curve = TABLE.curves[lookup(dict(info.config))]
            assert told[info.config, info.budget] == curve.val_rmse[epochs - 1]


@needs_smac
def test_smac_is_told_a_diverged_trial_as_crashed():
    from smac.runhistory import StatusType

    # every divisor-2 config diverges in its first epoch
    diverged = tuple(replace(c, val_rmse=(), train_sparse=()) if c.params[DIVISOR] == 2 else c
                     for c in TABLE.curves)
    lookup = Lookup(diverged, SPACE)
    with smac_policy(SETTING, 0, lookup) as driver:
        simulate(driver, diverged, workers=2, budget=24, max_t=4)
        history = driver.smac.runhistory
        told = {(history.get_config(k.config_id)[DIVISOR], history[k].status) for k in history
                if history[k].status != StatusType.RUNNING}
    assert told == {(1, StatusType.SUCCESS), (2, StatusType.CRASHED)}


@pytest.mark.parametrize("installed", [True, False])
def test_the_smac_row_is_replayed_where_smac_is_installed_and_said_skipped_where_not(
        monkeypatch, installed):
    monkeypatch.setattr(bench.policies, "smac_installed", lambda: installed)
    names = policies(SETTING, quick=True)
    assert (SMAC in names) is installed
    rows = skipped("question", dict.fromkeys(names, {}))
    if installed:
        assert rows == []
    else:
        (line,) = rows
        assert line["figure"] == f"replay (question): {SMAC}: skipped"
        assert SMAC_INSTALL in line["note"] and not line["ok"]
