"""tune.confirm: the question's folds again with fresh seeds, pooled with the question's into
one answer; an interrupt writes nothing final and says how to resume; another plan than the
unfinished one is refused; a second confirmation adds its own seeds; the test split is never
read."""

import json
import math
import os
import shlex
import subprocess
import sys

import pytest
from helpers import RUN_LIMIT_S, copy_experiment, ctrl_c_when

from tune.confirm import comparison
from tune.confirm import main as confirm_main
from tune.experiment import STUDY_FILE, read_rows
from tune.question.answer import Comparison
from tune.question.intervals import Interval
from tune.question.plan import CONFIRM_DIR, QUESTION_DIR, SEED_LIMIT, fold_points, fresh_seeds
from tune.study import RUN_KEY, load_study

pytestmark = pytest.mark.slow
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture
def experiment(question_experiment, tmp_path):
    return copy_experiment(question_experiment, tmp_path)


def test_an_interrupted_confirmation_writes_nothing_final_and_resumes(experiment, capsys):
    command = [sys.executable, "-m", "tune.confirm", str(experiment), "--seeds", "1"]
    code, out = ctrl_c_when(  # Ctrl-C: Ray stops its runs and returns, no exception
        command, lambda: list((experiment / CONFIRM_DIR).glob("trial_*/checkpoint_*")),
        "a confirmation run's checkpoint")
    assert code == 130, out[-2000:]
    assert out.strip().splitlines()[-1].endswith(
        f"resume with: python -m tune.confirm {experiment} --seeds 1"), out[-2000:]
    assert not (experiment / "confirm.json").exists()
    # another plan than the unfinished one: one line, nothing run
    assert confirm_main([str(experiment), "--seeds", "2"]) == 2
    err = capsys.readouterr().err
    assert "an unfinished confirmation with --seeds 1 is stored there, but this asks for " \
           "--seeds 2" in err and "\n" not in err.strip()
    done = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=RUN_LIMIT_S)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads((experiment / "confirm.json").read_text())
    assert report["seeds"] == [2] and report["pooled_seeds"] == [1, 2]  # fresh, then pooled
    names = [c["comparison"] for c in report["comparisons"]]
    assert names == ["base_channel_divisor 1 - 4 (place gap)", "positive control: place gap"]
    for c in report["comparisons"]:
        assert (c["n_places"], c["n_seeds"]) == (16, 2) and c["p_holm"] >= c["p_value"]
        assert c["ci95_m"][0] < c["effect_m"] < c["ci95_m"][1]
        assert math.isfinite(c["detectable_m"])
    summary = json.loads((experiment / "summary.json").read_text())
    assert summary["question"]["seeds"] == [1, 2]  # the summary's answer pools them too
    # each of the 6 runs trained its 3 epochs once, resumed or not
    for folder in (experiment / CONFIRM_DIR).glob("trial_*"):
        rows = read_rows(folder / "result.json")
        assert [r["training_iteration"] for r in rows] == [1, 2, 3], folder
    assert len(list((experiment / CONFIRM_DIR).glob("trial_*/places.json"))) == 6
    assert not (experiment / "evaluation-test.json").exists()  # never reads the test split
    assert "tune.confirm added seeds [2]" in (experiment / "summary.md").read_text()
    # a second confirmation: a folder of its own, the next fresh seed, every seed pooled
    again = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=RUN_LIMIT_S)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert len(list((experiment / f"{CONFIRM_DIR}-2").glob("trial_*/places.json"))) == 6
    report = json.loads((experiment / "confirm.json").read_text())
    assert report["seeds"] == [3] and report["pooled_seeds"] == [1, 2, 3]


@pytest.mark.parametrize("mean, p_holm, outcome", [
    (0.1, 0.01, "above 0"), (-0.1, 0.049, "below 0"),
    (0.1, 0.051, "inconclusive at this power (could detect 0.123 m)"),
])
def test_a_comparison_reads_its_holm_adjusted_p(mean, p_holm, outcome):
    interval = Interval(mean, mean - 0.05, mean + 0.05, 0.02, 4.0, 0.01, 12, 3, "m", None)
    assert comparison(Comparison("c", interval, p_holm, 0.123)).outcome == outcome


def test_an_interrupted_confirmation_ends_ray_before_its_last_line(question_study, tmp_path,
                                                                  capsys, monkeypatch):
    """Ray's workers, stopped, print tracebacks of their own (``SystemExit: 1``), forwarded to
    the console until Ray shuts down: Ray is shut down before the resume line is printed."""
    spec = load_study(question_study)
    (tmp_path / STUDY_FILE).write_text(spec.to_yaml())
    point = fold_points(spec.question, spec.question.folds, spec.question.seeds)[0]
    trial = tmp_path / QUESTION_DIR / "trial_a"
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps({RUN_KEY: point.config()}))
    printed_before_ray_ended = []

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("tune.question.confirmation.start_ray", lambda *args: None)
    monkeypatch.setattr("tune.cluster._own_ray", True, raising=False)  # as if it started Ray
    monkeypatch.setattr("tune.question.confirmation.run_folds", interrupted)
    monkeypatch.setattr("ray.shutdown",
                        lambda: printed_before_ray_ended.append(capsys.readouterr().err))
    assert confirm_main([str(tmp_path), "--seeds", "1"]) == 130
    assert printed_before_ray_ended == [""]
    assert capsys.readouterr().err.strip() == (
        f"interrupted; resume with: python -m tune.confirm {tmp_path} --seeds 1")




@pytest.mark.parametrize("used, count, expected", [
    ({1, 2}, 2, [3, 4]),
    ({SEED_LIMIT - 1}, 2, [0, 1]),  # past the limit: the lowest unused instead
    ({0, SEED_LIMIT - 1}, 1, [1]),
])
def test_fresh_seeds_are_new_and_below_the_limit(used, count, expected):
    assert fresh_seeds(used, count) == expected


def test_an_interrupted_confirmation_says_a_resume_to_paste_for_a_folder_with_a_space(
        tmp_path, capsys, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("tune.confirm.confirm", interrupted)
    folder = str(tmp_path / "my runs" / "q")
    assert confirm_main([folder, "--seeds", "1"]) == 130
    hint = capsys.readouterr().err.strip().splitlines()[-1]
    assert shlex.split(hint.split("resume with: ")[1]) == [
        "python", "-m", "tune.confirm", folder, "--seeds", "1"]


def test_confirm_hides_rays_own_resume_hint(tmp_path, monkeypatch, capsys):
    import logging

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("tune.confirm.confirm", interrupted)
    # whatever an earlier command in this process installed is gone: confirm's own filter
    monkeypatch.setattr(logging.getLogger("ray.tune.tune"), "filters", [])
    assert confirm_main([str(tmp_path), "--seeds", "1"]) == 130
    record = logging.LogRecord("ray.tune.tune", logging.INFO, "", 0,
                               'Resume experiment with: Tuner.restore(path="...")', None, None)
    assert not logging.getLogger("ray.tune.tune").filter(record)  # never reaches the console
    assert "resume with: python -m tune.confirm" in capsys.readouterr().err


def test_a_confirmation_plans_from_the_questions_own_folds_not_the_runs_that_started(
        experiment, monkeypatch):
    """`folds: 2` stopped after fold 0's runs began: the plan still has both folds."""
    import shutil

    import yaml

    import tune.confirm
    import tune.question.confirmation
    from tune.question.runs import read_runs

    study = yaml.safe_load((experiment / STUDY_FILE).read_text())
    study["question"]["folds"] = 2
    (experiment / STUDY_FILE).write_text(yaml.safe_dump(study))
    for run in read_runs(experiment / QUESTION_DIR):
        if run.point.fold != 0:
            shutil.rmtree(run.folder)
    planned = {}

    def instead_of_ray(spec, location, points, verbose):
        planned["points"] = points
        raise KeyboardInterrupt

    monkeypatch.setattr(tune.question.confirmation, "start_ray", lambda *args: None)
    monkeypatch.setattr(tune.question.confirmation, "run_folds", instead_of_ray)
    with pytest.raises(KeyboardInterrupt):
        tune.confirm.confirm(experiment, 1)
    assert {p["fold"] for p in planned["points"]} == {0, 1}
    assert len(planned["points"]) == 3 * 2  # arms x folds x 1 seed
