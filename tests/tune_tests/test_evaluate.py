"""After the search: the test split scored once (tune.evaluate)."""

import json
import math
from collections import Counter

import pytest
from helpers import copy_experiment

from tune.console_text import WIDTH
from tune.evaluate import main as evaluate_main
from tune.experiment import Experiment


@pytest.fixture
def experiment(smoke_experiment, tmp_path):
    return copy_experiment(smoke_experiment, tmp_path)


def test_evaluate_scores_every_baseline_once_on_test(experiment, capsys, smoke_spec):
    assert evaluate_main([str(experiment), "--split", "test", "--top", "1"]) == 0
    report = json.loads((experiment / "evaluation-test.json").read_text())
    full = [t for t in Experiment(experiment).trials()
            if not t.baseline and t.epochs_run >= smoke_spec.max_t]
    # every baseline of the study exactly once and no other, and the searched trial (--top 1)
    # only where one ran the full budget
    baselines = Counter(row["baseline"] for row in report["trials"] if row["baseline"])
    assert baselines == {name: 1 for name in smoke_spec.baselines}
    searched = [row["trial"] for row in report["trials"] if row["baseline"] is None]
    assert len(searched) == min(1, len(full))
    assert set(searched) <= {t.trial_id for t in full}
    assert len(report["trials"]) == len(smoke_spec.baselines) + len(searched)
    for row in report["trials"]:
        for column in report["columns"]:
            assert math.isfinite(row[column]["rmse"]) and 0 < row[column]["rmse"] < 12
            assert 0 <= row[column]["delta1"] <= 1 and row[column]["samples"] > 0
            # each column next to the mean training depth map scored on the same samples
            assert row[column]["rmse_ratio"] == pytest.approx(
                row[column]["rmse"] / row[column]["mean_map_rmse"])
        assert 1 <= row["checkpoint_epoch"] <= smoke_spec.scheduler.max_t
    # the smoke study holds out test places: each trial is scored on seen and unseen places
    assert report["columns"] == ["seen", "unseen"]
    text = (experiment / "summary.md").read_text()
    assert "## Evaluation on the test split" in text
    # seen and unseen are different rooms here: named so, never differenced
    assert "held-out places (other rooms) RMSE" in text and "unseen - seen ratio" not in text
    printed = capsys.readouterr().out  # the table, aligned and cut to the console's width
    assert max(len(line) for line in text.splitlines()) > WIDTH
    assert max(len(line) for line in printed.splitlines()) <= WIDTH, printed
    assert "summary.md has the full table" in printed
    # the test split is read once
    assert evaluate_main([str(experiment), "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert "already evaluated" in err and "\n" not in err.strip()


def test_a_read_only_experiment_is_refused_before_anything_is_scored(experiment, capsys,
                                                                     monkeypatch):
    import errno
    import os

    import tune.evaluate

    scored = []
    monkeypatch.setattr(tune.evaluate, "score_trial", lambda *a: scored.append(a))

    def read_only(path, *args, **kwargs):  # as a read-only mount answers the lock file
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr("tune.experiment.location.open", read_only, raising=False)
    assert evaluate_main([str(experiment), "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert f"{experiment}: cannot write there: Read-only file system" in err
    assert "Traceback" not in err and "\n" not in err.strip() and not scored
