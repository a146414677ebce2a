"""Faults a long search must survive (issue: reliability)."""

import json
import math

import optuna
import pytest
import yaml
from helpers import RUN_LIMIT_S, journal

from tune.experiment import read_rows
from tune.report.data import build_summary
from tune.run import main

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
        rows[baseline] = read_rows(folder / "result.json")
    exploding = rows["exploding"]
    assert len(exploding) == 1  # stopped at once, in its first epoch
    assert exploding[0]["diverged"] == 1 and math.isnan(exploding[0]["val_rmse"])
    assert exploding[0]["stop_reason"].startswith("diverged: loss became")
    assert len(rows["sane"]) == 2  # the search went on

    states = {t.params["learning_rate"]: t.state for t in journal(experiment, "diverging")}
    assert states == {0.001: optuna.trial.TrialState.COMPLETE,
                      1.0e30: optuna.trial.TrialState.FAIL}

    summary = build_summary(experiment)
    assert summary.verdict[0].startswith("Best at the full budget") and "(sane)" in \
        summary.verdict[0]
    assert summary.problems.diverged == 1
    assert any(reason.startswith("diverged") for reason in summary.problems.reasons.values())


@pytest.mark.slow
def test_a_killed_trial_process_is_retried_from_its_checkpoint(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from helpers import trials, wait_for

    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    driver = subprocess.Popen(
        [sys.executable, "-m", "tune.run", "--space", "smoke.yaml", "--storage", str(tmp_path),
         "--name", "worker-killed", "--set", "train.epochs=4", "--set", "scheduler.type=none",
         "--set", "baselines={}", "--set", "targets={}", "--num-samples", "2",
         "--max-concurrent", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    experiment = tmp_path / "worker-killed"

    def first_trial_rows():
        found = trials(experiment) if experiment.exists() else []
        return found[0]["rows"] if found and found[0]["rows"] else None

    try:
        wait_for(lambda: first_trial_rows() is not None, RUN_LIMIT_S, "the first epoch of a trial")
        victim = first_trial_rows()[0]
        os.kill(victim["pid"], signal.SIGKILL)  # the trial's worker, mid-way through epoch 2
        output, _ = driver.communicate(timeout=RUN_LIMIT_S)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, output[-3000:]
    (retried,) = [t for t in trials(experiment) if t["rows"][0]["trial_id"] == victim["trial_id"]]
    iterations = [r["training_iteration"] for r in retried["rows"]]
    assert iterations == [1, 2, 3, 4]  # the epoch count continued; no row twice
    assert len({r["pid"] for r in retried["rows"]}) == 2  # a second worker took over
    assert len(trials(experiment)) == 2


@pytest.mark.slow
def test_two_searches_at_once_share_one_data_build(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    drivers = [subprocess.Popen(
        [sys.executable, "-m", "tune.run", "--space", "smoke.yaml", "--storage",
         str(tmp_path / "results"), "--name", f"search-{i}", "--set", "baselines={}",
         "--set", "targets={}", "--num-samples", "1", "--set", "train.epochs=1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) for i in (1, 2)]
    outputs = []
    for driver in drivers:
        output, _ = driver.communicate(timeout=RUN_LIMIT_S)
        assert driver.returncode == 0, output[-3000:]
        outputs.append(output)
    printed = "".join(outputs)
    assert printed.count("baseres: generating") == 1  # the synthetic set, once
    assert printed.count("baseres: features of split 'train'") == 1
    assert printed.count("baseres: features of split 'val'") == 1
    for i in (1, 2):
        (trial,) = (tmp_path / "results" / f"search-{i}").glob("trial_*")
        assert (trial / "result.json").read_text().strip()
