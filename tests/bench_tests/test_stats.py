"""bench.stats on tables worked by hand."""

import math

import numpy as np
import pytest

from bench.stats import first_reach, iqm, iqm_band, speed_up, wilcoxon_paired


def test_the_interquartile_mean_drops_a_quarter_at_each_end():
    values = np.array([[1.0], [2], [3], [4], [5], [6], [7], [80]])  # 80: an outlying seed
    assert iqm(values) == pytest.approx([4.5])  # mean of 3, 4, 5, 6


def test_the_bootstrap_band_holds_the_iqm_and_closes_on_constant_seeds():
    rng = np.random.default_rng(1)
    regret = rng.random((30, 3))
    band = iqm_band(regret)
    assert np.all(band.lo <= band.value) and np.all(band.value <= band.hi)
    assert np.all(band.hi - band.lo > 0.05)  # 30 uniform seeds: a real interval
    flat = iqm_band(np.full((30, 2), 0.25))
    assert np.allclose([flat.lo, flat.value, flat.hi], 0.25)


def test_the_speed_up_is_when_each_reaches_the_reference_final_regret():
    budgets = np.array([10, 20, 30, 40])
    reference = np.array([1.0, 0.5, 0.2, 0.2])  # reaches its final 0.2 at 30 epochs
    assert first_reach(reference, budgets, 0.2) == 30
    faster = speed_up(np.array([0.6, 0.2, 0.1, 0.1]), reference, budgets)
    assert (faster.target, faster.reference_at, faster.policy_at, faster.ratio) == (
        0.2, 30, 20, 1.5)
    never = speed_up(np.array([0.9, 0.8, 0.7, 0.6]), reference, budgets)
    assert math.isinf(never.policy_at) and never.ratio == 0.0


def test_wilcoxon_on_ten_seeds_all_better_is_two_in_two_to_the_tenth():
    reference = np.arange(10) + 1.0
    policy = reference - np.arange(1, 11) / 100  # lower on every seed, by distinct amounts
    paired = wilcoxon_paired(policy, reference)
    assert (paired.better, paired.ties, paired.worse) == (10, 0, 0)
    assert paired.p_value == pytest.approx(2 / 2**10)  # exact: one sign pattern of 1024, x2


def test_wilcoxon_says_nothing_when_every_seed_ties():
    assert wilcoxon_paired(np.zeros(30), np.zeros(30)) == (0, 30, 0, 1.0)
