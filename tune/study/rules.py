"""The form every study-file failure takes, and the value rules every section shares.

A failure is one line naming the file, any --set override that caused it, the key path, the
rule and the value (Optuna's style); it raises StudyError with those as fields.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from baseres.config import ConfigError, TrainConfig, config_fields, one_line
from tune.study.spec import NOT_SETTABLE, StudyError


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def related(a: str, b: str) -> bool:
    """Whether one key path lies inside the other (``search.x`` and ``search.x.low``)."""
    short, long = sorted((a, b), key=len)
    return long.startswith(short) and long[len(short): len(short) + 1] in ("", ".", "[")


def suggest(key: Any, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Rules:
    """Checks values of one study file; every failure goes through `fail` so messages share a
    form."""

    def __init__(self, path: Path, overridden: tuple[tuple[str, str], ...]) -> None:
        self.path = path
        self.overridden = overridden
        self.fields = config_fields()

    def fail(self, key: str, rule: str, also: Iterable[str] = (), value: Any = None) -> NoReturn:
        """Raise for `key`; a --set override of it (or of a key in `also`) is named first."""
        keys = [key, *also]
        blamed = [o for o, scope in self.overridden if any(related(scope, k) for k in keys)]
        parts = [str(self.path), *(f"--set {o}" for o in blamed)]
        if key not in blamed:
            parts.append(key)
        raise StudyError(one_line(": ".join(parts) + f": {rule}"), key=key, rule=rule,
                         value=value)

    # ---------------------------------------------------------------- generic values
    def mapping(self, value: Any, key: str, empty_ok: bool = False) -> dict[str, Any]:
        if value is None and empty_ok:  # a section whose entries are all commented out
            return {}
        if not isinstance(value, dict):
            self.fail(key, f"must be a mapping, but got {value!r}", value=value)
        for name in value:
            if not isinstance(name, str):
                self.fail(key, f"keys must be strings, but got {name!r}", value=name)
        return value

    def known_keys(self, mapping: dict[str, Any], allowed: Sequence[str], key: str) -> None:
        for name in mapping:
            if name not in allowed:
                self.fail(f"{key}.{name}" if key else name,
                          f"unknown key{suggest(name, allowed)}; allowed: {', '.join(allowed)}")

    def integer(self, value: Any, key: str, low: int, high: int | None = None) -> int:
        leaf = key.rsplit(".", 1)[-1]
        if not is_int(value):
            self.fail(key, f"must be an integer, but got {value!r}", value=value)
        if value < low:
            self.fail(key, f"`{leaf} >= {low}` must hold, but got {leaf}={value}", value=value)
        if high is not None and value > high:
            self.fail(key, f"`{leaf} <= {high}` must hold, but got {leaf}={value}", value=value)
        return value

    def number(self, value: Any, key: str) -> float:
        if not is_number(value):
            self.fail(key, f"must be a number, but got {value!r}", value=value)
        if not math.isfinite(value):
            self.fail(key, f"must be finite, but got {value!r}", value=value)
        return value

    def choice(self, value: Any, key: str, allowed: Sequence[str]) -> str:
        if value not in allowed:
            self.fail(key, f"must be one of {list(allowed)}, but got {value!r}", value=value)
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, but got {value!r}", value=value)
        return value

    # ---------------------------------------------------------------- TrainConfig values
    def train_key(self, name: str, key: str) -> None:
        """`name` must be a TrainConfig field that a study may set."""
        if name not in self.fields:
            hint = suggest(name, self.fields) or f"; known: {', '.join(self.fields)}"
            self.fail(key, f"unknown TrainConfig key{hint}")
        if name in NOT_SETTABLE:
            self.fail(key, NOT_SETTABLE[name])

    def build(self, values: dict[str, Any], where: str, owners: dict[str, str]) -> TrainConfig:
        """Build a TrainConfig; on failure, blame the study key that sets the field at fault.

        TrainConfig's errors carry the field (`key`), and `owners` maps fields to where this
        study sets them. Inside a trial labelled `where`, a field set elsewhere is
        named too (`also`), so a --set of it is reported.
        """
        try:
            return TrainConfig.from_dict(values, source="trial")
        except ConfigError as err:
            message = str(err).removeprefix("trial: ")
            owner = owners.get(err.key)
            if owner and (not where or owner.startswith(f"{where}.")):
                self.fail(owner, message)
            self.fail(where or "train", message, also=(owner,) if owner else ())
