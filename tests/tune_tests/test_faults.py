"""Faults a long search must survive (issue: reliability)."""

import json
import math

import optuna
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from tune.run import JOURNAL_FILE, main
from tune.summary import build_summary

DIVERGING_STUDY = {
    "name": "diverging",
    "num_samples": 2,
    "max_concurrent_trials": 2,
    "data": {"dataset": "synthetic"},
    "train": {"epochs": 2, "batch_size": 16, "image_size": 32, "base_channels": 8},
    "search": {"learning_rate": {"type": "categorical", "choices": [0.001, 1.0e30]}},
    "baselines": {"sane": {"learning_rate": 0.001}, "exploding": {"learning_rate": 1.0e30}},
    "scheduler": {"type": "none"},
}


def test_a_diverging_trial_stops_fails_in_optuna_and_is_never_best(ray_session, tmp_path):
    study = tmp_path / "diverging.yaml"
    study.write_text(yaml.safe_dump(DIVERGING_STUDY))
    assert main(["--space", str(study), "--storage", str(tmp_path / "results")]) == 0
    experiment = tmp_path / "results" / "diverging"

    rows = {}
    for folder in experiment.glob("trial_*"):
        baseline = json.loads((folder / "params.json").read_text())["baseline"]
        rows[baseline] = [json.loads(line) for line in (folder / "result.json").open()]
    exploding = rows["exploding"]
    assert len(exploding) == 1  # stopped at once, in its first epoch
    assert exploding[0]["diverged"] == 1 and math.isnan(exploding[0]["val_rmse"])
    assert exploding[0]["stop_reason"].startswith("diverged: loss became")
    assert len(rows["sane"]) == 2  # the search went on

    storage = JournalStorage(JournalFileBackend(str(experiment / JOURNAL_FILE)))
    trials = optuna.load_study(study_name="diverging", storage=storage).trials
    states = {t.params["learning_rate"]: t.state for t in trials}
    assert states == {0.001: optuna.trial.TrialState.COMPLETE,
                      1.0e30: optuna.trial.TrialState.FAIL}

    summary = build_summary(experiment)
    assert summary["best"]["trial"].endswith("(sane)")
    assert summary["problems"]["diverged"] == 1
    assert any(reason.startswith("diverged") for reason in summary["problems"]["reasons"].values())
