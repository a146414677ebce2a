"""The search-efficiency arithmetic: which epoch of which trial first reached the target."""


import pytest
from helpers import fake_trial

from bench.search_efficiency import best_rmse, epoch_reports, epochs_to_reach


def trial(trial_id, start, values, diverged_after=False):
    rows = [{"trial_id": trial_id, "timestamp": start + 10 * i, "training_iteration": i + 1,
             "val_rmse": v} for i, v in enumerate(values)]
    if diverged_after:
        rows.append({"trial_id": trial_id, "timestamp": start + 10 * len(values),
                     "training_iteration": len(values) + 1, "val_rmse": float("nan"),
                     "diverged": 1.0})
    return fake_trial(trial_id, rows)


# a starts at 0 (reports at 0, 10, 20), b at 5 (5, 15): time order a1 b1 a2 b2 a3
TRIALS = [trial("a", 0, [2.0, 1.5, 1.2]), trial("b", 5, [1.8, 1.3], diverged_after=True)]


@pytest.mark.parametrize(("target", "spent"), [
    (2.0, 1),    # the very first report
    (1.8, 2),    # b's first epoch, reported second
    (1.4, 4),    # b's second epoch comes before a's third
    (1.2, 5),    # equal counts as reached
    (1.1, None),  # never
])
def test_epochs_to_reach_counts_every_trial_epochs_in_time_order(target, spent):
    assert epochs_to_reach(TRIALS, target) == spent


def test_a_divergence_report_is_no_epoch_and_no_best():
    assert len(epoch_reports(TRIALS)) == 5
    assert best_rmse(TRIALS) == 1.2
