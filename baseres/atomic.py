"""Writing a file whole or not at all: the content goes to a temporary file beside it, which
then replaces it in one step (os.replace), so a reader sees the old file or the new one, never
a part of one, and a writer that fails leaves the old file as it was and no temporary file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> None:
    """Replace `path` with what `write` writes to the path it is given (a sibling of `path`,
    created as any new file is, so the file keeps the mode a plain write gives it)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C too: nothing half-written stays behind
        with contextlib.suppress(OSError):  # a read-only folder refuses this too
            tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str, newline: str | None = None) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text, newline=newline))


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    write_atomic(path, lambda tmp: tmp.write_bytes(data))
