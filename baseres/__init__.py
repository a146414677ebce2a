"""The model library: config, model, losses, metrics, data, the trainer and its CLI."""

import importlib.util as _util
import sys as _sys

from baseres.log import show_on_console as _show_on_console


def require(package: str, modules: tuple[str, ...]) -> None:
    """Exit with one line (status 2) when `modules` are missing: run outside the project's
    environment, a command would end in a ModuleNotFoundError from deep inside."""
    missing = [name for name in modules if _util.find_spec(name) is None]
    if missing:
        print(f"error: {package} needs {', '.join(missing)}, which this Python does not have: "
              "run it in the project's environment (. .venv/bin/activate, which make run and "
              "make test build) or pip install -e .", file=_sys.stderr)
        raise SystemExit(2)


require("baseres", ("torch", "numpy", "yaml"))
_show_on_console("baseres")  # the messages of library code (baseres.log)
