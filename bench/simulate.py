"""A discrete-event replay of a search on the recorded curve table (bench/curves.py): the real
searcher and scheduler objects, called as Ray Tune's TuneController calls them, with N
workers and a clock in epochs.

Why this is Ray's controller for these calls (ray/tune/execution/tune_controller.py, Ray
2.60, read for this module):

- A new trial: ``SearchGenerator.next_trial`` asks the searcher for a config
  (``searcher.suggest(trial_id)``, only while the ConcurrencyLimiter that
  ``max_concurrent_trials`` installs has a free slot), then ``add_trial`` calls
  ``scheduler.on_trial_add``. Here: a free worker asks, and adds, in the same order.
- Each reported epoch (``_process_trial_result``): ``scheduler.on_trial_result`` decides
  first; on STOP the searcher is *not* told the result; otherwise
  ``searcher.on_trial_result`` gets it. The trial's ``last_result`` becomes this result
  either way.
- A trial that ends (STOP, or its function returns after the last epoch) goes through
  ``stop_trial``: a RUNNING trial gets ``scheduler.on_trial_complete`` and
  ``searcher.on_trial_complete(trial_id, result=last_result)``. The duplicate "done"
  result Ray feeds after a function trainable returns repeats the last epoch: the FIFO
  scheduler answers CONTINUE and Optuna ignores a second report of the same step, so it
  changes nothing and is left out.
- ASHA never pauses, so ``choose_trial_to_run`` (FIFO's: the first pending trial) is the
  worker taking the next new trial. The schedulers read only ``trial_id`` and ``config``
  of a trial and never the controller (passed as None, so any use would fail loudly).
  Ray's synchronous HyperBandScheduler is not driven: it pauses trials and stops or
  resumes other trials through the controller (``stop_trial``, ``pause_trial``, its
  ``choose_trial_to_run`` among paused trials), which this replay does not emulate;
  Hyperband comes from Optuna's HyperbandPruner instead (bench.replay).

A trial's record is the recorded curve of the table config nearest to its suggested
config: same categorical values (the base decoder's divisor changes the model), then the
least Euclidean distance with every number scaled to [0, 1] of its range (the logarithm for
``log`` ranges); a baseline the service's searcher runs replays the table's curve of that
baseline. A search runs a fixed number of epochs (every policy the same), or, as the service
spends an epoch budget, until its searcher answers FINISHED and the trials then running have
ended. Every epoch costs one unit of time on its worker (budget and time are
both counted in epochs); events at the same time run in worker order, so a replay is a
pure function of its seed.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from bench.curves import Curve
from tune.experiment import DIVERGED
from tune.study import BASELINE_KEY

METRIC = "val_rmse"
TIME_ATTR = "training_iteration"


class Lookup:
    """Suggested config -> index of the nearest recorded sampled config; a baseline's config
    (the service's, named by BASELINE_KEY) -> the index of that baseline's recorded curve."""

    def __init__(self, curves: tuple[Curve, ...], space: dict[str, BaseDistribution]):
        self.space = space
        self.numeric = [k for k, d in space.items() if not isinstance(d, CategoricalDistribution)]
        self.categorical = [k for k in space if k not in self.numeric]
        self.baselines = {c.baseline: i for i, c in enumerate(curves) if c.baseline is not None}
        self.rows = [i for i, c in enumerate(curves) if c.baseline is None]
        sampled = [curves[i] for i in self.rows]
        self.keys = [tuple(c.params[k] for k in self.categorical) for c in sampled]
        points = [self._scaled(c.params) for c in sampled]
        self.points = np.array(points).reshape(len(points), -1)

    def _scaled(self, params: dict[str, Any]) -> list[float]:
        out = []
        for name in self.numeric:
            dist, value = self.space[name], float(params[name])
            low, high = float(dist.low), float(dist.high)
            if dist.log:
                value, low, high = math.log(value), math.log(low), math.log(high)
            out.append((value - low) / (high - low))
        return out

    def __call__(self, params: dict[str, Any]) -> int:
        if params.get(BASELINE_KEY) is not None:
            return self.baselines[params[BASELINE_KEY]]
        key = tuple(params[k] for k in self.categorical)
        same = np.array([k == key for k in self.keys])
        if not same.any():
            raise ValueError(f"no recorded config has {dict(zip(self.categorical, key))}")
        distance = np.linalg.norm(self.points - np.array(self._scaled(params)), axis=1)
        return self.rows[int(np.argmin(np.where(same, distance, np.inf)))]


@dataclass
class SimTrial:
    """What Ray's schedulers read of a trial."""

    trial_id: str
    config: dict[str, Any]
    status: str = "RUNNING"
    last_result: dict[str, Any] = field(default_factory=dict)


class RayDriver:
    """A Ray Tune searcher (the service's tune.searcher.StudySearcher) and scheduler (its
    BaselinesRunFull, or None for FIFO), called as the TuneController calls them."""

    def __init__(self, searcher, scheduler, lookup: Lookup):
        self.searcher, self.scheduler, self.lookup = searcher, scheduler, lookup

    def start(self, number: int) -> tuple[SimTrial, int] | None:
        """The next trial and its curve's index; None once the searcher is FINISHED (its
        budget spent)."""
        trial_id = f"{number:05d}"
        config = self.searcher.suggest(trial_id)
        if config == Searcher.FINISHED:
            return None
        trial = SimTrial(trial_id, config)
        if self.scheduler is not None:
            self.scheduler.on_trial_add(None, trial)
        return trial, self.lookup(config)

    def report(self, trial: SimTrial, result: dict[str, Any]) -> bool:
        """True: the trial goes on."""
        result = {**result, "trial_id": trial.trial_id}
        stop = (self.scheduler is not None
                and self.scheduler.on_trial_result(None, trial, result) == TrialScheduler.STOP)
        if not stop:
            self.searcher.on_trial_result(trial.trial_id, result)
        trial.last_result = result
        return not stop

    def finish(self, trial: SimTrial) -> None:
        if self.scheduler is not None:
            self.scheduler.on_trial_complete(None, trial, trial.last_result)
        self.searcher.on_trial_complete(trial.trial_id, result=trial.last_result)
        trial.status = "TERMINATED"


class OptunaDriver:
    """Optuna's own loop: ask, ``trial.report`` each epoch, ``should_prune``, tell (PRUNED
    when pruned, else the last epoch's value, as OptunaSearch tells it)."""

    def __init__(self, study, space: dict[str, BaseDistribution], lookup: Lookup):
        self.study, self.space, self.lookup = study, space, lookup
        self.last: dict[int, float | None] = {}  # trial number -> last value; None: pruned

    def start(self, number: int):
        trial = self.study.ask(dict(self.space))
        self.last[trial.number] = math.nan
        return trial, self.lookup(trial.params)

    def report(self, trial, result: dict[str, Any]) -> bool:
        from optuna.trial import TrialState

        value = result[METRIC]
        if math.isnan(value):
            return True  # diverged: finish() tells it as failed
        trial.report(value, result[TIME_ATTR])
        if trial.should_prune():
            self.study.tell(trial, state=TrialState.PRUNED)
            self.last[trial.number] = None
            return False
        self.last[trial.number] = value
        return True

    def finish(self, trial) -> None:
        from optuna.trial import TrialState

        value = self.last.pop(trial.number)
        if value is not None and math.isnan(value):
            self.study.tell(trial, state=TrialState.FAIL)
        elif value is not None:
            self.study.tell(trial, value)


@dataclass
class SmacTrial:
    """A trial SMAC asked for: its TrialInfo, the epochs its budget buys, the last value."""

    info: Any
    epochs: int
    last: float = math.nan


class SmacDriver:
    """SMAC3's ask and tell (smac.MultiFidelityFacade). Its Hyperband continues no trial: a
    config promoted to a larger budget is asked again and trains from the first epoch. A
    budget is epochs, rounded to whole ones (max_t 16, eta 3: SMAC's 1.78, 5.33 and 16 run
    2, 5 and 16). SMAC is told the last epoch's val RMSE, as OptunaSearch tells a trial; a
    diverged trial as crashed (SMAC's crash cost)."""

    def __init__(self, smac, lookup: Lookup):
        self.smac, self.lookup = smac, lookup

    def start(self, number: int) -> tuple[SmacTrial, int]:
        info = self.smac.ask()
        return SmacTrial(info, max(1, round(info.budget))), self.lookup(dict(info.config))

    def report(self, trial: SmacTrial, result: dict[str, Any]) -> bool:
        trial.last = result[METRIC]
        return result[TIME_ATTR] < trial.epochs and not math.isnan(trial.last)

    def finish(self, trial: SmacTrial) -> None:
        from smac.runhistory import StatusType, TrialValue

        value = (TrialValue(cost=math.inf, status=StatusType.CRASHED) if math.isnan(trial.last)
                 else TrialValue(cost=trial.last))
        self.smac.tell(trial.info, value, save=False)  # save: a JSON file per tell


def records(curve: Curve, max_t: int) -> list[dict[str, Any]]:
    """The per-epoch results the trainable reports; a diverged curve ends with a NaN report
    (tune.trainable.train_trial's), which also costs its epoch."""
    rows = [{TIME_ATTR: epoch, METRIC: value, "train_sparse": sparse}
            for epoch, (value, sparse) in enumerate(zip(curve.val_rmse, curve.train_sparse), 1)]
    if len(rows) < max_t:
        rows.append({TIME_ATTR: len(rows) + 1, METRIC: math.nan, DIVERGED: 1.0})
    return rows


def simulate(driver, curves: tuple[Curve, ...], workers: int, budget: int | None,
             max_t: int) -> list[float]:
    """Run the search until `budget` epochs are spent (None: until the searcher is FINISHED
    and the trials then running have ended, as the service spends its budget); the best val
    RMSE after each epoch report, in the order the reports happen."""
    best, trace, number, finished = math.inf, [], 0, False
    queue: list[tuple[int, int, Any, list, int]] = []  # (time, worker, trial, records, next)

    def launch(now: int, worker: int) -> None:
        nonlocal number, finished
        started = None if finished else driver.start(number)
        if started is None:  # Ray's SearchGenerator asks a FINISHED searcher no more
            finished = True
            return
        trial, row = started
        number += 1
        heapq.heappush(queue, (now + 1, worker, trial, records(curves[row], max_t), 0))

    for worker in range(workers):
        launch(0, worker)
    while queue and (budget is None or len(trace) < budget):
        now, worker, trial, rows, index = heapq.heappop(queue)
        result = rows[index]
        going = driver.report(trial, result)
        if not math.isnan(result[METRIC]):
            best = min(best, result[METRIC])
        trace.append(best)
        if going and index + 1 < len(rows):
            heapq.heappush(queue, (now + 1, worker, trial, rows, index + 1))
        else:
            driver.finish(trial)
            launch(now, worker)
    return trace
