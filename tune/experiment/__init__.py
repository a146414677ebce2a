"""An experiment of ``tune.run``, one face: everything else imports from ``tune.experiment``."""

from tune.experiment.ends import (
    DIVERGED,
    REASON,
    TrialEnd,
    diverged,
    divergence,
    trial_end,
)
from tune.experiment.folder import Experiment, keys_apart
from tune.experiment.journal import (
    BEST,
    JOURNAL_FILE,
    LOST,
    MODEL,
    RAY_ID,
    STUDY_AS_STARTED,
    journal_storage,
    record_end,
    repair_after_kill,
)
from tune.experiment.location import (
    MIN_FREE_BYTES,
    STUDY_FILE,
    HoldsFolder,
    Location,
    driving,
    is_uri,
    new_location,
    placed_line,
)
from tune.experiment.trials import TrialRecord, numbered_folders, ray_trial_statuses, read_rows

__all__ = ["BEST", "DIVERGED", "JOURNAL_FILE", "LOST", "MIN_FREE_BYTES", "MODEL", "RAY_ID",
           "REASON", "STUDY_AS_STARTED", "STUDY_FILE", "Experiment", "HoldsFolder", "Location",
           "TrialEnd", "TrialRecord", "divergence", "diverged", "driving", "is_uri",
           "journal_storage", "keys_apart", "new_location", "numbered_folders", "placed_line",
           "ray_trial_statuses", "read_rows", "record_end", "repair_after_kill", "trial_end"]
