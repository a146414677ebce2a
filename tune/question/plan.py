"""The question's plan: its folds of places and one typed point per (arm, fold, seed) run,
built once per launch (``question_plan``) and handed to the data preparation and the fold
runs; the design folders (``question/``, ``confirm/``, ``confirm-2/`` ...) and the plan a
confirmation or a re-check stores there (``plan.json``) with its fresh seeds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from baseres.cli import command_line
from baseres.config import TrainConfig
from tune.errors import UsageError
from tune.experiment import numbered_folders
from tune.json_files import write_json
from tune.study import Arm, QuestionSpec, StudySpec

QUESTION_DIR = "question"
CONFIRM_DIR = "confirm"  # then confirm-2, confirm-3 ...: each confirmation's own runs
PLAN_FILE = "plan.json"  # a confirmation's plan (seeds, arms, folds), checked on resume

Folds = tuple[tuple[str, ...], ...]  # the places of each fold


class FoldPoint(NamedTuple):
    """One fold run: an arm trained on one fold's places with one seed, scoring every place.
    Ray holds it as ``config()`` (the run's params.json), read back by ``from_config``."""

    arm: Arm
    fold: int  # the number of the fold it trains on
    folds: int  # the design's folds
    seed: int
    places: list[str]  # every place it scores
    label: str
    values: dict[str, Any]  # its TrainConfig values: the arm's, the fold's places, the seed

    def config(self) -> dict[str, Any]:
        """Ray's config of the run, in params.json's layout (a resume reads it back)."""
        return self._asdict()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FoldPoint:
        return cls(**config)


class QuestionPlan(NamedTuple):
    """The question as one launch runs it, built once: the folds, a point per run, and the
    rows its runs read (the features depend on the data settings only, which every arm
    shares)."""

    folds: Folds
    points: list[FoldPoint]
    fold_rows: list[TrainConfig]  # each fold's places: what its runs train on
    place_rows: list[TrainConfig]  # each place alone: what every run scores


def only_places(cfg: TrainConfig, places: list[str]) -> TrainConfig:
    """`cfg` reading `places` only: their val rows (held-out poses) and train rows."""
    return cfg.replace(locations=list(places), val_locations=None, test_locations=None)


def question_plan(spec: StudySpec) -> QuestionPlan:
    """The question's folds, every place checked against the data root (one line if not),
    its points and the rows they read; the synthetic set is generated here when it is
    missing, with its progress."""
    from baseres.data.batvision import DataError
    from baseres.data.cache import check_locations, resolve_data_root

    question = spec.question
    cfg = spec.trial_config(next(iter(question.arms().values())))
    try:
        root = resolve_data_root(cfg)
        folds = resolve_folds(question, spec.fixed, root)
        places = [p for fold in folds for p in fold]
        plan = QuestionPlan(folds, fold_points(question, folds, question.seeds),
                            [only_places(cfg, fold) for fold in folds],
                            [only_places(cfg, [place]) for place in places])
        check_locations(only_places(cfg, places), root)
    except DataError as err:
        raise UsageError(str(err)) from None
    return plan


def resolve_folds(question: QuestionSpec, fixed: dict[str, Any], root: Path) -> Folds:
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


def fold_points(question: QuestionSpec, folds: Folds, seeds: tuple[int, ...] | list[int],
                arms: dict[Arm, dict[str, Any]] | None = None) -> list[FoldPoint]:
    """One point per (arm, fold, seed): its label, its TrainConfig values (the arm's, the
    fold's places, the seed) and every place it scores."""
    places = [p for fold in folds for p in fold]
    points = []
    for arm, changes in (arms if arms is not None else question.arms()).items():
        for seed in seeds:
            for number, fold in enumerate(folds):
                points.append(FoldPoint(arm, number, len(folds), seed, places,
                                        f"arm-{arm}_fold-{number}_seed-{seed}",
                                        {**changes, "locations": list(fold), "seed": seed}))
    return points


def planned_runs(question: QuestionSpec, seeds: int) -> int:
    """Runs of the design: arms x folds x seeds (a fold count is resolved in the points)."""
    folds = question.folds if isinstance(question.folds, int) else len(question.folds)
    return len(question.arms()) * folds * seeds


def design_folders(folder: Path) -> list[Path]:
    """The experiment's fold-run folders: the question's, then each confirmation's
    (confirm, confirm-2, ...), whose seeds are pooled into the one answer."""
    return [Path(folder) / QUESTION_DIR, *numbered_folders(folder, CONFIRM_DIR)]


# ------------------------------------------------------------------------ stored plans
def stored_plan(design: Path) -> dict[str, Any]:
    """A confirmation's plan (seeds, arms, folds); {} before it was stored."""
    try:
        return json.loads((design / PLAN_FILE).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise UsageError(f"{design / PLAN_FILE}: unreadable ({err}); delete {design} to plan "
                         "again") from None


def check_plan(design: Path, plan: dict, seeds: int, experiment: Path) -> dict:
    """The stored plan of an unfinished confirmation (which --seeds must match), or `plan`,
    stored now."""
    stored = stored_plan(design)
    if not stored:
        design.mkdir(parents=True, exist_ok=True)
        write_json(design / PLAN_FILE, plan)
        return plan
    count = len(stored.get("seeds", []))
    if count != seeds:
        raise UsageError(f"{design}: an unfinished confirmation with --seeds {count} is stored "
                         f"there, but this asks for --seeds {seeds}; resume it with "
                         f"{command_line('python -m tune.confirm', experiment, '--seeds', count)}"
                         f", or delete {design} to plan another")
    return stored


def pending_folder(folder: Path, designs: list[Path], name: str, finished) -> Path:
    """The unfinished confirmation among `designs` to resume (`finished(design)`: its runs
    that finished), else the folder of a new one (name, name-2, ...)."""
    for design in designs:
        plan = stored_plan(design)
        if not plan or finished(design) < plan_runs(plan):
            return design
    number = len(designs) + 1
    return folder / (name if number == 1 else f"{name}-{number}")


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
