"""Intervals for values measured per place and per training seed, where every place of a seed
shares that seed's models: a crossed places x seeds analysis of variance.

A value y[p, s] (a place gap, a contrast of two arms' place gaps) varies with the place, with
the seed (its models were trained from it, so all its places move together) and with the rest.
The mean over places and seeds has the variance
``var_place / P + var_seed / S + var_residual / (P S)``: averaging the seeds first and taking a
t over places leaves the seed term out (on this project's data that interval held the truth
84 % of the time at a nominal 95 %). The components come from the balanced two-way ANOVA
without replication, each truncated at 0, with Satterthwaite's degrees of freedom; so the
standard error is never below the one the places alone (a t over place means) or the seeds
alone (a t over seed means) give. With one seed the seed term cannot be estimated (a t over
places, marked so); with one place, a t over seeds.

Pure functions returning NamedTuples (tested on hand-made tables and by simulated coverage).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

ALPHA = 0.05  # two-sided: 95 % intervals
POWER = 0.80  # the power at which the detectable effect is stated
MIN_SEEDS = 3  # below this the seed term rests on one or two values: no decisive verdict
MAX_PLANNED_SEEDS = 100  # the planner looks no further

CROSSED = "crossed places x seeds ANOVA (variance components truncated at 0), Satterthwaite df"
PLACES_ONLY = "t over places (one seed: the seed-to-seed variance is unknown)"
SEEDS_ONLY = "t over seeds (one place)"


class Components(NamedTuple):
    """Variance components in m^2 (their square roots are the SDs summary.json states)."""

    place: float
    seed: float
    residual: float

    def sds(self) -> dict[str, float]:
        return {name: math.sqrt(value) if math.isfinite(value) else math.nan
                for name, value in self._asdict().items()}


class Interval(NamedTuple):
    """The mean over places and seeds with its two-sided 95 % interval."""

    mean: float
    lo: float
    hi: float
    se: float  # standard error of the mean
    df: float  # degrees of freedom of the t quantile
    p_value: float  # two-sided, against a mean of 0
    places: int
    seeds: int
    method: str
    components: Components | None  # None where the method cannot separate them

    @property
    def defined(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    def text(self, unit: str = " m") -> str:
        if not self.defined:
            return f"{self.mean:+.3f}{unit} (no interval)"
        return f"{self.mean:+.3f}{unit} [{self.lo:+.3f}, {self.hi:+.3f}]"


def _interval(mean: float, se: float, df: float, places: int, seeds: int, method: str,
              components: Components | None = None) -> Interval:
    from scipy import stats

    if not (math.isfinite(se) and df > 0):
        return Interval(mean, math.nan, math.nan, se, df, math.nan, places, seeds, method,
                        components)
    half = float(stats.t.ppf(1 - ALPHA / 2, df)) * se
    if se == 0:
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(2 * stats.t.sf(abs(mean) / se, df))
    return Interval(mean, mean - half, mean + half, se, df, p, places, seeds, method,
                    components)


def t_interval(values: Sequence[float], places: int, seeds: int, method: str) -> Interval:
    """Mean and Student-t interval over `values` (NaN bounds for fewer than two)."""
    values = [float(v) for v in values]
    n = len(values)
    mean = sum(values) / n if n else math.nan
    if n < 2:
        return _interval(mean, math.nan, 0, places, seeds, method)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return _interval(mean, sd / math.sqrt(n), n - 1, places, seeds, method)


def satterthwaite(terms: Sequence[tuple[float, float]]) -> float:
    """Degrees of freedom of a sum of (mean square x coefficient, its df) terms."""
    total = sum(value for value, _ in terms)
    spread = sum(value ** 2 / df for value, df in terms if value != 0)
    return total ** 2 / spread if spread > 0 else math.inf


def crossed_interval(cells: Mapping[tuple[str, int], float]) -> Interval:
    """cells[(place, seed)] -> value; the places every seed has (a complete block)."""
    import numpy as np

    seeds = sorted({s for _, s in cells})
    places = sorted(p for p in {p for p, _ in cells} if all((p, s) in cells for s in seeds))
    n_p, n_s = len(places), len(seeds)
    if n_p == 0:
        return _interval(math.nan, math.nan, 0, 0, n_s, CROSSED)
    y = np.array([[cells[p, s] for s in seeds] for p in places], dtype=float)
    if n_s == 1:
        return t_interval(y[:, 0], n_p, 1, PLACES_ONLY)
    if n_p == 1:
        return t_interval(y[0], 1, n_s, SEEDS_ONLY)
    grand = float(y.mean())
    by_place, by_seed = y.mean(axis=1), y.mean(axis=0)
    ms_place = n_s * float(((by_place - grand) ** 2).sum()) / (n_p - 1)
    ms_seed = n_p * float(((by_seed - grand) ** 2).sum()) / (n_s - 1)
    df_res = (n_p - 1) * (n_s - 1)
    residual = y - by_place[:, None] - by_seed[None, :] + grand
    ms_res = float((residual ** 2).sum()) / df_res
    components = Components(max(0.0, (ms_place - ms_res) / n_s),
                            max(0.0, (ms_seed - ms_res) / n_p), ms_res)
    scaled, df = _combined(components, (ms_place, ms_seed, ms_res), (n_p - 1, n_s - 1, df_res))
    return _interval(grand, math.sqrt(scaled / (n_p * n_s)), df, n_p, n_s, CROSSED, components)


def _combined(components: Components, mean_squares: tuple[float, float, float],
              dfs: tuple[int, int, int]) -> tuple[float, float]:
    """n_p n_s var(mean) = n_s var_place + n_p var_seed + var_residual, written in mean
    squares (a truncated component drops its MS - MS_res), and its Satterthwaite df."""
    use_place, use_seed = components.place > 0, components.seed > 0
    coefficients = (float(use_place), float(use_seed), 1.0 - use_place - use_seed)
    terms = [(c * ms, df) for c, ms, df in zip(coefficients, mean_squares, dfs) if c != 0]
    return sum(value for value, _ in terms), satterthwaite(terms)


def detectable_effect(interval: Interval) -> float:
    """The smallest true effect this design finds with POWER at two-sided ALPHA:
    (t_{1-alpha/2} + t_{power}) x SE, with the interval's own SE and degrees of freedom."""
    from scipy import stats

    if not (math.isfinite(interval.se) and interval.df > 0):
        return math.nan
    df = interval.df
    return float((stats.t.ppf(1 - ALPHA / 2, df) + stats.t.ppf(POWER, df)) * interval.se)


def planned_half_width(components: Components, places: int, seeds: int) -> float:
    """The expected half-width of the crossed interval with `seeds` seeds at `places` places
    (each mean square at its expectation)."""
    from scipy import stats

    expected = (components.residual + seeds * components.place,
                components.residual + places * components.seed, components.residual)
    scaled, df = _combined(components, expected, (places - 1, seeds - 1,
                                                  (places - 1) * (seeds - 1)))
    return float(stats.t.ppf(1 - ALPHA / 2, df)) * math.sqrt(scaled / (places * seeds))


def seeds_needed(components: Components, places: int, half_width: float) -> int | None:
    """The fewest seeds (>= MIN_SEEDS) whose expected half-width is <= `half_width`; None when
    even MAX_PLANNED_SEEDS do not reach it (the place term alone is too wide: more places)."""
    for seeds in range(MIN_SEEDS, MAX_PLANNED_SEEDS + 1):
        if planned_half_width(components, places, seeds) <= half_width:
            return seeds
    return None


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: each p-value as it must be read after testing them all
    (NaN stays NaN and is not counted)."""
    order = sorted((p, i) for i, p in enumerate(p_values) if math.isfinite(p))
    m = len(order)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted
