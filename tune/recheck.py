"""After the search, its winners re-trained on fresh seeds before anything calls one best.

The search picks its best from N configs trained once each: the best of N noisy values is
optimistic (on this study's recorded table the best of 300 kept 36 % of its edge over
seed_after on 5 fresh seeds). So the top K searched configs that ran the full budget, the best
baseline (by its search value) and the plain U-Net re-train at the full budget with fresh
seeds on the study's own splits, two at a time, never stopped early: ``<experiment>/recheck/``
(``tune.confirm`` adds seeds in ``recheck-2/``, ...; every finished seed is pooled). Each run's
value is its best epoch's val RMSE, as the search ranks trials.

Paired by seed: each searched config minus the best baseline, a t-interval over seeds,
Holm-corrected over the configs. The summary reports each config's search value (selected
from N), its re-trained mean with its interval and the drop; "best", tune.export and
tune.evaluate read the re-checked result.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

from tune.console_text import say
from tune.experiment import TrialRecord, numbered_folders, read_rows
from tune.numbers import finite
from tune.question.intervals import ALPHA, Interval, holm, t_interval
from tune.study import BASELINE_KEY, RUN_KEY, StudySpec

RECHECK_DIR = "recheck"
BY_SEARCH_VALUE = attrgetter("best_val_rmse")  # a trial's value in the search (one seed)
SEEDS_METHOD = "t over seeds, paired by seed"


class RecheckArm(NamedTuple):
    """A config the re-check trains again: a search trial's values."""

    name: str  # the search trial's label
    trial_id: str
    baseline: str | None
    values: dict[str, Any]
    search_value: float  # its best epoch's val RMSE in the search (one seed)


def recheck_arms(trials: list[TrialRecord], spec: StudySpec, top: int) -> list[RecheckArm]:
    """The top searched configs that ran the full budget, the best baseline, the U-Net."""
    baselines, searched = baselines_and_top(trials, spec.max_t, top)
    full = sorted((t for t in baselines if t.epochs_run >= spec.max_t), key=BY_SEARCH_VALUE)
    chosen = [*searched, *full[:1], *(t for t in full if t.model == "unet")]
    unique = {t.trial_id: t for t in chosen}
    return [RecheckArm(t.label, t.trial_id, t.baseline,
                       {k: v for k, v in t.params.items() if k != BASELINE_KEY},
                       t.best_val_rmse) for t in unique.values()]


def recheck_points(arms: list[RecheckArm], seeds: list[int]) -> list[dict[str, Any]]:
    """One run per (arm, seed)."""
    return [{"arm": arm.name, "trial": arm.trial_id, "baseline": arm.baseline, "seed": seed,
             "search_value": arm.search_value, "label": f"recheck-{arm.trial_id}_seed-{seed}",
             "values": {**arm.values, "seed": seed}}
            for arm in arms for seed in seeds]


def recheck_trial(config: dict[str, Any], fixed: dict[str, Any]) -> None:
    """One config of the search again, with a fresh seed, at the full budget."""
    from tune.trainable import run_trial

    point = config[RUN_KEY]
    run_trial(point["values"], fixed, point["label"], point["baseline"],
              role=f"re-check of {point['arm']}")


def run_recheck(spec: StudySpec, location, seeds: list[int], design: str = RECHECK_DIR,
                verbose: bool = False) -> bool:
    """The search's winners re-trained with `seeds` in ``<experiment>/<design>``, resumed
    where it ran before; whether every run finished (False: interrupted, or runs failed)."""
    from tune.experiment import Experiment
    from tune.json_files import write_json
    from tune.question.plan import PLAN_FILE, stored_plan
    from tune.question.runs import run_folds

    folder = location.state_folder
    arms = recheck_arms(Experiment(folder).trials(), spec, spec.recheck.top)
    points = recheck_points(arms, seeds)
    if not points:
        return True
    out = folder / design
    if not stored_plan(out):
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / PLAN_FILE, {"arms": [a.name for a in arms], "folds": 1,
                                     "seeds": seeds})
    say(f"re-checking the search's winners: {len(arms)} configs x {len(seeds)} fresh seeds "
        f"{seeds} = {len(points)} runs of {spec.epochs} epochs")
    run_folds(spec, location.child(design), points, verbose, function=recheck_trial)
    finished = sum(run.value is not None for run in read_recheck([out], spec.max_t))
    return finished >= len(points)


def search_seed(spec: StudySpec) -> int:
    """The seed every search trial trained with: a re-check's seeds come after it."""
    return spec.trial_config(spec.low_corner()).seed


def searched_at_full_budget(trials: list[TrialRecord], max_t: int) -> list[TrialRecord]:
    """The searched trials that ran the full budget: the ones the search selects from."""
    return [t for t in trials if not t.baseline and t.best and t.epochs_run >= max_t]


def baselines_and_top(trials: list[TrialRecord], max_t: int, top: int,
                      key: Callable[[TrialRecord], Any] = BY_SEARCH_VALUE
                      ) -> tuple[list[TrialRecord], list[TrialRecord]]:
    """Every baseline with a result (in `trials`' order) and the `top` best searched trials
    of those that ran the full budget (a trial ASHA stopped is no candidate), best by `key`:
    what tune.evaluate scores and the re-check chooses from."""
    baselines = [t for t in trials if t.baseline and t.best]
    return baselines, sorted(searched_at_full_budget(trials, max_t), key=key)[:top]


def recheck_folders(folder: Path) -> list[Path]:
    """recheck/, then recheck-2/, ... (each tune.confirm's further seeds)."""
    return numbered_folders(folder, RECHECK_DIR)


class RecheckRun(NamedTuple):
    point: dict[str, Any]
    value: float | None  # the best epoch's val RMSE; None until the run trained every epoch


def read_recheck(folders: list[Path], max_t: int) -> list[RecheckRun]:
    import json

    runs = []
    for folder in folders:
        for trial in sorted(folder.glob("trial_*")):
            try:
                point = json.loads((trial / "params.json").read_text())[RUN_KEY]
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a run still starting
            rows = read_rows(trial / "result.json")
            values = [r["val_rmse"] for r in rows if finite(r.get("val_rmse"))]
            done = len(rows) >= max_t and len(values) == len(rows)
            runs.append(RecheckRun(point, min(values) if done else None))
    return runs


class RecheckRow(NamedTuple):
    name: str
    trial_id: str
    baseline: str | None
    search_value: float  # selected from `selected_from` full-budget trials: optimistic
    retrained: Interval  # the mean over fresh seeds
    drop: float  # retrained mean - search value (> 0: it did worse again)
    versus_best_baseline: Interval | None  # this - the best baseline, paired by seed
    p_holm: float


class Recheck(NamedTuple):
    seeds: list[int]
    selected_from: int  # the searched trials that ran the full budget
    best_baseline: str | None
    rows: list[RecheckRow]  # searched configs first, by re-trained mean, then the baselines
    best: str | None  # the searched config with the lowest re-trained mean
    runs: int
    planned: int


def summarise_recheck(runs: list[RecheckRun], selected_from: int, planned: int
                      ) -> Recheck | None:
    """The re-check's statistics over every finished run; None before any finished."""
    finished = [r for r in runs if r.value is not None]
    if not finished:
        return None
    by_arm: dict[str, dict[int, float]] = {}
    info: dict[str, dict[str, Any]] = {}
    for run in finished:
        by_arm.setdefault(run.point["arm"], {})[run.point["seed"]] = run.value
        info[run.point["arm"]] = run.point
    baselines = [a for a in by_arm if info[a]["baseline"]]
    # the best baseline as the search ranked it, chosen before the re-check's numbers
    best_baseline = min(baselines, key=lambda a: info[a]["search_value"], default=None)
    rows = []
    for arm, values in by_arm.items():
        seeds = sorted(values)
        retrained = t_interval([values[s] for s in seeds], 1, len(seeds), "t over seeds")
        versus = None
        if best_baseline is not None and arm != best_baseline and not info[arm]["baseline"]:
            reference = by_arm[best_baseline]
            paired = [values[s] - reference[s] for s in seeds if s in reference]
            versus = t_interval(paired, 1, len(paired), SEEDS_METHOD)
        rows.append((arm, retrained, versus))
    adjusted = iter(holm([v.p_value for _, _, v in rows if v is not None]))
    out = [RecheckRow(arm, info[arm]["trial"], info[arm]["baseline"], info[arm]["search_value"],
                      retrained, retrained.mean - info[arm]["search_value"], versus,
                      next(adjusted) if versus is not None else math.nan)
           for arm, retrained, versus in rows]
    out.sort(key=lambda r: (r.baseline is not None, r.retrained.mean))
    searched = [r for r in out if r.baseline is None]
    return Recheck(sorted({r.point["seed"] for r in finished}), selected_from, best_baseline,
                   out, searched[0].name if searched else None, len(finished), planned)


def better_than_baseline(row: RecheckRow) -> bool:
    """Below the best baseline after Holm's correction."""
    return (row.versus_best_baseline is not None and math.isfinite(row.p_holm)
            and row.p_holm < ALPHA and row.versus_best_baseline.mean < 0)


def recheck_result(folder: Path, spec: StudySpec, trials: list[TrialRecord]
                   ) -> Recheck | None:
    """The re-check's statistics over every finished run of the experiment's re-check
    folders, against its stored plans; None before a run finished."""
    from tune.question.plan import planned_in

    folders = recheck_folders(folder)
    return summarise_recheck(read_recheck(folders, spec.max_t),
                             len(searched_at_full_budget(trials, spec.max_t)),
                             sum(planned_in(f) for f in folders))


def retrained_means(folder: Path, spec: StudySpec) -> dict[str, float]:
    """Search trial id -> its config's re-trained mean val RMSE (empty before a re-check)."""
    result = summarise_recheck(read_recheck(recheck_folders(folder), spec.max_t), 0, 0)
    return {row.trial_id: row.retrained.mean for row in result.rows} if result else {}


def rank_key(retrained: dict[str, float]):
    """Re-checked configs first, by their re-trained mean, then the rest by the search's
    value: the order of "best" for tune.export and tune.evaluate."""
    return lambda t: (t.trial_id not in retrained, retrained.get(t.trial_id, t.best_val_rmse))
