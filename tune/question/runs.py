"""Room folds on Ray: one full-budget model per (arm, fold, seed), each scoring every place's
held-out poses at its last epoch (tune.question.places), and the runs of a design folder
read back.

``tune.run`` runs the study's question here before its search (``<experiment>/question/``),
``tune.confirm`` the same design with fresh seeds (``<experiment>/confirm/``). Each is one Ray
run of a grid of points with no scheduler (nothing is stopped early), resumable as a whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from tune.cluster import sigterm_as_ctrl_c
from tune.console_text import say
from tune.experiment import Location, read_rows
from tune.question.places import PLACES_FILE, PlaceScores, read_places
from tune.question.plan import QUESTION_DIR, FoldPoint, QuestionPlan, design_folders
from tune.study import LOCATION_FIELDS, RUN_KEY, StudySpec


def fold_trial(config: dict[str, Any], fixed: dict[str, Any]) -> None:
    """One (arm, fold, seed) model at the full budget, then its places.json."""
    from tune.trainable import run_trial, trial_folder

    point = FoldPoint.from_config(config[RUN_KEY])
    run_trial(point.values, fixed, point.label,
              extra_hooks=(PlaceScores(trial_folder(), point.places),),
              role=f"fold run, arm {point.arm}")


def answer_question(spec: StudySpec, location: Location, plan: QuestionPlan,
                    verbose: bool = False) -> bool:
    """The question's fold runs (arms x folds x seeds, full budget), before the search;
    whether every run finished (an interrupt stops Ray cleanly, without an exception)."""
    points = plan.points
    say(f"the question: {len(spec.question.arms())} arms x {len(plan.folds)} folds x "
        f"{len(spec.question.seeds)} seeds = {len(points)} runs of {spec.epochs} epochs")
    local = location.local
    if local is not None and not unfinished(read_runs(local / QUESTION_DIR), len(points)):
        return True
    run_folds(spec, location.child(QUESTION_DIR), [p.config() for p in points], verbose)
    return local is None or not unfinished(read_runs(local / QUESTION_DIR), len(points))


def run_folds(spec: StudySpec, location: Location, points: list[dict[str, Any]],
              verbose: bool = False, function=None) -> None:
    """The points (each run's config) as one Ray run at `location`, resumed when it exists:
    each a full-budget run of `function(config, fixed)` (default: a fold run; tune.recheck's
    re-trained configs too). SIGTERM stops it as Ctrl-C does (state saved)."""
    from ray.tune import CheckpointConfig, TuneConfig, Tuner, grid_search

    from tune.console import ConsoleProgress
    from tune.trainable import build_trainable, run_config, trial_dirname

    fixed = run_fixed(spec) if function is None else spec.fixed
    trainable = build_trainable(spec, fixed, function or fold_trial)
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


def run_fixed(spec: StudySpec) -> dict[str, Any]:
    """The study's shared values without its held-out places: each fold sets the places."""
    return {k: v for k, v in spec.fixed.items() if k not in LOCATION_FIELDS}


# ------------------------------------------------------------------------ reading back
class FoldRun(NamedTuple):
    point: FoldPoint
    folder: Path
    places: dict[str, dict[str, Any]] | None  # None until the run finished
    damage: str = ""  # why its places.json, there, cannot be read (rescore() mends it)


def read_runs(folder: Path) -> list[FoldRun]:
    """Every run of a fold design folder (question/ or confirm/) that Ray has started."""
    runs = []
    for trial in sorted(Path(folder).glob("trial_*")):
        try:
            point = FoldPoint.from_config(json.loads((trial / "params.json").read_text())[RUN_KEY])
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
        PlaceScores(run.folder, run.point.places).on_epoch_end(trainer,
                                                                  {"epoch": trainer.epoch})
        scored.append(run.folder)
    return scored


def rescore_designs(folder: Path) -> None:
    """rescore() in the question's folder and every confirmation's, saying what it mended."""
    for design in design_folders(folder):
        for run in rescore(design):
            say(f"{run / PLACES_FILE}: was missing or unreadable; scored again from the "
                "run's last checkpoint")


def unfinished(runs: list[FoldRun], planned: int) -> int:
    """Runs of the plan without their places.json."""
    return planned - sum(r.places is not None for r in runs)


def run_minutes(runs: list[FoldRun]) -> float | None:
    """The mean wall time of a finished fold run, in minutes (None before one finished)."""
    times = [rows[-1]["time_total_s"] for run in runs if run.places is not None
             and (rows := read_rows(run.folder / "result.json")) and "time_total_s" in rows[-1]]
    return sum(times) / len(times) / 60 if times else None


