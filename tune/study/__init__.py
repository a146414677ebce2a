"""Study files: what a study may say (spec), how a mistake in one is said (rules), the
validator (checks, space_checks, algorithm_checks, question_checks) and the loader (load),
behind one flat face: everything else imports from ``tune.study`` only."""

from tune.study.load import SEARCH_SPACES, load_study, resolve_study_path
from tune.study.spec import (
    BASELINE_KEY,
    CLAIM_BASELINES,
    LOCATION_FIELDS,
    RUN_KEY,
    TPE_KEYS,
    Arm,
    AshaSpec,
    Band,
    Budget,
    QuestionSpec,
    RecheckSpec,
    Relative,
    SamplerSpec,
    StudyError,
    StudySpec,
    Targets,
    arm_key,
    check_experiment_name,
    run_label,
)

__all__ = ["BASELINE_KEY", "CLAIM_BASELINES", "LOCATION_FIELDS", "RUN_KEY", "SEARCH_SPACES",
           "TPE_KEYS", "Arm", "AshaSpec", "Band", "Budget", "QuestionSpec", "RecheckSpec",
           "Relative", "SamplerSpec", "StudyError", "StudySpec", "Targets", "arm_key",
           "check_experiment_name", "load_study", "resolve_study_path", "run_label"]
