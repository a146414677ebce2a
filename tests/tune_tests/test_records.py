"""tune.report.records: each record written through write_json reads back equal through its one
reader, in the layout the files have always had (a column of scores is a key of its trial)."""

import json

from tune.json_files import write_json
from tune.report.records import (
    CONFIRM_VERSION,
    Confirmation,
    EvaluatedTrial,
    Evaluation,
    SeedComparison,
    confirm_file,
    evaluation_file,
    read_confirmation,
    read_evaluation,
)

SCORES = {"rmse": 1.5, "delta1": 0.4, "samples": 12, "mean_map_rmse": 2.0, "rmse_ratio": 0.75}
EVALUATION = Evaluation("/runs/smoke", "test", 2, "2026-12-05 15:00:00", ["seen", "unseen"], [
    EvaluatedTrial("a1", "a1 (seed_after)", "seed_after", "base_residual", {"lr": 0.001}, 3,
                   "/runs/smoke/trial_a1/checkpoint_000002", 1.25,
                   {"seen": SCORES, "unseen": {**SCORES, "rmse": 1.9}})])
CONFIRMATION = Confirmation(
    CONFIRM_VERSION, "/runs/smoke", "paired per place and seed", [3, 4], [1, 2, 3, 4], 8,
    "inconclusive",
    [SeedComparison("base_channel_divisor 1 - 4 (place gap)", -0.013, (-0.030, 0.004), 4, 4,
                    0.11, 0.024, 0.11, "inconclusive at this power (could detect 0.024 m)")],
    [{"place": "room_1", "arm": 1, "seed": 3, "fold": 0, "seen_rmse": 1.0,
      "unseen_rmse": 1.1}])


def test_an_evaluation_reads_back_equal_with_each_column_a_key_of_its_trial(tmp_path):
    write_json(evaluation_file(tmp_path, "test"), EVALUATION)
    stored = json.loads(evaluation_file(tmp_path, "test").read_text())
    row = stored["trials"][0]
    assert row["unseen"]["rmse"] == 1.9 and row["checkpoint_epoch"] == 3 and "scores" not in row
    assert read_evaluation(tmp_path, "test") == (EVALUATION, "")
    assert read_evaluation(tmp_path, "val") == (None, "")  # none written: nothing to say


def test_a_confirmation_reads_back_equal(tmp_path):
    write_json(confirm_file(tmp_path), CONFIRMATION)
    stored = json.loads(confirm_file(tmp_path).read_text())
    assert stored["comparisons"][0]["ci95_m"] == [-0.030, 0.004]
    assert read_confirmation(tmp_path) == (CONFIRMATION, "")


def test_an_evaluation_of_no_trial_is_not_an_evaluation(tmp_path):
    write_json(evaluation_file(tmp_path, "test"), EVALUATION._replace(trials=[]))
    report, problem = read_evaluation(tmp_path, "test")
    assert report is None and problem.startswith("evaluation-test.json is not an evaluation")


def test_nan_and_infinity_are_written_as_null_so_the_file_stays_json(tmp_path):
    import math

    path = tmp_path / "x.json"
    write_json(path, {"effect_m": math.nan, "ci95_m": (math.inf, -math.inf), "n": 3})
    assert json.loads(path.read_text(), parse_constant=lambda c: 1 / 0) == {
        "effect_m": None, "ci95_m": [None, None], "n": 3}
