"""tune.confirm: the question's folds again with fresh seeds, paired by place, Holm-corrected;
an interrupt writes nothing final and says how to resume; another plan than the stored one is
refused; the test split is never read."""

import json
import math
import os
import subprocess
import sys

import pytest
from helpers import copy_experiment, ctrl_c_when, gap_records

from tune.confirm import CONFIRM_DIR, comparisons
from tune.confirm import main as confirm_main
from tune.experiment import STUDY_FILE, read_rows
from tune.folds import QUESTION_DIR, fold_points
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
        f"resume with: python -m tune.confirm {experiment} --seeds 1 --top 0"), out[-2000:]
    assert not (experiment / "confirm.json").exists()
    # another plan than the stored one: one line, nothing run
    assert confirm_main([str(experiment), "--seeds", "2"]) == 2
    err = capsys.readouterr().err
    assert "a confirmation with --seeds 1 --top 0 is stored there, but this asks for " \
           "--seeds 2 --top 0" in err and "\n" not in err.strip()
    done = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads((experiment / "confirm.json").read_text())
    assert report["seeds"] == [2]  # fresh: the question ran seed 1
    names = [c["comparison"] for c in report["comparisons"]]
    assert names == ["base_channel_divisor 1 - 4 (place gap)",
                     "positive control: U-Net place gap"]
    for c in report["comparisons"]:
        assert c["n_places"] == 16 and c["p_holm"] >= c["p_value"]
        assert c["ci95_m"][0] < c["effect_m"] < c["ci95_m"][1]
        assert math.isfinite(c["detectable_m"])
    # each of the 6 runs trained its 3 epochs once, resumed or not
    for folder in (experiment / CONFIRM_DIR).glob("trial_*"):
        rows = read_rows(folder / "result.json")
        assert [r["training_iteration"] for r in rows] == [1, 2, 3], folder
    assert len(list((experiment / CONFIRM_DIR).glob("trial_*/places.json"))) == 6
    assert not (experiment / "evaluation-test.json").exists()  # never reads the test split
    assert "Confirmed with fresh seeds [2]" in (experiment / "summary.md").read_text()


def test_an_interrupted_confirmation_ends_ray_before_its_last_line(question_study, tmp_path,
                                                                  capsys, monkeypatch):
    """Ray's workers, stopped, print tracebacks of their own (``SystemExit: 1``), forwarded to
    the console until Ray shuts down: Ray is shut down before the resume line is printed."""
    spec = load_study(question_study)
    (tmp_path / STUDY_FILE).write_text(spec.to_yaml())
    point = fold_points(spec.question, spec.question.folds, spec.question.seeds)[0]
    (tmp_path / QUESTION_DIR / "trial_a").mkdir(parents=True)
    (tmp_path / QUESTION_DIR / "trial_a" / "params.json").write_text(json.dumps({RUN_KEY: point}))
    printed_before_ray_ended = []

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("tune.confirm.start_ray", lambda *args: None)
    monkeypatch.setattr("tune.cluster._own_ray", True, raising=False)  # as if it started Ray
    monkeypatch.setattr("tune.confirm.run_folds", interrupted)
    monkeypatch.setattr("ray.shutdown",
                        lambda: printed_before_ray_ended.append(capsys.readouterr().err))
    assert confirm_main([str(tmp_path), "--seeds", "1"]) == 130
    assert printed_before_ray_ended == [""]
    assert capsys.readouterr().err.strip() == (
        f"interrupted; resume with: python -m tune.confirm {tmp_path} --seeds 1 --top 0")


def test_comparisons_are_holm_corrected_and_say_inconclusive_at_this_power():
    from tune.study import QuestionSpec

    question = QuestionSpec("c", "base_channel_divisor", (1, 4), {}, {"model": "unet"}, {},
                            (("A", "B"), ("C", "D")), (1,))
    found = gap_records(1, {1: [0.2, 0.2, 0.3, 0.1]}) + gap_records(4, {1: [0.1, 0.1, 0.1, 0.1]}) \
        + gap_records("control", {1: [0.2, 0.3, 0.25, 0.25]})
    result = comparisons(found, question, [])
    contrast, control = result
    # effects .1 .1 .2 0 (t = 2.449, df 3: p = 0.0917); control .2 .3 .25 .25 (t = 12.25,
    # p = 0.00117). Holm: 2 x 0.00117 = 0.00234; max(0.00234, 0.0917) = 0.0917
    assert contrast.p_value == pytest.approx(0.0917, abs=5e-4)
    assert control.p_holm == pytest.approx(2 * control.p_value)
    assert control.p_value == pytest.approx(0.00117, abs=5e-5)
    assert contrast.p_holm == pytest.approx(contrast.p_value)
    assert control.outcome == "above 0"
    assert contrast.outcome.startswith("inconclusive at this power (could detect 0.170 m")
