"""Room folds on Ray: one full-budget model per (arm, fold, seed), each scoring every place's
held-out poses at its last epoch, and the per-place records tune.question reads.

``tune.run`` runs the study's question here before its search (``<experiment>/question/``),
``tune.confirm`` the same design with fresh seeds (``<experiment>/confirm/``). Each is one Ray
run of a grid of points with no scheduler (nothing is stopped early), resumable as a whole.
A run writes ``places.json`` into its trial folder before its last report, so a run whose
folder holds it is complete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from baseres.hooks import Hook
from tune.cluster import sigterm_as_ctrl_c
from tune.experiment import Location
from tune.question import PlaceRecord
from tune.study import LOCATION_FIELDS, RUN_KEY, QuestionSpec, StudySpec

QUESTION_DIR = "question"
PLACES_FILE = "places.json"


def resolve_folds(question: QuestionSpec, fixed: dict[str, Any], root: Path
                  ) -> tuple[tuple[str, ...], ...]:
    """The folds' places: as listed, or the location folders (data.locations where set),
    sorted and dealt round-robin into `question.folds` folds."""
    if not isinstance(question.folds, int):
        return question.folds
    from baseres.data.batvision import v2_locations

    places = fixed.get("locations") or v2_locations(root)
    return tuple(tuple(sorted(places)[i::question.folds]) for i in range(question.folds))


def fold_points(question: QuestionSpec, folds: tuple[tuple[str, ...], ...],
                seeds: tuple[int, ...] | list[int],
                arms: dict[Any, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One point per (arm, fold, seed): its label, its TrainConfig values (the arm's, the
    fold's places, the seed) and every place it scores."""
    places = [p for fold in folds for p in fold]
    points = []
    for arm, changes in (arms if arms is not None else question.arms()).items():
        for seed in seeds:
            for number, fold in enumerate(folds):
                points.append({"arm": arm, "fold": number, "folds": len(folds), "seed": seed,
                               "places": places,
                               "label": f"arm-{arm}_fold-{number}_seed-{seed}",
                               "values": {**changes, "locations": list(fold), "seed": seed}})
    return points


def run_fixed(spec: StudySpec) -> dict[str, Any]:
    """The study's shared values without its held-out places: each fold sets the places."""
    return {k: v for k, v in spec.fixed.items() if k not in LOCATION_FIELDS}


def place_config(cfg, place: str):
    """`cfg` reading one place only: its val rows (held-out poses) and train rows."""
    return cfg.replace(locations=[place], val_locations=None, test_locations=None)


class PlaceScores(Hook):
    """At the last epoch, every place's held-out poses (val rows) scored by this model, and
    the training poses of the places it trained on: places.json in the trial folder."""

    def __init__(self, folder: Path, places: list[str]):
        self.path = Path(folder) / PLACES_FILE
        self.places = places

    def on_epoch_end(self, trainer, record) -> None:
        if int(record["epoch"]) < trainer.cfg.epochs:
            return
        from baseres.data.cache import load_split

        cfg, root = trainer.cfg, trainer.data_root
        seen = set(cfg.locations)
        scores = {}
        for place in self.places:
            one = place_config(cfg, place)
            held_out, _ = trainer.evaluate(load_split(one, "val", root, progress=False))
            scores[place] = {"seen": place in seen, "val_rmse": held_out["rmse"]}
            if place in seen:
                train, _ = trainer.evaluate(load_split(one, "train", root, progress=False))
                scores[place]["train_rmse"] = train["rmse"]
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"epoch": int(record["epoch"]), "places": scores}))
        tmp.replace(self.path)


def fold_trial(config: dict[str, Any], fixed: dict[str, Any]) -> None:
    """One (arm, fold, seed) model at the full budget, then its places.json."""
    from tune.trainable import run_trial, trial_folder

    point = config[RUN_KEY]
    run_trial(point["values"], fixed, point["label"],
              extra_hooks=(PlaceScores(trial_folder(), point["places"]),),
              role=f"fold run, arm {point['arm']}")


def prepare_places(spec: StudySpec, folds: tuple[tuple[str, ...], ...], root: Path) -> None:
    """Build every feature cache the fold runs read (each fold's rows, each place's), once,
    before Ray: a missing place fails here in one line, and runs only map the cache."""
    from baseres.config import TrainConfig
    from baseres.data.cache import load_split

    # the features depend on the data settings only, which every arm shares
    base = TrainConfig.from_dict({**run_fixed(spec), **next(iter(spec.question.arms().values()))})
    for fold in folds:
        for split in ("train", "val"):
            load_split(base.replace(locations=list(fold)), split, root)
    places = [p for fold in folds for p in fold]
    for place in places:
        for split in ("train", "val"):
            load_split(place_config(base, place), split, root, progress=False)
    print(f"the question's {len(places)} places: each one's train and val rows cached",
          flush=True)


def run_folds(spec: StudySpec, location: Location, points: list[dict[str, Any]],
              verbose: bool = False) -> None:
    """The points as one Ray run at `location`, resumed when it exists; SIGTERM stops it as
    Ctrl-C does (state saved)."""
    from ray.tune import CheckpointConfig, TuneConfig, Tuner, grid_search

    from tune.console import ConsoleProgress
    from tune.trainable import build_trainable, run_config, trial_dirname

    trainable = build_trainable(spec, run_fixed(spec), fold_trial)
    if Tuner.can_restore(location.uri):
        tuner = Tuner.restore(location.uri, trainable=trainable, resume_errored=True)
    else:
        tuner = Tuner(
            trainable, param_space={RUN_KEY: grid_search(points)},
            tune_config=TuneConfig(trial_dirname_creator=trial_dirname, reuse_actors=True,
                                   max_concurrent_trials=spec.max_concurrent_trials),
            # the latest checkpoint only: to go on from
            run_config=run_config(location, [ConsoleProgress(spec.epochs, len(points))],
                                  verbose, CheckpointConfig(num_to_keep=1)))
    with sigterm_as_ctrl_c():
        tuner.fit()


# ------------------------------------------------------------------------ reading back
class FoldRun(NamedTuple):
    point: dict[str, Any]
    folder: Path
    places: dict[str, dict[str, Any]] | None  # None until the run finished


def read_runs(folder: Path) -> list[FoldRun]:
    """Every run of a fold design folder (question/ or confirm/) that Ray has started."""
    runs = []
    for trial in sorted(Path(folder).glob("trial_*")):
        try:
            point = json.loads((trial / "params.json").read_text())[RUN_KEY]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a run still starting
        try:
            places = json.loads((trial / PLACES_FILE).read_text())["places"]
        except (OSError, ValueError, KeyError, TypeError):
            places = None
        runs.append(FoldRun(point, trial, places))
    return runs


def place_records(runs: list[FoldRun]) -> list[PlaceRecord]:
    """Per place, arm and seed with every fold finished: the seen model's scores and the mean
    of the unseen models' on the place's held-out poses."""
    groups: dict[tuple[Any, int], dict[int, FoldRun]] = {}
    for run in runs:
        if run.places is not None:
            groups.setdefault((run.point["arm"], run.point["seed"]), {})[run.point["fold"]] = run
    records = []
    for (arm, seed), by_fold in groups.items():
        first = next(iter(by_fold.values()))
        if len(by_fold) < first.point["folds"]:
            continue  # a fold of this arm and seed has not finished
        for place in first.point["places"]:
            seen = [r.places[place] for r in by_fold.values() if r.places[place]["seen"]]
            unseen = [r.places[place]["val_rmse"] for r in by_fold.values()
                      if not r.places[place]["seen"]]
            if len(seen) != 1 or not unseen:
                continue
            records.append(PlaceRecord(place, arm, seed, seen[0]["val_rmse"],
                                       sum(unseen) / len(unseen), seen[0]["train_rmse"]))
    return sorted(records, key=lambda r: (str(r.arm), r.seed, r.place))


def unfinished(runs: list[FoldRun], planned: int) -> int:
    """Runs of the plan without their places.json."""
    return planned - sum(r.places is not None for r in runs)


def planned_runs(question: QuestionSpec, seeds: int) -> int:
    """Runs of the design: arms x folds x seeds (a fold count is resolved in the points)."""
    folds = question.folds if isinstance(question.folds, int) else len(question.folds)
    return len(question.arms()) * folds * seeds


def question_result(folder: Path, spec: StudySpec, subdir: str = QUESTION_DIR):
    """(the Answer or None, runs finished, runs planned) of a fold design folder."""
    from tune.question import answer

    question = spec.question
    runs = read_runs(Path(folder) / subdir)
    records = place_records(runs)
    seeds = len({r.point["seed"] for r in runs}) or len(question.seeds)
    planned = planned_runs(question, seeds)
    finished = sum(r.places is not None for r in runs)
    arms = {r.arm for r in records}
    if not set(question.values) <= arms:
        return None, finished, planned
    return (answer(records, question.parameter, question.values, list(question.extra_arms),
                   spec.epochs), finished, planned)
