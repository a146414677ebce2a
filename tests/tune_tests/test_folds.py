"""tune.question: the question's fold runs (each arm x fold x seed), read back into per-place
records, seen by their own fold and unseen by the others."""

from pathlib import Path

import pytest

from tune.question.plan import FoldPoint, fold_points
from tune.question.result import place_records
from tune.question.runs import FoldRun


def run(arm, fold, seed, seen, scores, folds=2):
    """A finished fold run: `scores` maps place -> val RMSE; `seen` its own fold's places."""
    point = FoldPoint(arm, fold, folds, seed, list(scores), f"arm-{arm}_fold-{fold}_seed-{seed}",
                      {"locations": list(seen)})
    places = {p: {"seen": p in seen, "val_rmse": v, **({"train_rmse": v - 0.1}
                                                       if p in seen else {})}
              for p, v in scores.items()}
    return FoldRun(point, Path("x"), places)


def test_fold_runs_become_records_seen_by_their_own_fold_unseen_by_the_others():
    scores = {"A": 1.0, "B": 2.0, "C": 3.0}
    runs = [run(1, 0, 1, ["A"], {"A": 1.0, "B": 2.5, "C": 3.5}, folds=3),
            run(1, 1, 1, ["B"], {"A": 1.4, "B": 2.0, "C": 3.3}, folds=3),
            run(1, 2, 1, ["C"], {"A": 1.6, "B": 2.3, "C": 3.0}, folds=3)]
    found = {r.place: r for r in place_records(runs)}
    assert set(found) == set(scores)
    # A: seen 1.0 by fold 0; unseen by folds 1 and 2: (1.4 + 1.6) / 2 = 1.5
    assert (found["A"].seen_rmse, found["A"].unseen_rmse) == (1.0, pytest.approx(1.5))
    assert found["A"].train_rmse == pytest.approx(0.9)
    assert found["C"].unseen_rmse == pytest.approx(3.4)  # (3.5 + 3.3) / 2
    # a design whose third fold has not finished gives no record for that arm and seed
    assert place_records(runs[:2]) == []


def test_fold_points_cover_every_arm_fold_and_seed():
    from tune.study import load_study

    spec = load_study("generalization.yaml")
    question = spec.question
    points = fold_points(question, question.folds, question.seeds)
    assert len(points) == len(question.arms()) * 3 * len(question.seeds)
    wide = [p for p in points if p.arm == 1]
    narrow = [p for p in points if p.arm == 4]
    # the two arms differ in the question's parameter only
    for a, b in zip(wide, narrow):
        apart = {k for k in {**a.values, **b.values} if a.values.get(k) != b.values.get(k)}
        assert apart == {"base_channel_divisor"}
    places = {p for fold in question.folds for p in fold}
    assert len(places) == 12 and all(set(p.places) == places for p in points)
    # the search's test places are in no fold: no question run trains on a test row
    assert not places & set(spec.fixed["test_locations"])


@pytest.mark.parametrize("locations, source", [
    (["A", "B", "C", "D", "E"], "data.locations"),
    (None, "the location folders of"),
])
def test_more_folds_than_places_are_refused_naming_question_folds(tmp_path, locations, source):
    from dataclasses import replace

    from tune.errors import UsageError
    from tune.question.plan import resolve_folds
    from tune.study import load_study

    for place in "ABCDE":  # a V2 root of 5 places
        (tmp_path / place).mkdir()
        (tmp_path / place / "train.csv").write_text("")
    question = replace(load_study("generalization.yaml").question, folds=6)
    with pytest.raises(UsageError) as info:
        resolve_folds(question, {"locations": locations}, tmp_path)
    message = str(info.value)
    assert message.startswith("question.folds: `folds <= places` must hold"), message
    assert "folds=6 for the 5 places" in message and source in message and "\n" not in message
    assert len(resolve_folds(replace(question, folds=5), {"locations": locations}, tmp_path)) == 5


def write_run(folder: Path, name: str, fold_run: FoldRun, places_text: str | None = None):
    import json

    from tune.study import RUN_KEY

    trial = folder / name
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps({RUN_KEY: fold_run.point.config()}))
    (trial / "places.json").write_text(
        places_text if places_text is not None
        else json.dumps({"epoch": 3, "places": fold_run.places}))


def test_without_the_positive_controls_runs_the_question_is_not_answered(tmp_path):
    from tune.question.plan import QUESTION_DIR
    from tune.question.result import question_result
    from tune.study import load_study

    spec = load_study("generalization.yaml")  # its question has a control
    folds = spec.question.folds
    places = [p for fold in folds for p in fold]
    for arm in (1, 4):
        for seed in spec.question.seeds:
            for number, fold in enumerate(folds):
                scores = {p: 1.0 + (p not in fold) * 0.2 for p in places}
                write_run(tmp_path / QUESTION_DIR, f"trial_{arm}_{seed}_{number}",
                          run(arm, number, seed, fold, scores, folds=len(folds)))
    result = question_result(tmp_path, spec)
    # the control gates the verdict: without its runs, no answer
    assert result.answer is None and result.finished == 18 and result.planned == 27


def test_a_places_json_missing_a_place_or_its_train_rmse_gives_no_record_and_no_traceback():
    broken = run(1, 0, 1, ["A"], {"A": 1.0, "B": 2.5})
    del broken.places["A"]["train_rmse"]
    other = run(1, 1, 1, ["B"], {"A": 1.4})  # scores no B at all
    assert place_records([broken, other]) == []


def test_a_nan_score_drops_its_place_instead_of_making_every_interval_nan():
    runs = [run(1, 0, 1, ["A"], {"A": 1.0, "B": float("nan")}),
            run(1, 1, 1, ["B"], {"A": 1.4, "B": 2.0})]
    assert [r.place for r in place_records(runs)] == ["A"]


def test_a_fold_point_keeps_the_params_json_layout_an_older_run_wrote(tmp_path):
    """Ray keeps a run's point in params.json and a resume reads it back: the typed point
    writes the layout runs have always had, and reads one written before it existed."""
    import json

    from tune.question.plan import QUESTION_DIR
    from tune.question.runs import read_runs
    from tune.study import RUN_KEY

    older = {"arm": 1, "fold": 0, "folds": 2, "seed": 3, "places": ["A", "B"],
             "label": "arm-1_fold-0_seed-3", "values": {"locations": ["A"], "seed": 3}}
    trial = tmp_path / QUESTION_DIR / "trial_a"
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps({RUN_KEY: older}))
    [found] = read_runs(tmp_path / QUESTION_DIR)
    assert found.point == FoldPoint(1, 0, 2, 3, ["A", "B"], "arm-1_fold-0_seed-3",
                                    {"locations": ["A"], "seed": 3})
    assert json.dumps(found.point.config()) == json.dumps(older)  # same keys, same order
    made = fold_points(None, (("A",), ("B",)), [3], {1: {}})[0]
    assert json.dumps(made.config()) == json.dumps(older)
