"""Command-line plumbing shared by every entry point of the project."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable

from baseres.errors import UserError


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit status 2), no usage block, and
    shows a module docstring's ``literals`` as plain `literals`."""

    def __init__(self, *args, description: str | None = None, **kwargs):
        super().__init__(*args, description=description and description.replace("``", "`"),
                         **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default where it says something: not "(default: None)", "(default:
    False)" of a switch or "(default: [])", nor a second default beside one the help states."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default  # `0 in (False,)` holds: a default of 0 is still shown
        if (default is None or default is False or default == [] or default == argparse.SUPPRESS
                or "(default" in text):
            return text
        return super()._get_help_string(action)


def bounded_int(name: str, low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse `type=`: an int of at least `low` (and at most `high`). Outside that,
    argparse says "argument --top: `top >= 1` must hold, but got top=0" (with a high:
    "`1 <= port <= 65535` must hold, but got port=0"); a non-integer, "invalid int value"."""
    rule = f"{name} >= {low}" if high is None else f"{low} <= {name} <= {high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"`{rule}` must hold, but got {name}={value}")
        return value

    return parse


class CommandLineError(UserError):
    """Flags that parse but do not go together: reported as argparse reports its own errors
    ("prog: error: ... (see --help)", exit status 2), by `run_command`."""


def command_line(program: str, *args: object) -> str:
    """A command to paste into a shell: `program` (the command's own words, as written), then
    each of `args` quoted where the shell would split or expand it (a path with a space)."""
    return " ".join([program, *(shlex.quote(str(arg)) for arg in args)])


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, or a stop a command treats as one (status 130), with the command's own line
    "<what>; <hint>" (e.g. how to resume): raised where the body knows its state."""

    def __init__(self, hint: str, what: str = "interrupted") -> None:
        super().__init__(f"{what}; {hint}")


def run_command(build_parser: Callable[[], argparse.ArgumentParser],
                body: Callable[[argparse.Namespace], int], argv: list[str] | None = None) -> int:
    """The shell of every command: parse `argv`, run `body(args)` and return its exit status.
    A UserError is one stderr line "error: ..." and status 2 (CommandLineError: argparse's
    line); Ctrl-C is status 130 with "interrupted", or an Interrupted's own line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return body(args)
    except CommandLineError as err:
        parser.error(str(err))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"\n{err}" if isinstance(err, Interrupted) else "\ninterrupted", file=sys.stderr)
        return 130
