"""The study file's ``question:`` section, validated into a QuestionSpec before Ray starts:
every arm of every fold is built as a TrainConfig here, so a value TrainConfig refuses fails
now, with the key that set it."""

from __future__ import annotations

from typing import Any

from baseres.config import field_types
from tune.study.rules import Rules, is_int, is_number
from tune.study.spec import (
    DATA_FIELDS,
    LOCATION_FIELDS,
    QUESTION_KEYS,
    QuestionSpec,
    experiment_name_rule,
    short_repr,
)

MAX_SEEDS = 100  # more is a typo: each seed is folds x arms full-budget runs
# tune.confirm adds fresh seeds after the largest; numpy and Ray refuse seeds from 2**32 on
SEED_LIMIT = 2**31
CONTROL = "control"  # the positive control's arm
ARM_LABEL_TYPES = (bool, int, float, str, type(None))  # values that can name an arm
# Fixed per run by the design: the fold sets the places, the seed list the seed.
SET_BY_DESIGN = {"locations": "each fold sets the training places",
                 "val_locations": "each fold sets the training places",
                 "test_locations": "each fold sets the training places",
                 "seed": "question.seeds sets each run's seed",
                 "epochs": "every run trains for train.epochs, the full budget"}


def default_claim(parameter: str, first: Any, second: Any) -> str:
    return (f"The claim: with every other knob equal, a model with {parameter} {first} "
            f"memorises the places it trained on more than one with {parameter} {second}, so "
            f"its place gap (unseen - seen RMSE on the same held-out poses) is larger.")


def check_question(checker: Rules, raw: Any, fixed: dict[str, Any]) -> QuestionSpec | None:
    """`question:` of a study whose shared TrainConfig values are `fixed`."""
    if raw is None:
        return None
    raw = checker.mapping(raw, "question")
    checker.known_keys(raw, QUESTION_KEYS, "question")
    for key in ("parameter", "values", "folds"):
        if key not in raw:
            checker.fail(f"question.{key}", "is required")
    parameter = raw["parameter"]
    if not isinstance(parameter, str):
        checker.fail("question.parameter", f"must be a TrainConfig key, but got {parameter!r}")
    checker.train_key(parameter, "question.parameter")
    if parameter in SET_BY_DESIGN:
        checker.fail("question.parameter", SET_BY_DESIGN[parameter])
    if not _labels_arms(checker.fields[parameter]):
        checker.fail("question.parameter", "must be a TrainConfig key whose values can name "
                     f"an arm (a number, a string or true/false), but {parameter} holds "
                     f"{checker.fields[parameter]}", value=parameter)
    values = raw["values"]
    if not isinstance(values, list) or len(values) != 2 or values[0] == values[1]:
        checker.fail("question.values", "must be two different values [predicted larger "
                     f"place gap, predicted smaller], but got {short_repr(values)}")
    for i, value in enumerate(values):
        _value_label(checker, value, f"question.values[{i}]")
    held = _changes(checker, raw.get("held", {}), "question.held", parameter)
    control = raw.get("control")
    if control is not None:
        control = _changes(checker, control, "question.control", None)
    extra = checker.mapping(raw.get("extra_arms", {}), "question.extra_arms", empty_ok=True)
    extra_arms = {}
    for name, changes in extra.items():
        _arm_name(checker, name, "question.extra_arms")
        if name == CONTROL or name in [str(v) for v in values]:
            checker.fail(f"question.extra_arms.{name}", "must not reuse the name of another "
                         f"arm (control, {values[0]}, {values[1]})")
        extra_arms[name] = _changes(checker, changes, f"question.extra_arms.{name}", None)
    folds = _folds(checker, raw["folds"], fixed)
    seeds = raw.get("seeds", [1, 2])
    if not isinstance(seeds, list) or not seeds or len(seeds) > MAX_SEEDS:
        checker.fail("question.seeds", f"must be a list of 1 to {MAX_SEEDS} seeds, but got "
                     f"{short_repr(seeds)}")
    for i, seed in enumerate(seeds):
        if not is_int(seed) or not 0 <= seed < SEED_LIMIT or seed in seeds[:i]:
            checker.fail(f"question.seeds[{i}]", "must be a distinct integer in [0, 2**31) "
                         "(tune.confirm adds fresh seeds after the largest, and every seed "
                         f"must stay below 2**32), but got {seed!r}", value=seed)
    half_width = raw.get("half_width", QuestionSpec.half_width)
    if not is_number(half_width) or not half_width > 0:
        checker.fail("question.half_width", f"must be a positive number of metres (the "
                     f"planner's target half-width), but got {half_width!r}")
    claim = raw.get("claim", default_claim(parameter, *values))
    if not isinstance(claim, str) or not claim.strip():
        checker.fail("question.claim", f"must be a sentence, but got {claim!r}")
    spec = QuestionSpec(" ".join(claim.split()), parameter, tuple(values), held, control,
                        extra_arms, folds, tuple(seeds), float(half_width))
    base = {k: v for k, v in fixed.items() if k not in LOCATION_FIELDS}
    for arm, changes in spec.arms().items():
        where = {values[0]: "question.values[0]", values[1]: "question.values[1]"}.get(
            arm, f"question.extra_arms.{arm}" if arm in extra_arms else "question.control")
        checker.build({**base, **changes}, where, {k: where for k in changes})
    return spec


def _labels_arms(hint: Any) -> bool:
    """Whether a TrainConfig field of type `hint` holds single values (a dict or a list cannot
    name an arm, nor key the arms)."""
    return all(t in ARM_LABEL_TYPES for t in field_types(hint))


def _arm_name(checker: Rules, name: str, key: str) -> None:
    """An arm's name becomes part of its runs' TensorBoard folder names: a plain name, as a
    study's is (no '/', '..', control characters; short)."""
    rule = experiment_name_rule(name)
    if rule is not None:
        checker.fail(key, f"an arm name {rule}, but got {short_repr(name)}", value=name)


def _value_label(checker: Rules, value: Any, key: str) -> None:
    """One of question.values: it names its arm."""
    if not isinstance(value, ARM_LABEL_TYPES):
        checker.fail(key, "must be a single value (a number, a string or true/false) that "
                     f"names its arm, but got {short_repr(value)}", value=value)
    if value == CONTROL:
        checker.fail(key, f"must not be {CONTROL!r}: that names the positive control's arm",
                     value=value)
    if isinstance(value, str):
        _arm_name(checker, value, key)


def _changes(checker: Rules, raw: Any, key: str, parameter: str | None) -> dict[str, Any]:
    """A mapping of TrainConfig values an arm sets; `parameter`: the key it may not set."""
    raw = checker.mapping(raw, key, empty_ok=True)
    for name in raw:
        if name in SET_BY_DESIGN:
            checker.fail(f"{key}.{name}", SET_BY_DESIGN[name])
        checker.train_key(name, f"{key}.{name}")
        if name == parameter:
            checker.fail(f"{key}.{name}", "is the question's parameter: its two values are "
                         "question.values")
    return dict(raw)


def _folds(checker: Rules, raw: Any, fixed: dict[str, Any]) -> tuple[tuple[str, ...], ...] | int:
    """A count (>= 2: the location folders dealt round-robin once the data is read), or a list
    of >= 2 folds of place names, each place in exactly one fold."""
    if fixed.get("dataset") == "batvisionv1":
        checker.fail("question.folds", "needs places: only the BatVision V2 layout "
                     "(batvisionv2, synthetic) has location folders")
    if is_int(raw):
        if raw < 2:
            checker.fail("question.folds", f"`folds >= 2` must hold (a place is unseen by "
                         f"another fold's model), but got folds={raw}")
        return raw
    if not isinstance(raw, list) or len(raw) < 2:
        checker.fail("question.folds", "must be a count >= 2 or a list of >= 2 lists of "
                     f"places, but got {short_repr(raw)}")
    seen: dict[str, int] = {}
    folds = []
    for i, fold in enumerate(raw):
        if not isinstance(fold, list) or not fold:
            checker.fail(f"question.folds[{i}]", f"must be a non-empty list of places, but got "
                         f"{short_repr(fold)}")
        for j, place in enumerate(fold):
            if not isinstance(place, str) or not place:
                checker.fail(f"question.folds[{i}][{j}]", f"must be a place name, but got "
                             f"{place!r}")
            if place in seen:
                checker.fail(f"question.folds[{i}][{j}]", "each place must be in exactly one "
                             f"fold, but {place!r} is in folds {seen[place]} and {i}")
            seen[place] = i
        folds.append(tuple(fold))
    allowed = fixed.get(DATA_FIELDS["locations"])
    if allowed is not None:
        outside = [p for p in seen if p not in allowed]
        if outside:
            checker.fail("question.folds", f"every place must be one of data.locations, but "
                         f"got {outside}", also=("data.locations",))
    return tuple(folds)
