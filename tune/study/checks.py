"""The study-file validator: every key, range and trial corner checked before Ray starts,
each failure one line naming the file, the key path, the rule and the value (tune.study.rules).

Here the study's own keys and the order of the sections; the search space and the trials it
makes in space_checks, the search algorithm and the targets in algorithm_checks, the question
in question_checks.
"""

from __future__ import annotations

import os
from typing import Any

from optuna.distributions import BaseDistribution

from baseres.config import DATASETS
from tune.study.algorithm_checks import check_sampler, check_scheduler, check_targets
from tune.study.question_checks import check_question
from tune.study.rules import Rules
from tune.study.space_checks import check_baselines, check_corners, check_search
from tune.study.spec import (
    BUDGET_KEYS,
    DATA_FIELDS,
    DEFAULT_NUM_SAMPLES,
    MAX_SAMPLES,
    METRICS,
    REQUIRED,
    TOP_KEYS,
    Budget,
    RecheckSpec,
    StudySpec,
    experiment_name_rule,
    short_repr,
)


class Checker(Rules):
    """Validates one raw study, section by section, into a StudySpec."""

    # ---------------------------------------------------------------- the study
    def study(self, raw: dict[str, Any]) -> StudySpec:
        raw = self.mapping(raw, "study")
        self.known_keys(raw, TOP_KEYS, "")
        for key in REQUIRED:
            if key not in raw:
                self.fail(key, "is required")
        study_name = raw["name"]
        name_rule = experiment_name_rule(study_name)
        if name_rule is not None:
            self.fail("name", f"{name_rule}, but got {short_repr(study_name)}", value=study_name)
        metric = self.choice(raw.get("metric", METRICS[0]), "metric", METRICS)
        self.choice(raw.get("mode", "min"), "mode", ("min",))  # StudySpec.mode says why
        budget = self.budget(raw.get("budget"))
        num_samples = raw.get("num_samples")
        if num_samples is not None or budget == Budget(None, None):
            num_samples = self.integer(DEFAULT_NUM_SAMPLES if num_samples is None
                                       else num_samples, "num_samples", 1, MAX_SAMPLES)
        max_concurrent = self.integer(raw.get("max_concurrent_trials", 1),
                                      "max_concurrent_trials", 1)
        resources = self.resources(raw.get("resources_per_trial", {}))
        data = self.data(raw.get("data", {}))
        train = self.train(raw.get("train"))
        space = check_search(self, raw["search"], train)
        fixed = {**train, **data}
        config = check_corners(self, fixed, space)
        baselines = check_baselines(self, raw.get("baselines"), fixed, space)
        if num_samples is not None and num_samples < len(baselines):
            self.fail("num_samples", "`num_samples >= len(baselines)` must hold (the baselines "
                      f"run first), but got (num_samples={num_samples}, "
                      f"baselines={len(baselines)})", also=("baselines",))
        scheduler = check_scheduler(self, raw.get("scheduler", {}), config.epochs)
        max_t = scheduler.max_t if scheduler is not None else config.epochs
        if budget.epochs is not None and budget.epochs < len(baselines) * max_t:
            self.fail("budget.epochs", f"`epochs >= baselines x max_t` must hold (the "
                      f"baselines run first, each to its full budget), but got (epochs="
                      f"{budget.epochs}, baselines={len(baselines)}, max_t={max_t})",
                      also=("baselines",))
        targets, rules = check_targets(self, raw.get("targets"), baselines)
        return StudySpec(
            name=study_name,
            path=self.path,
            metric=metric,
            budget=budget,
            num_samples=num_samples,
            max_concurrent_trials=max_concurrent,
            resources=resources,
            fixed=fixed,
            space=space,
            baselines=baselines,
            sampler=check_sampler(self, raw.get("sampler", {}), targets),
            scheduler=scheduler,
            recheck=self.recheck(raw.get("recheck", {})),
            targets=targets,
            target_rules=rules,
            scientific=self.scientific(raw.get("scientific"), space),
            question=check_question(self, raw.get("question"), fixed),
        )

    def recheck(self, raw: Any) -> RecheckSpec:
        """`recheck:` top (>= 1) and seeds (0: none, else >= 2: a paired interval needs two)."""
        raw = self.mapping(raw, "recheck", empty_ok=True)
        self.known_keys(raw, RecheckSpec._fields, "recheck")
        top = self.integer(raw.get("top", RecheckSpec().top), "recheck.top", 1)
        seeds = self.integer(raw.get("seeds", RecheckSpec().seeds), "recheck.seeds", 0, 100)
        if seeds == 1:
            self.fail("recheck.seeds", "must be 0 (no re-check) or >= 2 (a paired interval "
                      "over seeds needs two), but got seeds=1")
        return RecheckSpec(top, seeds)

    def budget(self, raw: Any) -> Budget:
        """`budget:` epochs (>= 1) and time_s (> 0), each optional."""
        if raw is None:
            return Budget(None, None)
        raw = self.mapping(raw, "budget")
        self.known_keys(raw, BUDGET_KEYS, "budget")
        epochs = raw.get("epochs")
        if epochs is not None:
            epochs = self.integer(epochs, "budget.epochs", 1)
        time_s = raw.get("time_s")
        if time_s is not None:
            time_s = self.number(time_s, "budget.time_s")
            if time_s <= 0:
                self.fail("budget.time_s", f"`time_s > 0` must hold, but got time_s={time_s}")
        if epochs is None and time_s is None:
            self.fail("budget", "must set epochs or time_s (or leave budget out and set "
                      "num_samples)")
        return Budget(epochs, time_s)

    def resources(self, raw: Any) -> dict[str, float]:
        raw = self.mapping(raw, "resources_per_trial")
        self.known_keys(raw, ("cpu", "gpu"), "resources_per_trial")
        cpu = self.number(raw.get("cpu", 1), "resources_per_trial.cpu")
        gpu = self.number(raw.get("gpu", 0), "resources_per_trial.gpu")
        if cpu <= 0:
            self.fail("resources_per_trial.cpu", f"`cpu > 0` must hold, but got cpu={cpu}")
        if gpu < 0:
            self.fail("resources_per_trial.gpu", f"`gpu >= 0` must hold, but got gpu={gpu}")
        return {"cpu": cpu, "gpu": gpu}

    def data(self, raw: Any) -> dict[str, Any]:
        """`data:` as TrainConfig values; a relative root is taken from the working directory."""
        raw = self.mapping(raw, "data")
        self.known_keys(raw, tuple(DATA_FIELDS), "data")
        dataset = self.choice(raw.get("dataset", "synthetic"), "data.dataset", DATASETS)
        values: dict[str, Any] = {"dataset": dataset}
        root = raw.get("root")
        if root is None and dataset != "synthetic":
            self.fail("data.root", f"is required for dataset {dataset}")
        if root is not None:
            if not isinstance(root, str) or not root.strip():
                self.fail("data.root", f"must be a folder path, but got {root!r}")
            # Trials run inside their own folders: resolve now, while "here" means something.
            values["data_root"] = os.path.abspath(os.path.expanduser(root))
        for key in ("locations", "val_locations", "test_locations"):
            if key not in raw:
                continue
            locations = raw[key]
            if dataset == "batvisionv1":
                self.fail(f"data.{key}", "only the BatVision V2 layout (batvisionv2, "
                                         "synthetic) has locations")
            if not isinstance(locations, list) or not locations:
                self.fail(f"data.{key}", f"must be a non-empty list, but got {locations!r}")
            for i, location in enumerate(locations):
                if not isinstance(location, str) or not location:
                    self.fail(f"data.{key}[{i}]",
                              f"must be a folder name, but got {location!r}")
                if location in locations[:i]:
                    self.fail(f"data.{key}[{i}]", "each location must be named once (twice "
                              f"counts its samples twice), but got {location!r} again",
                              value=location)
            values[key] = list(locations)
        return values

    def train(self, raw: Any) -> dict[str, Any]:
        raw = self.mapping(raw, "train", empty_ok=True)
        for name in raw:
            self.train_key(name, f"train.{name}")
        return dict(raw)

    def scientific(self, raw: Any, space: dict[str, BaseDistribution]) -> str | None:
        if raw is None:
            return None
        if raw not in space:
            self.fail("scientific", f"must name a searched parameter ({', '.join(space)}), "
                                    f"but got {raw!r}")
        return raw
