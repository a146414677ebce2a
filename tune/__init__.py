"""The search service: study files, the Ray Tune trainable, the CLI, summaries and export."""

from baseres import require

require("tune", ("optuna", "ray"))
