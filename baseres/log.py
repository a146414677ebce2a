"""Where the messages of library code go: each module logs to ``logging.getLogger(__name__)``,
and each package logger (``baseres``, ``tune``) shows INFO and above as the bare message on
standard error, as the print calls it replaced did.

That is set when the package is imported, not by the commands alone: a script that calls the
library (e.g. ensure_synthetic, which announces a generation) and Ray's trial processes
(whose standard error Ray copies to the driver's console) saw these messages without any
command's set-up. Records still propagate, so an application that configures logging sees
them too; it takes the console over with ``logging.getLogger("baseres").handlers.clear()``.
"""

from __future__ import annotations

import logging
import sys


class ConsoleHandler(logging.StreamHandler):
    """Writes each record's message alone to ``sys.stderr`` as it is when the record comes:
    pytest's capsys and contextlib.redirect_stderr replace it after the import."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it; the property decides
        pass


def show_on_console(package: str) -> None:
    """Give `package`'s logger the console handler (once, also on a re-import) at INFO."""
    logger = logging.getLogger(package)
    if not any(isinstance(handler, ConsoleHandler) for handler in logger.handlers):
        logger.addHandler(ConsoleHandler())
    logger.setLevel(logging.INFO)
