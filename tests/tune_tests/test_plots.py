"""The plot data the summary draws, built from hand-made trials."""

from helpers import fake_trial

from tune.plots import budget_curve_data


def rows(values: list[float], start: int) -> list[dict]:
    return [{"training_iteration": i + 1, "val_rmse": v, "timestamp": start + i}
            for i, v in enumerate(values)]


def test_the_budget_curve_steps_where_a_searched_trial_finishes_the_full_budget(smoke_spec):
    full = smoke_spec.max_t  # 3 epochs
    trials = [fake_trial("b", rows([1.2, 1.1, 1.0], 0), baseline="seed_after"),   # t 0-2
              fake_trial("early", rows([0.5], 1)),                                # t 1
              fake_trial("s1", rows([1.3, 1.0, 0.9], 3)),                          # t 3-5
              fake_trial("s2", rows([1.4, 1.2, 0.95], 4))]                         # t 4-6
    curve = budget_curve_data(trials, smoke_spec)
    # epochs by time (ties in trial order): b1 | b2 early | b3 | s1.1 | s1.2 s2.1 |
    # s1.3 (the 8th: s1 done) s2.2 | s2.3 (the 10th: s2 done, no better)
    assert curve.epochs == [8, 10] and curve.best == [0.9, 0.9]
    assert [(r.label, r.val_rmse) for r in curve.baselines] == [("seed_after", 1.0)]
    assert curve.budget == smoke_spec.budget.epochs and full == 3


def test_no_full_budget_searched_trial_draws_no_step(smoke_spec):
    curve = budget_curve_data([fake_trial("early", rows([0.5], 0))], smoke_spec)
    assert curve.epochs == [] and curve.best == [] and curve.baselines == []
