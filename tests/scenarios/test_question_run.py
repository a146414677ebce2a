"""The question end to end: tune.run trains every arm of every fold before the search, the
summary opens with the answer, summary.json lets anyone recompute it; and the paired measure's
sign does not hang on which rooms were drawn."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import RUN_LIMIT_S, copy_experiment, ctrl_c_when, wait_for

from tune.experiment import read_rows
from tune.question.places import PlaceScores
from tune.question.plan import QUESTION_DIR
from tune.question.runs import read_runs
from tune.study import load_study

pytestmark = pytest.mark.slow


def test_every_arm_of_every_fold_scores_every_place(question_experiment, question_study):
    question = load_study(question_study).question
    runs = read_runs(question_experiment / QUESTION_DIR)
    assert len(runs) == len(question.arms()) * len(question.folds) * len(question.seeds) == 6
    places = {p for fold in question.folds for p in fold}
    for run in runs:
        own = set(run.point.values["locations"])
        assert own in [set(fold) for fold in question.folds]
        assert set(run.places) == places
        for place, score in run.places.items():
            assert score["seen"] == (place in own)
            assert ("train_rmse" in score) == (place in own) and 0 < score["val_rmse"] < 12
        rows = read_rows(run.folder / "result.json")
        assert [r["training_iteration"] for r in rows] == [1, 2, 3]  # never stopped early
        events = next(run.folder.glob("*/events.out.tfevents.*"))  # HParams: never "sampled"
        assert f"fold run, arm {run.point.arm}".encode() in events.read_bytes()


def test_the_summary_opens_with_the_answer_and_summary_json_recomputes(question_experiment):
    text = (question_experiment / "summary.md").read_text()
    first = text.split("## The search")[0]
    assert "## The question" in first and "**Answer: " in first
    assert "Positive control, the plain U-Net: place gap" in first
    summary = json.loads((question_experiment / "summary.json").read_text())
    question = summary["question"]
    assert question["verdict"] in ("supported", "contradicted", "inconclusive")
    assert "lines" not in question  # the data only: summary.md says it in words
    assert question["n_places"] == 16 and question["seeds"] == [1]
    # one seed: the seed term is unknown, no verdict decides, and the method says so
    assert question["verdict"] == "inconclusive" and "fewer than 3" in question["reason"]
    assert question["method"].startswith("t over places (one seed")
    assert question["n_models"] == 2 * 2 * 1 and question["df"] == 15
    assert {row["fold"] for row in question["per_place"]} == {0, 1}
    assert question["budget_epochs"] == 3 and question["runs_finished"] == 6
    assert set(question["pose_gap_m"]) == {"1", "4", "control"}
    gaps = {}
    for row in question["per_place"]:
        gaps.setdefault(row["place"], {})[row["arm"]] = row["unseen_rmse"] - row["seen_rmse"]
    effects = [g[1] - g[4] for g in gaps.values()]
    assert len(effects) == 16
    assert sum(effects) / 16 == pytest.approx(question["effect_m"])
    lo, hi = question["ci95_m"]
    assert lo < question["effect_m"] < hi
    assert question["positive_control"]["n_places"] == 16
    # the cross-room difference is in no verdict and no table
    assert "gap |" not in text and "unseen - seen ratio" not in text


def test_an_interrupted_question_resumes_then_searches(ray_session, question_study, tmp_path):
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    experiment = tmp_path / "q"
    command = [sys.executable, "-m", "tune.run", "--space", str(question_study), "--storage",
               str(tmp_path), "--name", "q", "--num-samples", "3"]
    code, out = ctrl_c_when(
        command, lambda: list((experiment / QUESTION_DIR).glob("trial_*/places.json")),
        "a question run's places.json")
    assert code != 0
    assert out.strip().splitlines()[-1].endswith(f"--resume {experiment}"), out[-2000:]
    assert not list(experiment.glob("trial_*"))  # the search had not begun
    done = subprocess.run([sys.executable, "-m", "tune.run", "--resume", str(experiment)],
                          capture_output=True, text=True, env=env, timeout=RUN_LIMIT_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = read_runs(experiment / QUESTION_DIR)
    assert len(runs) == 6 and all(r.places for r in runs)
    assert len(list(experiment.glob("trial_*"))) == 3
    summary = json.loads((experiment / "summary.json").read_text())
    assert summary["question"]["runs_finished"] == 6


def small_question(question_study, storage: Path) -> list[str]:
    """tune.run of the question at CI size, then a search of one sampled trial."""
    return [sys.executable, "-m", "tune.run", "--space", str(question_study), "--storage",
            str(storage), "--name", "q", "--num-samples", "1", "--set", "baselines={}",
            "--set", "targets={}", "--set", "scheduler.type=none"]


def test_sigterm_in_the_questions_runs_stops_them_with_the_resume_line(question_study,
                                                                       tmp_path):
    experiment = tmp_path / "q"
    code, out = ctrl_c_when(
        small_question(question_study, tmp_path),
        lambda: list((experiment / QUESTION_DIR).glob("trial_*/checkpoint_*")),
        "a question run's checkpoint", sigterm=True)
    assert code == 130, out[-2000:]
    assert out.strip().splitlines()[-1] == (
        f"the question's runs are incomplete; resume with: python -m tune.run --resume "
        f"{experiment}"), out[-2000:]
    assert "Traceback" not in out
    assert list((experiment / QUESTION_DIR).glob("experiment_state-*.json"))  # state saved


@pytest.mark.parametrize("damage", ["truncated", "emptied", "a list"])
def test_a_damaged_places_json_is_named_and_a_resume_scores_it_again(question_experiment,
                                                                     tmp_path, damage):
    from tune.run import main as run_main
    from tune.summary import write_summary

    before = json.loads((question_experiment / "summary.json").read_text())["question"]
    experiment = copy_experiment(question_experiment, tmp_path)
    places = sorted((experiment / QUESTION_DIR).glob("trial_*/places.json"))[0]
    text = places.read_text()
    places.write_text({"truncated": text[: len(text) // 2], "emptied": "",
                       "a list": '{"places": []}'}[damage])
    summary, _, _ = write_summary(experiment)
    assert "Not answered yet: 5 of 6 fold runs" in summary
    assert f"{places}: unreadable (" in summary and "left out" in summary
    assert run_main(["--resume", str(experiment)]) == 0
    after = json.loads((experiment / "summary.json").read_text())["question"]
    assert after["runs_finished"] == 6 and not after["damaged"]
    # the same checkpoint scores the same places: the answer comes back as it was
    assert after["effect_m"] == pytest.approx(before["effect_m"], abs=1e-6)
    for key in ("place", "arm", "seed", "fold", "seen_rmse", "unseen_rmse", "train_rmse"):
        assert [r[key] for r in after["per_place"]] == pytest.approx(
            [r[key] for r in before["per_place"]]), key


def test_a_nan_place_score_is_named_and_left_out(question_experiment, tmp_path):
    from tune.summary import write_summary

    experiment = copy_experiment(question_experiment, tmp_path)
    places = sorted((experiment / QUESTION_DIR).glob("trial_*/places.json"))[0]
    scores = json.loads(places.read_text())
    place = sorted(scores["places"])[0]
    scores["places"][place]["val_rmse"] = float("nan")
    places.write_text(json.dumps(scores))
    text, _, _ = write_summary(experiment)
    assert f"{places.parent.name} scored {place} val_rmse nan (a diverged model)" in text
    summary = json.loads((experiment / "summary.json").read_text())["question"]
    arm = json.loads((places.parent / "params.json").read_text())["run"]["arm"]
    assert (place, arm) not in {(row["place"], row["arm"]) for row in summary["per_place"]}
    assert (place, arm) in {(row["place"], row["arm"]) for row in json.loads(
        (question_experiment / "summary.json").read_text())["question"]["per_place"]}


def test_the_summary_of_a_stop_between_the_question_and_the_search_shows_the_answer(
        question_experiment, tmp_path):
    from tune.summary import main as summary_main

    experiment = copy_experiment(question_experiment, tmp_path)
    for trial in experiment.glob("trial_*"):  # the search's trials: none has begun
        shutil.rmtree(trial)
    assert summary_main([str(experiment)]) == 0
    text = (experiment / "summary.md").read_text()
    assert "**Answer: " in text and "No trial has finished an epoch yet" in text
    assert json.loads((experiment / "summary.json").read_text())["search"] is None


def test_the_positive_control_is_named_by_the_model_it_trains(question_experiment, tmp_path):
    import yaml

    from tune.experiment import Experiment
    from tune.report.data import question_status

    assert question_status(Experiment(question_experiment)).control_model == "the plain U-Net"
    experiment = copy_experiment(question_experiment, tmp_path)
    study = yaml.safe_load((experiment / "study.yaml").read_text())
    study["question"]["control"] = {"model": "base_residual", "base_channel_divisor": 1}
    (experiment / "study.yaml").write_text(yaml.safe_dump(study))
    assert question_status(Experiment(experiment)).control_model == "base_residual"


def latest_checkpoints(run: Path) -> list[Path]:
    """The checkpoint Ray's saved state of `run` names as each unfinished trial's latest."""
    from ray.tune import ExperimentAnalysis

    try:
        trials = ExperimentAnalysis(str(run)).trials
    except Exception:  # no state saved yet, or one being written
        return []
    return [Path(t.checkpoint.path) for t in trials
            if t.status != "TERMINATED" and t.checkpoint is not None]


def test_a_kill_after_a_fold_runs_checkpoint_was_deleted_resumes_every_run(question_study,
                                                                           tmp_path):
    """The window of a run keeping one checkpoint: Ray deletes the checkpoint its saved state
    names as a running trial's latest, and the driver is killed before the next state. Here
    the kill comes first and the deletion after it, leaving the same folder."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    experiment = tmp_path / "q"
    run = experiment / QUESTION_DIR
    driver = subprocess.Popen(small_question(question_study, tmp_path), stdout=subprocess.DEVNULL,
                              stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_for(lambda: latest_checkpoints(run), RUN_LIMIT_S, "a saved state naming a checkpoint")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and its Ray
        driver.wait(timeout=60)
    named = latest_checkpoints(run)
    assert named
    for checkpoint in named:
        shutil.rmtree(checkpoint)
    done = subprocess.run([sys.executable, "-m", "tune.run", "--resume", str(experiment)],
                          capture_output=True, text=True, env=env, timeout=RUN_LIMIT_S)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "does not exist on storage" not in out and "Traceback" not in out, out[-3000:]
    runs = read_runs(run)
    assert len(runs) == 6 and all(r.places for r in runs)
    for r in runs:  # every epoch once, the restarted runs' included
        rows = read_rows(r.folder / "result.json")
        assert [row["training_iteration"] for row in rows] == [1, 2, 3], r.folder
        assert not (r.folder / "error.txt").exists(), r.folder
    assert len(list(experiment.glob("trial_*"))) == 1  # then the search


def control_place_gaps(folds, tmp_path: Path) -> float:
    """The U-Net's mean place gap over all places with these folds, trained outside Ray."""
    from baseres.config import TrainConfig
    from baseres.trainer import Trainer
    from tune.question.answer import arm_measure
    from tune.question.plan import FoldPoint
    from tune.question.result import place_records
    from tune.question.runs import FoldRun

    places = [p for fold in folds for p in fold]
    runs = []
    for number, fold in enumerate(folds):
        out = tmp_path / f"fold{number}"
        out.mkdir()
        cfg = TrainConfig(model="unet", image_size=32, base_channels=8, epochs=6, batch_size=16,
                          locations=list(fold), seed=1, num_threads=1, progress=False)
        Trainer(cfg, hooks=[PlaceScores(out, places)]).fit(progress=False)
        point = FoldPoint("control", number, len(folds), 1, places,
                          f"arm-control_fold-{number}_seed-1", {"locations": list(fold)})
        runs.append(FoldRun(point, out, json.loads((out / "places.json").read_text())
                            ["places"]))
    return arm_measure(place_records(runs), "control").mean


def test_swapping_the_rooms_drawn_keeps_the_controls_place_gap_positive(tmp_path):
    """The old cross-room gap of the same U-Net turned from -0.055 m into +0.448 m when the
    held-out rooms were swapped; the paired place gap keeps its sign whichever rooms pair up."""
    styles = ("Office", "Corridor", "Hall", "Storage")
    halves = ([f"{s}_{i}" for s in styles for i in (1, 2)],
              [f"{s}_{i}" for s in styles for i in (3, 4)])
    interleaved = ([f"{s}_{i}" for s in styles for i in (1, 3)],
                   [f"{s}_{i}" for s in styles for i in (2, 4)])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert control_place_gaps(halves, tmp_path / "a") > 0
    assert control_place_gaps(interleaved, tmp_path / "b") > 0


def test_the_question_figure_is_written_shown_and_draws_summary_json(question_experiment):
    """plot_question.png beside the other plots and in report.html; drawn again from the
    experiment, a point per place (16) for each arm and the contrast, at the mean of its
    per_place gaps, and the intervals of summary.json (the primary contrast's ci95_m)."""
    from helpers import drawn_columns, expected_columns

    from tune.report.data import build_summary
    from tune.report.plots import QUESTION_PLOT, question_figure

    assert (question_experiment / QUESTION_PLOT).stat().st_size > 0
    assert 'alt="the question: place gaps per arm and place"' in (
        question_experiment / "report.html").read_text()
    question = json.loads((question_experiment / "summary.json").read_text())["question"]
    figure = question_figure(build_summary(question_experiment).plots.question)
    drawn, expected = drawn_columns(figure), expected_columns(question)
    assert set(drawn) == {"1", "4", "control", "contrast"} == set(expected)
    for key, column in expected.items():
        assert len(drawn[key]["places"]) == question["n_places"] == 16
        assert drawn[key]["places"] == pytest.approx(column["places"]), key
        assert drawn[key]["interval"] == pytest.approx(column["interval"]), key
    assert drawn["contrast"]["interval"] == pytest.approx(question["ci95_m"])
    assert "16 places, 1 seed, models of 3 epochs" in figure.get_suptitle()
