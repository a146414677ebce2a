"""JSON files written whole: a record as JSON's types (``jsonable``), written through a
temporary file renamed into place (``write_json``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from baseres.atomic import write_text_atomic


def jsonable(value: Any) -> Any:
    """A report as JSON's types: NamedTuples as objects (a record may flatten itself with
    ``json_form``), tuples as lists, NaN and infinities as null (JSON has no such number);
    everything else as it is (write_json turns paths and numpy scalars into text)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "json_form"):
        return jsonable(value.json_form())
    if hasattr(value, "_asdict"):
        return {key: jsonable(v) for key, v in value._asdict().items()}
    if isinstance(value, dict):
        return {key: jsonable(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    """Write a report whole or not at all (a temporary file renamed into place)."""
    # allow_nan=False: a NaN that reached here unconverted fails loudly, never writes a token
    # that is not JSON
    write_text_atomic(path, json.dumps(jsonable(data), indent=1, default=str, allow_nan=False))
