"""The searcher wrapper on a real OptunaSearch and journal: a resumed search's stale state."""

import optuna

from tune.experiment import journal_storage
from tune.space import load_study
from tune.trainable import BaselineSearcher

SMOKE = load_study("smoke.yaml")


def optuna_search(folder):
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch(space=dict(SMOKE.space), metric="val_rmse", mode="min",
                        study_name="s", storage=journal_storage(folder),
                        sampler=optuna.samplers.RandomSampler(seed=0))


def test_a_trial_the_journal_finished_is_not_told_again_after_a_resume(tmp_path):
    live = BaselineSearcher(optuna_search(tmp_path), [])
    live.suggest("a")
    saved = tmp_path / "searcher.pkl"
    live.searcher.save(str(saved))  # Ray saves this state every few seconds, not per event
    live.on_trial_result("a", {"val_rmse": 2.0, "training_iteration": 1})
    live.on_trial_complete("a", {"val_rmse": 1.5, "training_iteration": 2})

    stale = optuna_search(tmp_path)
    stale.restore(str(saved))  # what --resume loads: "a" still running in this state
    resumed = BaselineSearcher(stale, [])
    resumed.on_trial_result("a", {"val_rmse": 1.9, "training_iteration": 1})  # no crash
    resumed.on_trial_complete("a", {"val_rmse": 1.4, "training_iteration": 2})

    (trial,) = optuna.load_study(study_name="s", storage=journal_storage(tmp_path)).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == 1.5
    assert trial.intermediate_values == {1: 2.0}
    assert trial.user_attrs == {"ray_trial_id": "a", "model": "base_residual"}
