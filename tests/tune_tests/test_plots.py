"""The plot data the summary draws, built from hand-made trials."""

import pytest
from helpers import fake_trial

from tune.report.plots import budget_curve_data


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


def test_the_question_figure_draws_each_place_per_arm_and_the_answers_intervals():
    """Two seeds at places A..D: per arm (the positive control too) and for the primary
    contrast a point per place, its seeds' mean, and the interval summary.json states."""
    import json

    from helpers import drawn_columns, expected_columns, gap_records

    from tune.question.answer import CONTROL, answer, answer_json
    from tune.report.plots import question_figure, question_plot_data

    records = (gap_records(1, {1: [0.3, 0.2, 0.25, 0.4], 2: [0.35, 0.1, 0.3, 0.45]})
               + gap_records(4, {1: [0.1, 0.05, 0.2, 0.1], 2: [0.2, 0.1, 0.1, 0.2]})
               + gap_records(CONTROL, {1: [0.8, 0.7, 0.9, 1.0], 2: [0.85, 0.6, 0.95, 1.1]}))
    result = answer(records, "base_channel_divisor", (1, 4), [], 16, 0.02)
    figure = question_figure(question_plot_data(result, "the plain U-Net"))
    expected = expected_columns(json.loads(json.dumps(answer_json(result))))
    drawn = drawn_columns(figure)
    assert set(drawn) == {"1", "4", "control", "contrast"} == set(expected)
    for key, column in expected.items():
        assert len(drawn[key]["places"]) == 4
        assert drawn[key]["places"] == pytest.approx(column["places"]), key
        assert drawn[key]["interval"] == pytest.approx(column["interval"]), key
    assert "4 places, 2 seeds, models of 16 epochs" in figure.get_suptitle()
