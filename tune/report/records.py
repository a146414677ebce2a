"""The records the commands write into an experiment folder after the search, typed, each
with one reader: tune.evaluate's scores (``evaluation-<split>.json``) and tune.confirm's seed
statistics (``confirm.json``). The summary reads them back through ``read_evaluation`` and
``read_confirmation`` only, and says in one line when a file is of another layout."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, NamedTuple

CONFIRM_VERSION = 3  # confirm.json's layout: the pooled comparisons after fresh seeds


def evaluation_file(folder: Path, split: str) -> Path:
    """Where tune.evaluate keeps a split's scores (written once, after the search)."""
    return Path(folder) / f"evaluation-{split}.json"


def confirm_file(folder: Path) -> Path:
    """Where tune.confirm keeps its seed statistics."""
    return Path(folder) / "confirm.json"


# ------------------------------------------------------------------------ tune.evaluate
class EvaluatedTrial(NamedTuple):
    """One trial scored from the checkpoint of its best validation epoch."""

    trial: str
    label: str
    baseline: str | None
    model: str
    params: dict[str, Any]
    checkpoint_epoch: int
    checkpoint: str
    val_rmse: float
    # column ("seen", "unseen" or the split) -> rmse, delta1, ..., samples, mean_map_rmse,
    # rmse_ratio; in the file each column is a key of the trial's object
    scores: dict[str, dict[str, float]]

    def json_form(self) -> dict[str, Any]:
        out = self._asdict()
        scores = out.pop("scores")
        return {**out, **scores}


class Evaluation(NamedTuple):
    experiment: str
    split: str
    top: int
    evaluated_at: str
    columns: list[str]
    trials: list[EvaluatedTrial]


def _read(path: Path, parse, what: str, advice: str = ""):
    """(the record `parse` makes of the file, "") or (None, why it cannot be read: "" when
    there is no file)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError) as err:
        return None, f"{path.name} is unreadable ({err})"
    try:
        return parse(data), ""
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        return None, (f"{path.name} is not {what} this version writes "
                      f"({type(err).__name__}: {err}){advice}")


def _evaluation(data: dict[str, Any]) -> Evaluation:
    columns = list(data["columns"])
    fields = [f for f in EvaluatedTrial._fields if f != "scores"]
    trials = [EvaluatedTrial(**{f: row[f] for f in fields},
                             scores={c: dict(row[c]) for c in columns})
              for row in data["trials"]]
    if not trials:
        raise ValueError("it scores no trial")
    return Evaluation(data["experiment"], data["split"], data["top"], data["evaluated_at"],
                      columns, trials)


def read_evaluation(folder: Path, split: str) -> tuple[Evaluation | None, str]:
    """A split's evaluation, or (None, why it cannot be read: "" when there is none)."""
    return _read(evaluation_file(folder, split), _evaluation, "an evaluation")


# ------------------------------------------------------------------------ tune.confirm
class SeedComparison(NamedTuple):
    """One comparison of a confirmation, its p Holm-corrected with the others'."""

    comparison: str
    effect_m: float
    ci95_m: tuple[float, float]  # raw 95 %: the outcome reads p_holm
    n_places: int
    n_seeds: int
    p_value: float
    detectable_m: float  # the effect this design detects at 80 % power
    p_holm: float
    outcome: str  # "above 0", "below 0" or "inconclusive at this power (...)"


class Confirmation(NamedTuple):
    version: int
    experiment: str
    test: str  # the test each comparison is, in words
    seeds: list[int]  # the seeds this confirmation added
    pooled_seeds: list[int]  # every seed its comparisons pool (the question's too)
    runs: int
    verdict: str | None  # the question's verdict after pooling
    comparisons: list[SeedComparison]
    per_place: list[dict[str, Any]]  # tune.question.PlaceRecord's fields, the added seeds'


def _confirmation(data: dict[str, Any]) -> Confirmation:
    if data["version"] != CONFIRM_VERSION:
        raise ValueError(f"version {data['version']!r}, this reader's is {CONFIRM_VERSION}")
    # JSON's null is the NaN write_json could not write (a comparison without an interval)
    comparisons = [SeedComparison(**{**{k: math.nan if v is None else v for k, v in
                                        entry.items()},
                                     "ci95_m": tuple(math.nan if v is None else v
                                                     for v in entry["ci95_m"])})
                   for entry in data["comparisons"]]
    return Confirmation(**{**data, "comparisons": comparisons})


def read_confirmation(folder: Path) -> tuple[Confirmation | None, str]:
    """confirm.json as tune.confirm writes it, or (None, why it cannot be read: "" when there
    is none)."""
    return _read(confirm_file(folder), _confirmation, "a confirmation",
                 "; run python -m tune.confirm again to replace it")
