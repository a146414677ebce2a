"""The one base class of the errors a user can fix: every command-line tool of baseres and
tune catches it and prints one line (exit status 2), never a traceback."""

from typing import Any


class UserError(ValueError):
    """A bad value, file, folder or command line: the message names it, the rule and what
    was received; `key` (the key path, flag or file at fault), `rule` (what it must satisfy)
    and `value` (what it holds) carry the same as fields, where the raiser knows them."""

    def __init__(self, message: str, key: str | None = None, rule: str | None = None,
                 value: Any = None) -> None:
        super().__init__(message)
        self.key, self.rule, self.value = key, rule, value
