"""bench.schedulers on hand-made curves: PASHA's growing maximum budget and the learning-curve
stopper's extrapolation, each decision worked by hand."""

import math
from types import SimpleNamespace

import pytest

from bench.schedulers import CurveStopper, Pasha, rungs

STOP, GO = "STOP", "CONTINUE"


def feed(scheduler, trial_id: str, values: list[float]) -> list[str]:
    """Report the values epoch by epoch until the scheduler stops the trial."""
    trial = SimpleNamespace(trial_id=trial_id, config={})
    scheduler.on_trial_add(None, trial)
    said = []
    for epoch, value in enumerate(values, 1):
        said.append(scheduler.on_trial_result(None, trial, {"training_iteration": epoch,
                                                            "val_rmse": value}))
        if said[-1] == STOP:
            break
    return said


def test_asha_milestones_end_at_max_t():
    assert rungs(1, 2, 8) == [1, 2, 4, 8]
    assert rungs(1, 3, 12) == [1, 3, 9, 12]


def test_pasha_grows_its_budget_only_when_the_top_two_rungs_disagree():
    pasha = Pasha(grace=1, factor=2, max_t=8)
    assert pasha.max_t == 2  # two rungs to begin with
    # a alone in both top rungs: no ranking to compare, so it stops at the maximum, 2
    assert feed(pasha, "a", [3.0, 2.0, 1.0]) == [GO, STOP]
    assert pasha.max_t == 2
    # b: 2.5 at epoch 1 is within the best half of {3.0, 2.5} (cutoff 2.75); at epoch 2 its
    # 2.2 is behind a's 2.0, but at epoch 1 it was ahead: the order changed, the budget grows
    # to 4 (epoch 3 is no rung), where b, alone, stops
    assert feed(pasha, "b", [2.5, 2.2, 2.1, 2.0, 1.9]) == [GO, GO, GO, STOP]
    assert pasha.max_t == 4
    # c: 4.0 at epoch 1 is outside the best half of {3.0, 2.5, 4.0} (cutoff 3.0)
    assert feed(pasha, "c", [4.0, 1.0]) == [STOP]


def test_the_curve_stopper_stops_a_curve_that_cannot_reach_the_best():
    stopper = CurveStopper(grace=1, max_t=16, window=2)
    assert feed(stopper, "a", [2.0, 1.6, 1.4, 1.0]) == [GO] * 4  # the leader is never stopped
    # b: slope (1.7 - 1.8) / ln 2 = -0.144 per log epoch; at 16 epochs 1.7 - 0.144 ln 8 = 1.40,
    # above a's 1.0: stopped at its second epoch (one epoch gives no slope)
    assert stopper.predicted([1.8, 1.7]) == pytest.approx(1.7 - 0.1 / math.log(2) * math.log(8))
    assert feed(stopper, "b", [1.8, 1.7, 1.6]) == [GO, STOP]
    # c falls fast: 1.5 - (1.5 / ln 2) ln 8 = -3.0 < 1.0, so it goes on
    assert feed(stopper, "c", [3.0, 1.5]) == [GO, GO]


def test_a_diverged_report_stops_the_trial_in_both():
    assert feed(Pasha(1, 2, 8), "a", [math.nan]) == [STOP]
    assert feed(CurveStopper(1, 8), "a", [2.0, math.nan]) == [GO, STOP]
