"""Command-line plumbing shared by every entry point of the project."""

from __future__ import annotations

import argparse


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
