"""Statistics of replayed search policies that a reviewer accepts (Agarwal et al., "Deep RL
at the edge of the statistical precipice", for the interquartile mean and its bootstrap):
per policy, the interquartile mean (IQM) of normalised regret over seeds at each point of the
budget with a percentile-bootstrap 95 % interval over seeds; the speed-up to reach a
reference policy's final IQM regret; and a paired Wilcoxon signed-rank test against the
reference on the same seeds. Pure functions of arrays, returning NamedTuples."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

BOOTSTRAP = 2000  # resamples of the seeds
CONFIDENCE = 0.95


def iqm(values: np.ndarray) -> np.ndarray:
    """The interquartile mean over axis 0 (seeds): the mean of the middle 50 % of the values,
    robust to a few outlying seeds yet using half of them (the median uses one or two)."""
    from scipy.stats import trim_mean

    return np.asarray(trim_mean(values, 0.25, axis=0))


class Band(NamedTuple):
    """A statistic over the budget with its interval: one value per budget point."""

    value: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def iqm_band(regret: np.ndarray, seed: int = 0) -> Band:
    """IQM of regret[seed, point] at each budget point, with a percentile bootstrap 95 %
    interval over seeds (the seeds resampled with replacement, `BOOTSTRAP` times)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(regret), size=(BOOTSTRAP, len(regret)))
    samples = np.stack([iqm(regret[p]) for p in picks])
    tail = (1 - CONFIDENCE) / 2 * 100
    return Band(iqm(regret), np.percentile(samples, tail, axis=0),
                np.percentile(samples, 100 - tail, axis=0))


def first_reach(curve: np.ndarray, budgets: np.ndarray, target: float) -> float:
    """The first budget at which `curve` is at or below `target`; inf if it never is."""
    reached = np.flatnonzero(curve <= target + 1e-12)
    return float(budgets[reached[0]]) if len(reached) else math.inf


class SpeedUp(NamedTuple):
    target: float  # the reference's IQM regret at the whole budget
    reference_at: float  # the budget at which the reference first reaches it
    policy_at: float  # ... and the policy (inf: never within the budget)
    ratio: float  # reference_at / policy_at: > 1 is faster; 0 when the policy never gets there


def speed_up(policy: np.ndarray, reference: np.ndarray, budgets: np.ndarray) -> SpeedUp:
    """How much sooner the policy's IQM curve reaches the reference's final IQM regret."""
    target = float(reference[-1])
    ref_at, at = first_reach(reference, budgets, target), first_reach(policy, budgets, target)
    return SpeedUp(target, ref_at, at, ref_at / at if math.isfinite(at) else 0.0)


class Paired(NamedTuple):
    better: int  # seeds on which the policy's regret is lower than the reference's
    ties: int
    worse: int
    p_value: float  # Wilcoxon signed-rank, two-sided, zero differences split between signs


def wilcoxon_paired(policy: np.ndarray, reference: np.ndarray) -> Paired:
    """The policy against the reference on the same seeds, at one budget point."""
    from scipy.stats import wilcoxon

    diff = np.asarray(policy, float) - np.asarray(reference, float)
    better, worse = int((diff < 0).sum()), int((diff > 0).sum())
    if better + worse == 0:
        return Paired(0, len(diff), 0, 1.0)
    # zsplit: the zero differences (both reached the table's best) count half each way, so a
    # policy that ties on most seeds is not called different on the few that differ
    return Paired(better, len(diff) - better - worse, worse,
                  float(wilcoxon(diff, zero_method="zsplit").pvalue))
