"""The search's budget, read from an Optuna study as the journal holds it: the epochs every
trial reported (each once, baselines and early stops included), the seconds kept across
resumes, and which part of the budget ends the search."""

import dataclasses

import optuna
import pytest

from tune.budget import SECONDS, Clock, Spent, exhausted, spent
from tune.study import Budget

LOST = "lost"


def study_with(epochs_per_trial: list[int], lost: tuple[int, ...] = ()):
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    for number, epochs in enumerate(epochs_per_trial):
        trial = study.ask()
        for step in range(1, epochs + 1):
            trial.report(1.0 / step, step)
        if number in lost:
            trial.set_user_attr(LOST, True)
        study.tell(trial, state=optuna.trial.TrialState.FAIL if number in lost
                   else optuna.trial.TrialState.PRUNED)
    study.ask()  # one running trial, no epoch yet
    return study


def test_spent_counts_every_reported_epoch_and_the_trials_closed():
    study = study_with([16, 1, 3, 2], lost=(3,))
    study.set_user_attr(SECONDS, 42.5)
    # 16 + 1 + 3 + 2 epochs; the lost trial's epochs were spent too, but it is not finished
    assert spent(study, LOST) == Spent(22, 42.5, 4, 3)


@pytest.mark.parametrize("budget, num_samples, used, ended", [
    (Budget(22, None), None, Spent(22, 0.0, 4, 3), "epoch budget spent (22 of 22 epochs)"),
    (Budget(23, None), None, Spent(22, 0.0, 4, 3), None),
    (Budget(None, 60.0), None, Spent(22, 61.0, 4, 3), "time budget spent (61 of 60 s)"),
    (Budget(100, 60.0), None, Spent(22, 59.0, 4, 3), None),
    (Budget(None, None), 3, Spent(22, 0.0, 4, 3), "all 3 trials finished"),
    (Budget(100, None), 4, Spent(22, 0.0, 4, 3), None),
])
def test_the_first_part_of_the_budget_spent_ends_the_search(smoke_spec, budget, num_samples,
                                                             used, ended):
    spec = dataclasses.replace(smoke_spec, budget=budget, num_samples=num_samples)
    assert exhausted(spec, used) == ended


def test_the_clock_adds_this_session_to_what_earlier_ones_recorded(monkeypatch):
    study = study_with([])
    study.set_user_attr(SECONDS, 100.0)
    now = [1000.0]
    monkeypatch.setattr("tune.budget.time.monotonic", lambda: now[0])
    clock = Clock()
    now[0] = 1010.0
    clock.start()  # the first trial asked for: the question's runs before it do not count
    now[0] = 1040.0
    clock.record(study)
    assert study.user_attrs[SECONDS] == pytest.approx(130.0)
    restored = Clock.__new__(Clock)  # as a resumed searcher comes back from Ray's state
    restored.__dict__.update(clock.__getstate__())
    now[0] = 2000.0
    restored.start()
    now[0] = 2010.0
    restored.record(study)  # 10 s of the new session on top of the 130 recorded
    assert study.user_attrs[SECONDS] == pytest.approx(140.0)
