"""Two schedulers the replay tries beside Ray's ASHA, with Ray's scheduler interface as the
replay calls it (bench.simulate.RayDriver: on_trial_add, on_trial_result -> CONTINUE or
STOP, on_trial_complete). They live here until the evidence makes one a choice of the study
file's ``scheduler:``.

- ``Pasha``: ASHA whose maximum budget grows only while the rankings of its two top rungs
  disagree (Bohdal et al., "PASHA: efficient HPO and NAS with progressive resource
  allocation", ICLR 2023). It starts with two rungs (grace and grace x factor); a trial that
  reaches the current top rung stops there, unless the rung order of the trials in both top
  rungs differs, which adds the next rung. In PASHA proper a trial stopped at the top rung
  resumes when the rung is added; Ray's stopping ASHA cannot resume a trial, so here it
  stays stopped, and only later trials go further.
- ``CurveStopper``: stops a trial whose optimistic extrapolation of its own learning curve
  cannot beat the best value any trial has reached (the learning-curve extrapolation of
  Domhan et al., IJCAI 2015, in its simplest form: the last `window` epochs' slope against
  log epoch, carried to max_t).
"""

from __future__ import annotations

import math

import numpy as np
from ray.tune.schedulers import TrialScheduler

from bench.simulate import METRIC, TIME_ATTR


def rungs(grace: int, factor: float, max_t: int) -> list[int]:
    """ASHA's milestones grace x factor**k below max_t, then max_t."""
    out, k = [], 0
    while grace * factor**k < max_t:
        out.append(int(grace * factor**k))
        k += 1
    return [*dict.fromkeys(out), max_t]


def order(values: dict[str, float], trials: list[str]) -> list[str]:
    return sorted(trials, key=lambda t: (values[t], t))


class Pasha:
    def __init__(self, grace: int, factor: float, max_t: int):
        self.rungs = rungs(grace, factor, max_t)
        self.factor = factor
        self.top = min(1, len(self.rungs) - 1)  # index of the current maximum rung
        self.recorded: dict[int, dict[str, float]] = {r: {} for r in self.rungs}

    @property
    def max_t(self) -> int:
        """The current maximum budget."""
        return self.rungs[self.top]

    def on_trial_add(self, controller, trial) -> None:
        pass

    def on_trial_complete(self, controller, trial, result) -> None:
        pass

    def on_trial_result(self, controller, trial, result) -> str:
        epoch, value = result[TIME_ATTR], result[METRIC]
        if math.isnan(value):
            return TrialScheduler.STOP
        if epoch not in self.recorded:
            return TrialScheduler.CONTINUE
        rung = self.rungs.index(epoch)
        self.recorded[epoch][trial.trial_id] = value
        if rung >= self.top:
            self._grow_while_rankings_change()
            return TrialScheduler.STOP if rung >= self.top else TrialScheduler.CONTINUE
        # ASHA's rule at a lower rung: on only in the best 1 / factor of the values there
        cutoff = np.percentile(list(self.recorded[epoch].values()), 100 / self.factor)
        return TrialScheduler.CONTINUE if value <= cutoff else TrialScheduler.STOP

    def _grow_while_rankings_change(self) -> None:
        if self.top + 1 >= len(self.rungs):
            return
        upper, lower = self.recorded[self.rungs[self.top]], self.recorded[self.rungs[self.top - 1]]
        both = [t for t in upper if t in lower]
        if len(both) >= 2 and order(upper, both) != order(lower, both):
            self.top += 1


class CurveStopper:
    def __init__(self, grace: int, max_t: int, window: int = 2):
        self.grace, self.max_t, self.window = grace, max_t, window
        self.curves: dict[str, list[float]] = {}
        self.best = math.inf

    def on_trial_add(self, controller, trial) -> None:
        self.curves[trial.trial_id] = []

    def on_trial_complete(self, controller, trial, result) -> None:
        pass

    def predicted(self, curve: list[float]) -> float:
        """The curve's best so far plus its recent slope against log epoch carried to max_t:
        optimistic (a slope flattens), never above the best so far."""
        epoch = len(curve)
        start = max(1, epoch - self.window)
        if epoch == start:
            return min(curve)
        slope = (curve[-1] - curve[start - 1]) / (math.log(epoch) - math.log(start))
        return min(curve) + min(slope, 0.0) * (math.log(self.max_t) - math.log(epoch))

    def on_trial_result(self, controller, trial, result) -> str:
        value = result[METRIC]
        if math.isnan(value):
            return TrialScheduler.STOP
        curve = self.curves.setdefault(trial.trial_id, [])
        curve.append(value)
        # two epochs at least: one gives no slope to extrapolate
        stop = len(curve) >= max(self.grace, 2) and self.predicted(curve) > self.best
        self.best = min(self.best, value)
        return TrialScheduler.STOP if stop else TrialScheduler.CONTINUE
