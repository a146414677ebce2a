"""Study files: the shipped ones load and round-trip; names, overrides and the lookup of a
study by name (the malformed ones: test_bad_studies.py)."""

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import HEAD, VALID, refused, write
from optuna.distributions import CategoricalDistribution, FloatDistribution

from tune.study import (
    SEARCH_SPACES,
    Relative,
    StudyError,
    check_experiment_name,
    load_study,
    resolve_study_path,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ("generalization", "smoke", "batvision_v2")


# ------------------------------------------------------------------------ shipped studies

@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_studies_load(name):
    spec = load_study(name)
    assert spec.name == name and spec.metric == "val_rmse" and spec.mode == "min"
    assert set(spec.baselines) == {"seed_before", "seed_after", "unet"}
    assert spec.num_samples is None or spec.num_samples >= len(spec.baselines)
    assert spec.budget.epochs is None or spec.budget.epochs >= len(spec.baselines) * spec.max_t
    assert spec.max_t == spec.trial_config({**spec.baselines["seed_after"]}).epochs
    assert spec.space["base_channel_divisor"] == CategoricalDistribution([1, 2, 4, 8])
    assert spec.space["lambda_base_init"] == FloatDistribution(0.5, 4.0, log=True)
    assert spec.targets["minimum"]["val_rmse"] == (None, Relative(0.85, "seed_before"))
    assert spec.targets["ideal"]["val_rmse"] == (None, Relative(0.70, "seed_before"))
    assert spec.scientific == "base_channel_divisor"
    for point in spec.baselines.values():
        assert spec.trial_config(point).use_adaptive_loss


# The seed's document, value for value (docs/model.md: "The seed's values and their keys").
SEED_VALUES = {
    "seed_before": {"base_channel_divisor": 1, "residual_range": 0.2, "lambda_recon_init": 0.5,
                    "lambda_recon_end": 1.0, "lambda_base_init": 1.5, "lambda_base_end": 0.3,
                    "lambda_sparse": 0.3, "warmup_fraction": 0.10},
    "seed_after": {"base_channel_divisor": 4, "residual_range": 0.3, "lambda_recon_init": 0.3,
                   "lambda_recon_end": 1.0, "lambda_base_init": 2.0, "lambda_base_end": 0.3,
                   "lambda_sparse": 0.05, "warmup_fraction": 0.25},
}


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("baseline", sorted(SEED_VALUES))
def test_shipped_baselines_are_the_seeds_runs(name, baseline):
    spec = load_study(name)
    cfg = spec.trial_config(spec.baselines[baseline])
    assert cfg.model == "base_residual" and cfg.use_adaptive_loss
    assert {k: getattr(cfg, k) for k in SEED_VALUES[baseline]} == SEED_VALUES[baseline]
    unet = spec.trial_config(spec.baselines["unet"])
    assert unet.model == "unet" and spec.baselines["unet"] == {"model": "unet"}


def test_shipped_sizes():
    gen, smoke, v2 = (load_study(name) for name in SHIPPED)
    # 48 epochs of baselines + 120 searched: 25 % of the policy replay's 30 x 16 epochs
    assert (gen.budget.epochs, gen.num_samples, gen.max_concurrent_trials) == (168, None, 2)
    assert gen.resources == {"cpu": 1, "gpu": 0}
    assert gen.space["warmup_fraction"] == FloatDistribution(0.05, 0.5)
    assert gen.trial_config(gen.baselines["seed_before"]).warmup_epochs == 2  # 10 % of 16
    assert gen.trial_config(gen.baselines["seed_after"]).warmup_epochs == 4  # 25 % of 16
    # the question's arms train their wide base for 4 epochs before it is fixed
    arms = gen.question.arms()
    assert gen.trial_config(arms[1]).warmup_epochs == 4 and arms[1]["base_channel_divisor"] == 1
    assert gen.trial_config(arms[4]).image_size == 32
    assert set(arms) == {1, 4, "control"} and gen.question.seeds == (1, 2, 3)
    # the policy replay's choice at make run's budget (docs/performance.md)
    assert gen.scheduler is None
    assert gen.sampler.to_dict() == v2.sampler.to_dict() == {"type": "random", "seed": 0}
    assert smoke.num_samples == len(smoke.baselines) + 1
    assert smoke.space == gen.space and smoke.baselines == gen.baselines
    assert smoke.trial_config({"model": "unet"}).image_size == 32
    assert v2.fixed["data_root"] == "/data/BatvisionV2" and v2.resources["gpu"] == 1
    assert v2.trial_config(v2.baselines["seed_after"]).warmup_epochs == 25  # 25 % of 100
    assert v2.trial_config(v2.baselines["seed_before"]).warmup_epochs == 10  # 10 % of 100


def test_baseline_extras_reach_the_trial_config():
    spec = load_study("generalization")
    unet = spec.trial_config(spec.baselines["unet"])
    assert unet.model == "unet" and unet.epochs == 16
    before = spec.trial_config(spec.baselines["seed_before"])
    assert (before.model, before.base_channel_divisor) == ("base_residual", 1)
    assert (before.lambda_base_init, before.lambda_recon_init) == (1.5, 0.5)
    assert before.lowpass_kernel == 2  # 32 px / 16, the seed's share


def test_to_yaml_round_trips(tmp_path):
    spec = load_study("batvision_v2")
    again = load_study(write(tmp_path, spec.to_yaml()))
    assert again == type(spec)(**{**spec.__dict__, "path": again.path})


# Strings that YAML would read as something else if written plain: a float (YAML 1.2, as
# study files read it), a bool, null, a hexadecimal and an underscored int.
LOOKALIKES = ["1e5", "true", "null", "0x10", "1_000", "1.5", "~", "yes", "-2E-3"]


@pytest.mark.parametrize("text", LOOKALIKES)
def test_to_yaml_keeps_strings_that_look_like_other_values(tmp_path, text):
    spec = load_study(write(tmp_path, VALID), [f'train.experiment_name="{text}"',
                                              f'train.extra={{note: "{text}"}}'])
    assert spec.fixed["experiment_name"] == text and spec.fixed["extra"] == {"note": text}
    again = load_study(write(tmp_path, spec.to_yaml(), "again.yaml"))
    assert again == type(spec)(**{**spec.__dict__, "path": again.path})
    assert again.fixed["experiment_name"] == text


def test_a_slow_reduction_factor_is_fine_while_rungs_fit_the_epochs(tmp_path):
    spec = load_study(write(tmp_path, VALID + "train: {epochs: 3}\n"
                                              "scheduler: {reduction_factor: 1.5}\n"))
    assert spec.scheduler.reduction_factor == 1.5  # rungs at epochs 1, 1.5 and 2.25: three


NAMES = [
    ("", "must be a non-empty folder name"),
    ("n" * 101, "must be at most 100 characters long (it names a folder)"),
    ("../escaped", "must be one folder name, without '/', '\\' or NUL"),
    ("a\\b", "must be one folder name, without '/', '\\' or NUL"),
    ("a\0b", "must be one folder name, without '/', '\\' or NUL"),
    (".", "must not start with '.' (no '.', '..' or hidden folder)"),
    ("..", "must not start with '.' (no '.', '..' or hidden folder)"),
    (".cache", "must not start with '.' (no '.', '..' or hidden folder)"),
    ("-rf", "must start with a letter or digit and use only letters, digits, '.', '_' and '-' "
            "(it names a folder)"),
]


@pytest.mark.parametrize(("name", "rule"), NAMES, ids=[repr(n[0])[:12] for n in NAMES])
def test_check_experiment_name_refuses_unsafe_folder_names(name, rule):
    with pytest.raises(StudyError) as info:
        check_experiment_name(name, "--name")
    assert (info.value.key, info.value.rule, info.value.value) == ("--name", rule, name)
    assert str(info.value).startswith(f"--name: {rule}, but got ")
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


@pytest.mark.parametrize("name", ["smoke", "n" * 100, "v2.run_3-b", "7"])
def test_check_experiment_name_accepts_folder_names(name):
    assert check_experiment_name(name, "--name") == name


def test_importing_the_spec_does_not_start_or_import_ray():
    code = "import sys, tune.study; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


# ------------------------------------------------------------------------ malformed studies
def test_the_valid_base_loads_with_the_defaults(tmp_path):
    spec = load_study(write(tmp_path, VALID))
    assert spec.num_samples == 10 and spec.scheduler.max_t == 40  # TrainConfig's epochs
    assert spec.sampler.to_dict() == {"type": "random", "seed": 0}  # the policy replay's
    # Under TPE: Optuna's startup count, and the study's targets not used as constraints
    tpe = load_study(write(tmp_path, VALID + "sampler: {type: tpe}\n", "tpe.yaml")).sampler
    assert tpe.to_dict() == {"type": "tpe", "seed": 0, "n_startup_trials": 10,
                             "multivariate": False, "constant_liar": False, "constraints": False}


def test_tpe_keys_are_read_and_written_back(tmp_path):
    text = VALID + ("sampler: {type: tpe, n_startup_trials: 3, multivariate: true,"
                    " constant_liar: true, constraints: true}\n"
                    "targets:\n  minimum: {val_rmse: [null, 2.0]}\n")
    spec = load_study(write(tmp_path, text))
    assert spec.sampler.to_dict() == {"type": "tpe", "seed": 0, "n_startup_trials": 3,
                                      "multivariate": True, "constant_liar": True,
                                      "constraints": True}
    assert load_study(write(tmp_path, spec.to_yaml(), "resolved.yaml")).sampler == spec.sampler
    from tune.searcher import make_sampler

    sampler = make_sampler(spec)
    assert (sampler._n_startup_trials, sampler._multivariate, sampler._constant_liar) == (
        3, True, True)


def test_unreadable_file(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    refused(path, r"cannot read the study file: not UTF-8")


def test_plain_yaml_extras(tmp_path):
    # 1e-3 is a string in YAML 1.1; study files read it as the number everyone means.
    spec = load_study(write(tmp_path, HEAD + "search:\n  learning_rate: {type: float, "
                                             "low: 1e-4, high: 1.0e-2, log: true}\n"))
    assert spec.space["learning_rate"] == FloatDistribution(1e-4, 1e-2, log=True)


def test_relative_data_root_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = load_study(write(tmp_path, VALID + "data: {dataset: batvisionv2, root: data/bv2}\n"))
    assert spec.fixed["data_root"] == str(tmp_path / "data" / "bv2")


# ------------------------------------------------------------------------ --set overrides
def test_overrides_apply_before_validation():
    spec = load_study("generalization", ["train.epochs=3", "num_samples=4",
                                         "search.residual_range.high=0.4", "scheduler.type=asha"])
    assert spec.fixed["epochs"] == 3 and spec.num_samples == 4
    assert spec.space["residual_range"] == FloatDistribution(0.1, 0.4)
    assert spec.scheduler.max_t == 3
    assert load_study("generalization", ["train.epochs=6"]).max_t == 6
    assert load_study("smoke", ["scheduler={type: none}"]).scheduler is None
    moved = load_study("smoke", ["data.root=/d", "data.dataset=batvisionv2"])
    assert moved.fixed["data_root"] == "/d"


BAD_OVERRIDES = [
    ("search.residual_range.high=0.05",
     r"--set search.residual_range.high: search.residual_range: `low <= high` must hold, "
     r"but got \(low=0.1, high=0.05\)"),
    ("train.epochs=ten", r"--set train.epochs: epochs must be an integer, but got 'ten'"),
    ("scheduler={type: asha, grace_period: 20}",
     r"--set scheduler: scheduler.grace_period: `grace_period <= max_t` must hold, but got "
     r"\(grace_period=20, max_t=16\)"),
    ("train.base_channels=12",
     r"--set train.base_channels: search.base_channel_divisor.choices\[3\]: base_channels must "
     r"be divisible"),
    ("num_samples=2", r"--set num_samples: `num_samples >= len\(baselines\)` must hold"),
    ("nosuch=1", r"--set nosuch: unknown key"),
    ("num_samples", r"--set num_samples: expected key=value"),
    ("train..epochs=3", r"--set train..epochs=3: expected key=value with a dotted key"),
    ("max_concurrent_trials.x=1",
     r"--set max_concurrent_trials.x: max_concurrent_trials must be a mapping to set "
     r"max_concurrent_trials.x"),
    ("train.epochs=[3", r"--set train.epochs: not valid YAML"),
    ("train.extra=[&a [1, 2], *a]", r"--set train.extra: not valid YAML: aliases \(\*a\) are "
     r"not allowed"),
    ("search.depth.type=float", r"--set search.depth.type: search.depth: unknown TrainConfig key"),
    ("search.learning_rate.low=0.1",
     r"--set search.learning_rate.low: search.learning_rate.type: must be one of"),
]


@pytest.mark.parametrize(("override", "match"), BAD_OVERRIDES)
def test_bad_override_names_the_set(override, match):
    refused(SEARCH_SPACES / "generalization.yaml", match, (override,))


# ------------------------------------------------------------------------ finding the file
def test_resolve_looks_in_the_working_directory_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = (SEARCH_SPACES / "smoke.yaml").resolve()
    assert resolve_study_path("smoke") == shipped
    assert resolve_study_path("smoke.yaml") == shipped
    local = write(tmp_path, VALID, "smoke.yaml").resolve()
    assert resolve_study_path("smoke") == local
    assert resolve_study_path("smoke.yaml") == local
    assert resolve_study_path(shipped) == shipped
    assert load_study("smoke").name == "t"
    with pytest.raises(StudyError, match=r"nosuch: no such study file; looked for .*nosuch.yaml"):
        resolve_study_path("nosuch")
    with pytest.raises(StudyError, match=r"generalisation.yaml: no such study file \(did you mean "
                                         r"'generalization.yaml'\?\)"):
        resolve_study_path("generalisation.yaml")
