"""The search service: study files, the Ray Tune trainable, the CLI, summaries and export."""

from baseres import require
from baseres.log import show_on_console

require("tune", ("optuna", "ray"))
show_on_console("tune")  # the messages of library code (baseres.log)
