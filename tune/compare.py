"""Judging trials: against the study's targets (relative ones resolved against a baseline),
against each other at equal budgets, and the verdict in words that a summary opens with.

Plain functions over TrialRecords (tune.experiment), so each rule is tested apart.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from tune.experiment import TrialRecord
from tune.numbers import finite
from tune.study import BASELINE_KEY, Relative, StudySpec


# ----------------------------------------------------------------------------- targets
def in_band(value: float, band: tuple[float | None, float | None]) -> bool:
    """Bands are inclusive at both edges; None is an open side."""
    low, high = band
    return finite(value) and (low is None or value >= low) and (high is None or value <= high)


def band_text(band: tuple[float | None, float | None]) -> str:
    low, high = band
    if low is None:
        return f"<= {high:.4g}"
    if high is None:
        return f">= {low:.4g}"
    return f"in [{low:.4g}, {high:.4g}]"


class TargetCheck(NamedTuple):
    level: str
    metric: str
    value: float
    band: tuple[float | None, float | None]  # resolved to the metric's own unit
    passed: bool | None  # None: cannot be judged (see note)
    scale: str  # how the band was set: "absolute", or "0.85 x seed_before (1.155)"
    note: str = ""  # why it cannot be judged

    def __str__(self) -> str:
        if self.passed is None:
            return f"{self.metric} {self.level}: not judged ({self.note})"
        verdict = "pass" if self.passed else "fail"
        scale = "" if self.scale == "absolute" else f" [{self.scale}]"
        return (f"{self.metric} {self.value:.3g} {band_text(self.band)}{scale} {self.level}: "
                f"{verdict}")


def resolve_bound(bound, metric: str, baselines: dict[str, TrialRecord]
                  ) -> tuple[float | None, str, str]:
    """(value, scale text, why unresolved) of one bound; relative bounds use the baseline's
    value of the same metric at its best epoch."""
    if not isinstance(bound, Relative):
        return bound, "", ""
    bests = {name: trial.best for name, trial in baselines.items()}
    value = bound.resolve(bests, metric)
    if value is None:
        return None, str(bound), f"{bound.of} has no {metric} yet"
    return value, f"{bound} ({bound.reference(bests, metric):.4g})", ""


def judge_targets(trial: TrialRecord, spec: StudySpec,
                  baselines: dict[str, TrialRecord]) -> list[TargetCheck]:
    checks = []
    for level, metrics in spec.targets.items():
        for metric, bounds in metrics.items():
            value = trial.best.get(metric, math.nan) if trial.best else math.nan
            resolved = [resolve_bound(b, metric, baselines) for b in bounds]
            band = (resolved[0][0], resolved[1][0])
            scale = "; ".join(s for _, s, _ in resolved if s) or "absolute"
            unresolved = next((why for _, _, why in resolved if why), "")
            if unresolved:
                checks.append(TargetCheck(level, metric, value, band, None, scale, unresolved))
            elif metric not in (trial.best or {}):
                checks.append(TargetCheck(level, metric, value, band, None, scale,
                                          f"a {trial.model} reports no {metric}"))
            else:
                checks.append(TargetCheck(level, metric, value, band, in_band(value, band),
                                          scale))
    return checks


# ----------------------------------------------------------------------------- equal budgets
def best_within(trial: TrialRecord, epochs: int) -> dict[str, Any] | None:
    """The trial's best row (lowest finite val_rmse) among its first `epochs` epochs."""
    rows = [r for r in trial.rows if finite(r.get("val_rmse"))
            and int(r.get("training_iteration", r.get("epoch", 0))) <= epochs]
    return min(rows, key=lambda r: r["val_rmse"]) if rows else None


class Comparison(NamedTuple):
    """`a` against `b` at the highest epoch both reached (equal budgets)."""

    epoch: int
    a_rmse: float
    b_rmse: float

    @property
    def ratio(self) -> float:
        return self.a_rmse / self.b_rmse if self.b_rmse > 0 else math.nan


def compare(a: TrialRecord, b: TrialRecord) -> Comparison | None:
    epoch = min(a.epochs_run, b.epochs_run)
    rows = best_within(a, epoch), best_within(b, epoch)
    if epoch < 1 or None in rows:
        return None
    return Comparison(epoch, rows[0]["val_rmse"], rows[1]["val_rmse"])


class IsolationRow(NamedTuple):
    value: Any
    trial_id: str | None  # the best trial of this value that ran the full budget
    val_rmse: float  # its best val RMSE
    val_delta1: float
    trials: int  # trials of this value that ran the full budget
    stopped: int  # trials of this value stopped before it (not compared)


def isolation_table(trials: list[TrialRecord], spec: StudySpec) -> list[IsolationRow]:
    """Per value of the study's scientific parameter, the best base + residual trial among
    those that ran the full budget (equal budgets); the trials stopped earlier are counted
    apart, never compared."""
    param = spec.scientific
    if param is None or param not in spec.space:
        return []
    dist = spec.space[param]
    values = list(dist.choices) if hasattr(dist, "choices") else sorted(
        {t.params[param] for t in trials if param in t.params})
    rows = []
    for value in values:
        group = [t for t in trials if t.params.get(param) == value
                 and t.model == "base_residual" and t.best]
        full = [t for t in group if t.epochs_run >= spec.max_t]
        best = min(full, key=lambda t: t.best_val_rmse) if full else None
        rows.append(IsolationRow(
            value, best.trial_id if best else None,
            best.best_val_rmse if best else math.nan,
            best.best.get("val_delta1", math.nan) if best else math.nan,
            len(full), len(group) - len(full)))
    return rows


# ------------------------------------------------------------------------ Pareto front
class ParetoPoint(NamedTuple):
    trial: str
    base_params: int
    val_rmse: float
    scientific: Any  # the trial's value of the study's scientific parameter


def base_parameters(trial: TrialRecord, spec: StudySpec) -> int:
    """The trial's base-decoder parameters, counted on the meta device (nothing allocated)."""
    import torch

    from baseres.model import build_model

    config = spec.trial_config({k: v for k, v in trial.params.items() if k != BASELINE_KEY})
    with torch.device("meta"):
        return build_model(config).param_counts()["base_decoder"]


def full_budget_points(trials: list[TrialRecord], spec: StudySpec) -> list[ParetoPoint]:
    """Base + residual trials that ran the full budget (so compared at equal budgets), each
    as its base-decoder size and best val RMSE."""
    full = [t for t in trials if t.model == "base_residual" and t.best
            and t.epochs_run >= spec.max_t]
    return [ParetoPoint(t.label, base_parameters(t, spec), t.best_val_rmse,
                        t.params.get(spec.scientific)) for t in full]


def pareto_front(points: list[ParetoPoint]) -> list[ParetoPoint]:
    """The seed code's trade-off: the points no other beats on both val RMSE and base-decoder
    size; smallest base first."""

    def dominated(p: ParetoPoint) -> bool:
        return any(q.base_params <= p.base_params and q.val_rmse <= p.val_rmse
                   and (q.base_params, q.val_rmse) != (p.base_params, p.val_rmse)
                   for q in points)

    return sorted((p for p in points if not dominated(p)),
                  key=lambda p: (p.base_params, p.val_rmse))


# ----------------------------------------------------------------------------- verdict
def _epochs(count: int) -> str:
    return f"{count} epoch{'s' if count != 1 else ''}"


def _percent(ratio: float) -> str:
    change = (ratio - 1) * 100
    return f"{abs(change):.1f} % {'better' if change < 0 else 'worse'}"


def verdict(ranked: list[TrialRecord], baselines: dict[str, TrialRecord],
            checks: dict[str, list[TargetCheck]], max_t: int, unit: str = "m") -> list[str]:
    """The summary's opening sentences: the best of the trials that ran the full budget, the
    best searched one (selected from N: optimistic until re-trained) and how it compares with
    each baseline at an equal budget, and the targets no trial met."""
    lines = []
    full = [t for t in ranked if t.epochs_run >= max_t]
    if full:
        lines.append(f"Best at the full budget ({_epochs(max_t)}): {full[0].label}, val RMSE "
                     f"{full[0].best_val_rmse:.4g} {unit}.")
    searched = [t for t in ranked if not t.baseline]
    searched_full = [t for t in searched if t.epochs_run >= max_t]
    if not searched:
        lines.append(f"No searched trial has a result yet ({len(ranked)} trials have one, "
                     "all baselines).")
    elif not searched_full:
        lines.append(f"No searched trial ran the full budget ({len(searched)} searched, each "
                     "stopped early): none is called best.")
    else:
        top = searched_full[0]
        lines.append(f"Best searched trial: {top.label}, val RMSE {top.best_val_rmse:.4g} "
                     f"{unit}, selected from {len(searched_full)} searched trial(s) that ran "
                     "the full budget (optimistic: one seed each).")
        for name, base in baselines.items():
            result = compare(top, base) if base.best else None
            if result is None:
                lines.append(f"  - against {name}: no common epoch to compare at.")
            else:
                lines.append(f"  - against {name}: {_percent(result.ratio)} "
                             f"({result.a_rmse:.4g} vs {result.b_rmse:.4g} {unit} "
                             f"at epoch {result.epoch}).")
    unmet = []
    judged = [c for trial_checks in checks.values() for c in trial_checks]
    for key in dict.fromkeys((c.level, c.metric) for c in judged):
        same = [c for c in judged if (c.level, c.metric) == key]
        if not any(c.passed for c in same):
            why = " (never judged)" if all(c.passed is None for c in same) else ""
            unmet.append(f"{key[1]} {key[0]}{why}")
    lines.append("Targets no trial met: " + (", ".join(unmet) if unmet else "none") + ".")
    return lines
