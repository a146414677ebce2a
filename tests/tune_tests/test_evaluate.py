"""After the search: the test split scored once (tune.evaluate), and the baselines and the best
configs re-trained with fresh seeds (tune.confirm), resumable after a kill."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tune.evaluate import main as evaluate_main
from tune.space import load_study

SMOKE = load_study("smoke.yaml")


@pytest.fixture
def experiment(smoke_experiment, tmp_path):
    copy = tmp_path / "smoke"
    shutil.copytree(smoke_experiment, copy)
    return copy


def test_evaluate_scores_every_baseline_once_on_test(experiment, capsys):
    assert evaluate_main([str(experiment), "--split", "test", "--top", "1"]) == 0
    report = json.loads((experiment / "evaluation-test.json").read_text())
    labels = [row["label"] for row in report["trials"]]
    assert {row["baseline"] for row in report["trials"]} == set(SMOKE.baselines) | {None}
    assert len(labels) == len(SMOKE.baselines) + 1
    for row in report["trials"]:
        for column in report["columns"]:
            assert math.isfinite(row[column]["rmse"]) and 0 < row[column]["rmse"] < 12
            assert 0 <= row[column]["delta1"] <= 1 and row[column]["samples"] > 0
            # each column next to the mean training depth map scored on the same samples
            assert row[column]["rmse_ratio"] == pytest.approx(
                row[column]["rmse"] / row[column]["mean_map_rmse"])
        assert 1 <= row["checkpoint_epoch"] <= SMOKE.scheduler["max_t"]
    # the smoke study holds out test places: each trial is scored on seen and unseen places
    assert report["columns"] == ["seen", "unseen"]
    text = (experiment / "summary.md").read_text()
    assert "## Evaluation on the test split" in text and "unseen - seen ratio" in text
    capsys.readouterr()
    # the test split is read once
    assert evaluate_main([str(experiment), "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert "already evaluated" in err and "\n" not in err.strip()


def _runs(experiment):
    return [json.loads(line) for folder in (experiment / "confirm").glob("trial_*")
            if (folder / "result.json").is_file()
            for line in (folder / "result.json").read_text().splitlines() if line.strip()]


def test_confirm_with_two_seeds_resumes_after_a_kill(experiment):
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    command = [sys.executable, "-m", "tune.confirm", str(experiment), "--seeds", "2",
               "--top", "1"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while len(list((experiment / "confirm").glob("trial_*/checkpoint_*"))) < 2:
            assert time.monotonic() < deadline, "no confirmation run checkpointed in 300 s"
            assert first.poll() is None, "tune.confirm ended before it was killed"
            time.sleep(0.5)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    assert not (experiment / "confirm.json").exists()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads((experiment / "confirm.json").read_text())
    configs = report["configs"]
    assert len(configs) == len(SMOKE.baselines) + 1
    for label, entry in configs.items():
        assert entry["seeds"] == [1, 2], label  # fresh seeds: the search ran seed 0
        assert math.isfinite(entry["val_rmse"]["mean"]) and entry["val_rmse"]["n"] == 2
        if entry["baseline"] != "seed_before":
            assert "p_value" in entry["against_seed_before"]
    # every run went to the full budget, and no epoch ran twice after the resume
    per_trial = {}
    for row in _runs(experiment):
        per_trial.setdefault(row["trial_id"], []).append(row["training_iteration"])
    assert len(per_trial) == 2 * len(configs)
    assert all(epochs == [1, 2, 3] for epochs in per_trial.values()), per_trial
    for folder in (experiment / "confirm").glob("trial_*"):  # each run's own files, its own
        assert yaml.safe_load((folder / "config.yaml").read_text())["extra"]["trial"] == \
            folder.name
        assert len((folder / "metrics.jsonl").read_text().splitlines()) == 3, folder
    assert "Confirmed with fresh seeds" in (experiment / "summary.md").read_text()
