"""The study file's search algorithm and its targets: ``sampler:``, ``scheduler:`` (ASHA)
and ``targets:``, whose bounds may be relative to a baseline."""

from __future__ import annotations

import re
from typing import Any

from tune.study.rules import Rules, is_number
from tune.study.spec import (
    DEFAULT_SAMPLER,
    SAMPLERS,
    SCHEDULERS,
    TARGET_LEVELS,
    TPE_KEYS,
    AshaSpec,
    Band,
    Bound,
    Relative,
    SamplerSpec,
    Targets,
)


def check_sampler(checker: Rules, raw: Any, targets: Targets) -> SamplerSpec:
    raw = checker.mapping(raw, "sampler")
    checker.known_keys(raw, ("type", "seed", *TPE_KEYS), "sampler")
    kind = checker.choice(raw.get("type", DEFAULT_SAMPLER), "sampler.type", SAMPLERS)
    # numpy's RandomState, under every Optuna sampler, takes seeds in [0, 2**32 - 1].
    seed = checker.integer(raw.get("seed", 0), "sampler.seed", 0, 2**32 - 1)
    if kind != "tpe":
        for key in TPE_KEYS:
            if key in raw:
                said = "" if "type" in raw else " (the default)"
                checker.fail(f"sampler.{key}", f"is a key of TPE's, but sampler.type is "
                             f"{kind!r}{said}", value=raw[key])
        return SamplerSpec(kind, seed)
    startup = checker.integer(raw.get("n_startup_trials", TPE_KEYS["n_startup_trials"]),
                              "sampler.n_startup_trials", 0)
    flags = {key: checker.boolean(raw.get(key, TPE_KEYS[key]), f"sampler.{key}")
             for key in ("multivariate", "constant_liar", "constraints")}
    if flags["constraints"] and not targets.get("minimum"):
        checker.fail("sampler.constraints", "needs targets.minimum (the constraints are its "
                     "bounds), but the study has none", also=("targets",), value=True)
    return SamplerSpec(kind, seed, startup, **flags)


def check_scheduler(checker: Rules, raw: Any, epochs: int) -> AshaSpec | None:
    raw = checker.mapping(raw, "scheduler")
    # ASHA's keys are allowed (and dropped) under `type: none`, so that
    # `--set scheduler.type=none` works on an ASHA study.
    checker.known_keys(raw, ("type", "grace_period", "reduction_factor", "max_t"), "scheduler")
    kind = checker.choice(raw.get("type", "asha"), "scheduler.type", SCHEDULERS)
    if kind == "none":
        return None
    # Ray's ASHAScheduler defaults, except max_t: the trial length.
    grace = checker.integer(raw.get("grace_period", 1), "scheduler.grace_period", 1)
    factor = checker.number(raw.get("reduction_factor", 4), "scheduler.reduction_factor")
    if factor <= 1:
        checker.fail("scheduler.reduction_factor", "`reduction_factor > 1` must hold, but got "
                                                   f"reduction_factor={factor}")
    max_t = checker.integer(raw.get("max_t", epochs), "scheduler.max_t", 1)
    if max_t > epochs:
        checker.fail("scheduler.max_t", "`max_t <= train.epochs` must hold, but got "
                                        f"(max_t={max_t}, epochs={epochs})",
                     also=("train.epochs",))
    if grace > max_t:
        checker.fail("scheduler.grace_period", "`grace_period <= max_t` must hold, but got "
                                               f"(grace_period={grace}, max_t={max_t})",
                     also=("scheduler.max_t", "train.epochs"))
    # Ray's ASHA keeps a rung per milestone grace * factor**k up to max_t: a factor near 1
    # makes millions, more memory than a machine has; more than one per epoch means nothing.
    rungs = AshaSpec(grace, factor, max_t).rungs
    if rungs > max_t - grace + 1:
        checker.fail("scheduler.reduction_factor",
                     "`rungs <= max_t - grace_period + 1` must hold (ASHA's rungs, "
                     "floor(log(max_t / grace_period) / log(reduction_factor)) + 1, at most one "
                     f"per epoch), but got (rungs={rungs}, reduction_factor={factor}, "
                     f"grace_period={grace}, max_t={max_t})",
                     also=("scheduler.grace_period", "scheduler.max_t", "train.epochs"),
                     value=factor)
    return AshaSpec(grace, factor, max_t)


def check_targets(checker: Rules, raw: Any, baselines: dict[str, Any]
                  ) -> tuple[Targets, dict[str, str]]:
    raw = checker.mapping(raw, "targets", empty_ok=True)
    checker.known_keys(raw, (*TARGET_LEVELS, "rules"), "targets")
    rules = checker.mapping(raw.get("rules", {}), "targets.rules", empty_ok=True)
    for metric, rule in rules.items():
        if not isinstance(rule, str) or not rule.strip():
            checker.fail(f"targets.rules.{metric}", f"must be a sentence, but got {rule!r}")
    targets = {}
    for level, metrics in raw.items():
        if level == "rules":
            continue
        metrics = checker.mapping(metrics, f"targets.{level}")
        targets[level] = {}
        for metric, bounds in metrics.items():
            key = f"targets.{level}.{metric}"
            if not re.fullmatch(r"[A-Za-z_]\w*", metric):
                checker.fail(key, f"must name a metric, but got {metric!r}")
            if not isinstance(bounds, list) or len(bounds) != 2:
                checker.fail(key, f"must be [low, high] (null for no bound), but got {bounds!r}")
            lo, hi = (_bound(checker, b, f"{key}[{i}]", baselines) for i, b in enumerate(bounds))
            if lo is None and hi is None:
                checker.fail(key, "needs at least one bound, but got [null, null]")
            if is_number(lo) and is_number(hi) and lo > hi:
                checker.fail(key, f"`low <= high` must hold, but got (low={lo}, high={hi})")
            targets[level][metric] = Band(lo, hi)
    return targets, dict(rules)


def _bound(checker: Rules, value: Any, key: str, baselines: dict[str, Any]) -> Bound:
    """null, a number, or {times: k, of: BASELINE} (k x that baseline's value)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return checker.number(value, key)
    checker.known_keys(value, ("times", "of"), key)
    for part in ("times", "of"):
        if part not in value:
            checker.fail(f"{key}.{part}", "is required in a relative bound {times: k, of: "
                                          "BASELINE}")
    times = checker.number(value["times"], f"{key}.times")
    if times <= 0:
        checker.fail(f"{key}.times", f"`times > 0` must hold, but got times={times}")
    if value["of"] not in baselines:
        checker.fail(f"{key}.of", f"must name a baseline of this study "
                                  f"({', '.join(baselines) or 'none'}), but got {value['of']!r}")
    return Relative(float(times), value["of"])
