"""Room folds on Ray: one full-budget model per (arm, fold, seed), each scoring every place's
held-out poses at its last epoch, and the per-place records tune.question.answer reads.

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

from baseres.cli import command_line
from baseres.config import one_line
from baseres.hooks import Hook
from tune.cluster import sigterm_as_ctrl_c
from tune.console_text import say
from tune.errors import UsageError
from tune.experiment import Location, finite, numbered_folders, read_rows
from tune.question.answer import CONTROL, Answer, PlaceRecord, Plan, answer
from tune.study import LOCATION_FIELDS, RUN_KEY, QuestionSpec, StudySpec

QUESTION_DIR = "question"
CONFIRM_DIR = "confirm"  # then confirm-2, confirm-3 ...: each confirmation's own runs
PLAN_FILE = "plan.json"  # a confirmation's plan (seeds, arms, folds), checked on resume
PLACES_FILE = "places.json"


def resolve_folds(question: QuestionSpec, fixed: dict[str, Any], root: Path
                  ) -> tuple[tuple[str, ...], ...]:
    """The folds' places: as listed, or the location folders (data.locations where set),
    sorted and dealt round-robin into `question.folds` folds."""
    if not isinstance(question.folds, int):
        return question.folds
    from baseres.data.batvision import v2_locations

    places = fixed.get("locations") or v2_locations(root)
    if len(places) < question.folds:
        source = "data.locations" if fixed.get("locations") else f"the location folders of {root}"
        raise UsageError(f"question.folds: `folds <= places` must hold (each fold holds out a "
                         f"place), but got folds={question.folds} for the {len(places)} places "
                         f"of {source}")
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
    say(f"the question's {len(places)} places: each one's train and val rows cached")


def run_folds(spec: StudySpec, location: Location, points: list[dict[str, Any]],
              verbose: bool = False, function=None) -> None:
    """The points as one Ray run at `location`, resumed when it exists: each a full-budget
    run of `function(config, fixed)` (default: a fold run; tune.recheck's re-trained
    configs too). SIGTERM stops it as Ctrl-C does (state saved)."""
    from ray.tune import CheckpointConfig, TuneConfig, Tuner, grid_search

    from tune.console import ConsoleProgress
    from tune.trainable import build_trainable, run_config, trial_dirname

    trainable = build_trainable(spec, run_fixed(spec) if function is None else spec.fixed,
                                function or fold_trial)
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
    damage: str = ""  # why its places.json, there, cannot be read (rescore() mends it)


def read_places(path: Path) -> tuple[dict[str, Any] | None, str]:
    """A run's place scores, or None and why: "" while the file is not there yet."""
    try:
        places = json.loads(path.read_text())["places"]
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError, KeyError, TypeError) as err:
        return None, f"unreadable ({type(err).__name__}: {one_line(str(err))[:80]})"
    if not isinstance(places, dict):
        return None, f"unreadable (places must be a mapping, but got {type(places).__name__})"
    return places, ""


def read_runs(folder: Path) -> list[FoldRun]:
    """Every run of a fold design folder (question/ or confirm/) that Ray has started."""
    runs = []
    for trial in sorted(Path(folder).glob("trial_*")):
        try:
            point = json.loads((trial / "params.json").read_text())[RUN_KEY]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a run still starting
        runs.append(FoldRun(point, trial, *read_places(trial / PLACES_FILE)))
    return runs


def rescore(folder: Path) -> list[Path]:
    """Runs whose places.json is missing or damaged although their checkpoint is at the full
    budget (the file was lost after the run ended, so Ray will not run it again): their places
    scored again from that checkpoint, here. The run folders it scored."""
    from baseres.config import TrainConfig
    from baseres.hooks import CHECKPOINT_FILE
    from baseres.trainer import Trainer

    scored = []
    for run in read_runs(folder):
        checkpoints = sorted(run.folder.glob(f"checkpoint_*/{CHECKPOINT_FILE}"))
        if run.places is not None or not checkpoints or not (run.folder / "config.yaml").is_file():
            continue
        cfg = TrainConfig.from_yaml(run.folder / "config.yaml").replace(
            device="cpu", progress=False, out_dir=None)
        trainer = Trainer(cfg)
        trainer.load_checkpoint(checkpoints[-1])
        if trainer.epoch < cfg.epochs:
            continue  # not finished: Ray goes on with it
        trainer.setup_data(progress=False)
        PlaceScores(run.folder, run.point["places"]).on_epoch_end(trainer,
                                                                  {"epoch": trainer.epoch})
        scored.append(run.folder)
    return scored


def rescore_designs(folder: Path) -> None:
    """rescore() in the question's folder and every confirmation's, saying what it mended."""
    for design in design_folders(folder):
        for run in rescore(design):
            say(f"{run / PLACES_FILE}: was missing or unreadable; scored again from the "
                "run's last checkpoint")


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
            scores = {fold: run.places.get(place) for fold, run in by_fold.items()}
            if not all(isinstance(s, dict) and finite(s.get("val_rmse"))
                       for s in scores.values()):
                continue  # a place a run did not score, or scored NaN (a diverged model)
            seen = [(fold, s) for fold, s in scores.items() if s.get("seen")]
            unseen = [s["val_rmse"] for s in scores.values() if not s.get("seen")]
            if len(seen) != 1 or not unseen or not finite(seen[0][1].get("train_rmse")):
                continue
            fold, scored = seen[0]
            records.append(PlaceRecord(place, arm, seed, fold, scored["val_rmse"],
                                       sum(unseen) / len(unseen), scored["train_rmse"]))
    return sorted(records, key=lambda r: (str(r.arm), r.seed, r.place))


def unfinished(runs: list[FoldRun], planned: int) -> int:
    """Runs of the plan without their places.json."""
    return planned - sum(r.places is not None for r in runs)


def planned_runs(question: QuestionSpec, seeds: int) -> int:
    """Runs of the design: arms x folds x seeds (a fold count is resolved in the points)."""
    folds = question.folds if isinstance(question.folds, int) else len(question.folds)
    return len(question.arms()) * folds * seeds


def design_folders(folder: Path) -> list[Path]:
    """The experiment's fold-run folders: the question's, then each confirmation's
    (confirm, confirm-2, ...), whose seeds are pooled into the one answer."""
    return [Path(folder) / QUESTION_DIR, *numbered_folders(folder, CONFIRM_DIR)]


def run_minutes(runs: list[FoldRun]) -> float | None:
    """The mean wall time of a finished fold run, in minutes (None before one finished)."""
    times = [rows[-1]["time_total_s"] for run in runs if run.places is not None
             and (rows := read_rows(run.folder / "result.json")) and "time_total_s" in rows[-1]]
    return sum(times) / len(times) / 60 if times else None


def plan_seeds(answer: Answer, spec: StudySpec, folder: Path, runs: list[FoldRun],
               folds: int) -> Plan | None:
    """The confirmation that brings the primary contrast to its target half-width, with its
    time at the runs' own pace (arms x folds runs per seed, max_concurrent_trials at once)."""
    have = answer.primary.interval.seeds
    if answer.seeds_needed is None or answer.seeds_needed <= have:
        return None
    add = answer.seeds_needed - have
    minutes = run_minutes(runs)
    per_seed = len(spec.question.arms()) * folds / max(spec.max_concurrent_trials, 1)
    return Plan(add, None if minutes is None else minutes * per_seed * add,
                command_line("python -m tune.confirm", folder, "--seeds", add))


class QuestionResult(NamedTuple):
    answer: Answer | None  # None until both values' arms (and the control) have places
    finished: int
    planned: int
    plan: Plan | None
    damaged: tuple[str, ...] = ()  # "<places.json>: unreadable (...)": runs left out
    not_finite: tuple[str, ...] = ()  # "<run> scored <place> nan": places left out


def not_finite_scores(runs: list[FoldRun]) -> tuple[str, ...]:
    """Each place a finished run scored NaN or infinite (a diverged model), in words:
    place_records leaves such a place out of every comparison."""
    return tuple(f"{run.folder.name} scored {place} {key} {score[key]}"
                 for run in runs if run.places is not None
                 for place, score in sorted(run.places.items()) if isinstance(score, dict)
                 for key in ("val_rmse", "train_rmse")
                 if key in score and not finite(score[key]))


def question_result(folder: Path, spec: StudySpec) -> QuestionResult:
    """The question's answer from every seed of the question and its confirmations."""
    question = spec.question
    runs, planned = [], 0
    for design in design_folders(folder):
        found = read_runs(design)
        runs += found
        if design.name == QUESTION_DIR:
            planned += planned_runs(question, len(question.seeds))
        else:
            planned += max(len(found), planned_in(design))
    records = place_records(runs)
    finished = sum(r.places is not None for r in runs)
    damaged = tuple(f"{r.folder / PLACES_FILE}: {r.damage}" for r in runs if r.damage)
    arms = {r.arm for r in records}
    needed = set(question.values) | ({CONTROL} if question.control is not None else set())
    if not needed <= arms:
        return QuestionResult(None, finished, planned, None, damaged, not_finite_scores(runs))
    result = answer(records, question.parameter, question.values, list(question.extra_arms),
                    spec.epochs, question.half_width)
    folds = len({r.point["fold"] for r in runs}) or 1
    return QuestionResult(result, finished, planned,
                          plan_seeds(result, spec, Path(folder), runs, folds), damaged,
                          not_finite_scores(runs))


def stored_plan(design: Path) -> dict[str, Any]:
    """A confirmation's plan (seeds, arms, folds); {} before it was stored."""
    try:
        return json.loads((design / PLAN_FILE).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise UsageError(f"{design / PLAN_FILE}: unreadable ({err}); delete {design} to plan "
                         "again") from None


SEED_LIMIT = 2**32  # every seed a run takes is below it (numpy refuses larger)


def fresh_seeds(used: set[int], count: int) -> list[int]:
    """`count` seeds after every one used so far (below SEED_LIMIT, the lowest unused where
    the next ones would not fit): a confirmation's or a re-check's."""
    start = max(used) + 1 if used else 1
    if start + count > SEED_LIMIT:
        start = 0
    seeds: list[int] = []
    while len(seeds) < count:
        if start not in used:
            seeds.append(start)
        start += 1
    return seeds


def planned_in(design: Path) -> int:
    """The runs a design folder's stored plan holds (0 before it is stored, or where it is
    unreadable: tune.confirm names that file)."""
    try:
        return plan_runs(stored_plan(design))
    except UsageError:
        return 0


def plan_runs(plan: dict[str, Any]) -> int:
    """A plan's runs: arms x folds x seeds."""
    try:
        return len(plan["arms"]) * int(plan["folds"]) * len(plan["seeds"])
    except (KeyError, TypeError, ValueError):
        return 0
