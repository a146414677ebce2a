"""Each place of the question, alone: its rows cached before Ray (``prepare_places``), its
held-out and training poses scored by a fold run at its last epoch (``PlaceScores``, written
to ``places.json`` in the run's folder before its last report, so a run whose folder holds it
is complete), and that file read back (``read_places``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from baseres.atomic import write_text_atomic
from baseres.config import one_line
from baseres.hooks import Hook
from tune.console_text import say
from tune.question.plan import QuestionPlan, only_places

PLACES_FILE = "places.json"


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
            one = only_places(cfg, [place])
            held_out, _ = trainer.evaluate(load_split(one, "val", root, progress=False))
            scores[place] = {"seen": place in seen, "val_rmse": held_out["rmse"]}
            if place in seen:
                train, _ = trainer.evaluate(load_split(one, "train", root, progress=False))
                scores[place]["train_rmse"] = train["rmse"]
        write_text_atomic(self.path, json.dumps({"epoch": int(record["epoch"]), "places": scores}))


def prepare_places(plan: QuestionPlan, root: Path) -> None:
    """Build every feature cache the fold runs read (each fold's rows, each place's), once,
    before Ray: a missing place fails here in one line, and runs only map the cache."""
    from baseres.data.cache import load_split

    for fold in plan.fold_rows:
        for split in ("train", "val"):
            load_split(fold, split, root)
    for place in plan.place_rows:
        for split in ("train", "val"):
            load_split(place, split, root, progress=False)
    say(f"the question's {len(plan.place_rows)} places: each one's train and val rows cached")


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
