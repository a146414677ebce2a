"""Study files: the shipped ones load, and every malformed one is refused with one clear line."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from tune.space import SEARCH_SPACES, Relative, StudyError, load_study, resolve_study_path

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ("generalization", "smoke", "batvision_v2")

HEAD = "name: t\n"
SEARCH = "search:\n  lambda_base: {type: float, low: 0.3, high: 3.0, log: true}\n"
VALID = HEAD + SEARCH
DIVISOR = "search:\n  base_channel_divisor: {type: categorical, choices: [1, 2, 4]}\n"
POINT = "baselines:\n  b: {lambda_base: 1.0, %s}\n"  # a baseline with one extra entry


def write(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def refused(path: Path, match: str, overrides: tuple[str, ...] = ()) -> str:
    """Load, expecting a refusal that matches and is one line naming the file."""
    with pytest.raises(StudyError, match=match) as info:
        load_study(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    assert str(path.resolve()) in message
    return message


# ------------------------------------------------------------------------ shipped studies
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_studies_load(name):
    spec = load_study(name)
    assert spec.name == name and spec.metric == "val_rmse" and spec.mode == "min"
    assert set(spec.baselines) == {"seed_before", "seed_after", "unet"}
    assert spec.num_samples >= len(spec.baselines)
    assert spec.scheduler["max_t"] == spec.trial_config({**spec.baselines["seed_after"]}).epochs
    assert spec.space["base_channel_divisor"] == CategoricalDistribution([1, 2, 4, 8])
    assert spec.space["lambda_base_init"] == FloatDistribution(0.5, 4.0, log=True)
    assert spec.targets["minimum"]["val_rmse"] == (None, Relative(0.85, "seed_before"))
    assert spec.targets["ideal"]["val_rmse"] == (None, Relative(0.70, "seed_before"))
    assert spec.scientific == "base_channel_divisor"
    for point in spec.baselines.values():
        assert spec.trial_config(point).use_adaptive_loss


# The seed's document, value for value (README: "The seed's values and their keys").
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
    assert (gen.num_samples, gen.max_concurrent_trials) == (12, 2)
    assert gen.resources == {"cpu": 1, "gpu": 0}
    assert gen.space["warmup_fraction"] == FloatDistribution(0.05, 0.5)
    assert gen.trial_config(gen.baselines["seed_before"]).warmup_epochs == 1  # 10 % of 12
    assert gen.trial_config(gen.baselines["seed_after"]).warmup_epochs == 3  # 25 % of 12
    assert gen.scheduler == {"type": "asha", "grace_period": 2, "reduction_factor": 3, "max_t": 12}
    assert smoke.num_samples == len(smoke.baselines) + 1
    assert smoke.space == gen.space and smoke.baselines == gen.baselines
    assert smoke.trial_config({"model": "unet"}).image_size == 32
    assert v2.fixed["data_root"] == "/data/BatvisionV2" and v2.resources["gpu"] == 1
    assert v2.trial_config(v2.baselines["seed_after"]).warmup_epochs == 25  # 25 % of 100
    assert v2.trial_config(v2.baselines["seed_before"]).warmup_epochs == 10  # 10 % of 100


def test_baseline_extras_reach_the_trial_config():
    spec = load_study("generalization")
    unet = spec.trial_config(spec.baselines["unet"])
    assert unet.model == "unet" and unet.epochs == 12
    before = spec.trial_config(spec.baselines["seed_before"])
    assert (before.model, before.base_channel_divisor) == ("base_residual", 1)
    assert (before.lambda_base_init, before.lambda_recon_init) == (1.5, 0.5)
    assert before.lowpass_kernel == 4  # 64 px / 16, the seed's share


def test_to_yaml_round_trips(tmp_path):
    spec = load_study("batvision_v2")
    again = load_study(write(tmp_path, spec.to_yaml()))
    assert again == type(spec)(**{**spec.__dict__, "path": again.path})


def test_importing_the_spec_does_not_start_or_import_ray():
    code = "import sys, tune.space; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


# ------------------------------------------------------------------------ malformed studies
BAD = [
    # file and YAML
    ("yaml-tag", "name: !!python/object/apply:os.system ['true']\n" + SEARCH,
     r"not valid YAML: could not determine a constructor for the tag .*python/object"),
    ("yaml-syntax", "name: t\nsearch: [1\nsampler: {}\n", r"not valid YAML: .*\(line 3, column"),
    ("yaml-duplicate-key", VALID + "name: u\n", r"not valid YAML: duplicate key 'name'"),
    ("not-a-mapping", "- name\n- search\n", r"a study must be a mapping at the top level"),
    ("empty-file", "", r"the study file is empty"),
    # top level
    ("unknown-top-key", VALID + "num_sample: 3\n",
     r"num_sample: unknown key \(did you mean 'num_samples'\?\)"),
    ("missing-name", SEARCH, r": name: is required"),
    ("missing-search", HEAD, r": search: is required"),
    ("name-not-a-folder", "name: a/b\n" + SEARCH, r"name: must be a folder name.* got 'a/b'"),
    ("metric", VALID + "metric: val_mae\n", r"metric: must be one of \['val_rmse'\], but got"),
    ("mode", VALID + "mode: max\n", r"mode: must be one of \['min'\], but got 'max'"),
    ("num-samples-zero", VALID + "num_samples: 0\n",
     r"num_samples: `num_samples >= 1` must hold, but got num_samples=0"),
    ("num-samples-huge", VALID + "num_samples: 1000000\n",
     r"num_samples: `num_samples <= 100000` must hold, but got num_samples=1000000"),
    ("num-samples-bool", VALID + "num_samples: true\n",
     r"num_samples: must be an integer, but got True"),
    ("concurrency-text", VALID + "max_concurrent_trials: two\n",
     r"max_concurrent_trials: must be an integer, but got 'two'"),
    ("cpu-negative", VALID + "resources_per_trial: {cpu: -1}\n",
     r"resources_per_trial.cpu: `cpu > 0` must hold, but got cpu=-1"),
    ("gpu-negative", VALID + "resources_per_trial: {gpu: -0.5}\n",
     r"resources_per_trial.gpu: `gpu >= 0` must hold, but got gpu=-0.5"),
    ("gpu-bool", VALID + "resources_per_trial: {gpu: true}\n",
     r"resources_per_trial.gpu: must be a number, but got True"),
    ("resources-unknown", VALID + "resources_per_trial: {memory: 4}\n",
     r"resources_per_trial.memory: unknown key; allowed: cpu, gpu"),
    # data
    ("dataset-unknown", VALID + "data: {dataset: kitti}\n",
     r"data.dataset: must be one of \['synthetic', 'batvisionv2', .*\], but got 'kitti'"),
    ("root-missing", VALID + "data: {dataset: batvisionv2}\n",
     r"data.root: is required for dataset batvisionv2"),
    ("data-unknown", VALID + "data: {path: /x}\n", r"data.path: unknown key"),
    ("locations-not-list", VALID + "data: {locations: Salle}\n",
     r"data.locations: must be a non-empty list, but got 'Salle'"),
    ("locations-v1", VALID + "data: {dataset: batvisionv1, root: /d, locations: [a]}\n",
     r"data.locations: only the BatVision V2 layout"),
    # train
    ("train-unknown", VALID + "train: {lamda_sparse: 0.1}\n",
     r"train.lamda_sparse: unknown TrainConfig key \(did you mean 'lambda_sparse'\?\)"),
    ("train-type", VALID + "train: {epochs: ten}\n",
     r"train.epochs: epochs must be an integer, but got 'ten'"),
    ("train-range", VALID + "train: {epochs: 0}\n", r"train.epochs: epochs must be > 0"),
    ("train-data-key", VALID + "train: {dataset: batvisionv2}\n",
     r"train.dataset: the data set is chosen under `data:`; set data.dataset instead"),
    ("train-out-dir", VALID + "train: {out_dir: /tmp/x}\n", r"train.out_dir: each trial writes"),
    ("train-not-mapping", VALID + "train: [epochs]\n", r"train: must be a mapping"),
    # search
    ("search-empty", HEAD + "search: {}\n", r"search: must name at least one parameter"),
    ("search-unknown-name", HEAD + "search:\n  lamda_base: {type: float, low: 1, high: 2}\n",
     r"search.lamda_base: unknown TrainConfig key \(did you mean 'lambda_base'\?\)"),
    ("fixed-and-searched", VALID + "train: {lambda_base: 1.0}\n",
     r"search.lambda_base: is also fixed in train.lambda_base"),
    ("low-above-high", HEAD + "search:\n  lambda_base: {type: float, low: 3.0, high: 0.3}\n",
     r"search.lambda_base: `low <= high` must hold, but got \(low=3.0, high=0.3\)$"),
    ("log-low-zero", HEAD + "search:\n  lambda_base: {type: float, low: 0, high: 3, log: true}\n",
     r"search.lambda_base: `low > 0` must hold for `log=True`, but got \(low=0"),
    ("step-with-log",
     HEAD + "search:\n  lambda_base: {type: float, low: 0.1, high: 1, log: true, step: 0.1}\n",
     r"search.lambda_base: `step` and `log: true` cannot be combined"),
    ("step-zero", HEAD + "search:\n  lambda_base: {type: float, low: 0.1, high: 1, step: 0}\n",
     r"search.lambda_base: `step > 0` must hold, but got step=0"),
    ("step-off-grid", HEAD + "search:\n  warmup_epochs: {type: int, low: 0, high: 10, step: 3}\n",
     r"search.warmup_epochs.step: `high - low` must be a multiple of `step`.*step=3\)"),
    ("int-bound-fraction", HEAD + "search:\n  warmup_epochs: {type: int, low: 0.5, high: 10}\n",
     r"search.warmup_epochs.low: must be an integer for `type: int`, but got 0.5"),
    ("bound-nan", HEAD + "search:\n  lambda_base: {type: float, low: .nan, high: 1}\n",
     r"search.lambda_base.low: must be finite, but got nan"),
    ("bound-inf", HEAD + "search:\n  lambda_base: {type: float, low: 0.1, high: .inf}\n",
     r"search.lambda_base.high: must be finite, but got inf"),
    ("bound-bool", HEAD + "search:\n  lambda_base: {type: float, low: true, high: 2}\n",
     r"search.lambda_base.low: must be a number, but got True"),
    ("bound-missing", HEAD + "search:\n  lambda_base: {type: float, low: 0.1}\n",
     r"search.lambda_base.high: is required for `type: float`"),
    ("param-type", HEAD + "search:\n  lambda_base: {type: uniform, low: 0.1, high: 1}\n",
     r"search.lambda_base.type: must be one of \['float', 'int', 'categorical'\]"),
    ("param-unknown-key", HEAD + "search:\n  lambda_base: {type: float, lo: 0.1, high: 1}\n",
     r"search.lambda_base.lo: unknown key \(did you mean 'low'\?\); allowed: type, low, high"),
    ("param-log-text", HEAD + "search:\n  lambda_base: {type: float, low: 1, high: 2, log: 'on'}\n",
     r"search.lambda_base.log: must be true or false, but got 'on'"),
    ("param-not-mapping", HEAD + "search:\n  lambda_base: [0.1, 1]\n",
     r"search.lambda_base: must be a mapping like"),
    ("float-for-int-field", HEAD + "search:\n  warmup_epochs: {type: float, low: 0, high: 9}\n",
     r"search.warmup_epochs.type: `type: float` cannot set warmup_epochs, a TrainConfig field "
     r"of type int; use `type: int`"),
    ("int-for-str-field", HEAD + "search:\n  recon_loss: {type: int, low: 0, high: 1}\n",
     r"search.recon_loss.type: `type: int` cannot set recon_loss.*use `type: categorical`"),
    ("choices-empty", HEAD + "search:\n  model: {type: categorical, choices: []}\n",
     r"search.model.choices: The `choices` must contain one or more elements"),
    ("choices-duplicate", HEAD + "search:\n  model: {type: categorical, choices: [unet, unet]}\n",
     r"search.model.choices\[1\]: choices must be distinct, but got 'unet' again"),
    ("choices-not-list", HEAD + "search:\n  model: {type: categorical, choices: unet}\n",
     r"search.model.choices: must be a list, but got 'unet'"),
    ("choice-nested", HEAD + "search:\n  seed: {type: categorical, choices: [[1], 2]}\n",
     r"search.seed.choices\[0\]: must be null, true/false, a number or a string"),
    ("choice-outside-config", HEAD + "search:\n  model: {type: categorical, choices: [cnn]}\n",
     r"search.model.choices\[0\]: model must be one of \['base_residual', 'unet'\], but got 'cnn'"),
    ("choice-breaks-trial",
     HEAD + "train: {base_channels: 8}\n"
     "search:\n  base_channel_divisor: {type: categorical, choices: [1, 16]}\n",
     r"search.base_channel_divisor.choices\[1\]: base_channels must be divisible by "
     r"base_channel_divisor, but got \(base_channels=8, base_channel_divisor=16\)"),
    ("low-bound-breaks-trial", HEAD + "search:\n  residual_range: {type: float, low: 0, high: 1}\n",
     r"search.residual_range.low: residual_range must be > 0 and finite, but got 0.0"),
    # baselines
    ("baseline-out-of-range", VALID + "baselines:\n  b: {lambda_base: 9.0}\n",
     r"baselines.b.lambda_base: must lie in the search space .*'high': 3.0.*, but got 9.0"),
    ("baseline-not-a-choice", HEAD + DIVISOR + "baselines:\n  b: {base_channel_divisor: 8}\n",
     r"baselines.b.base_channel_divisor: must be one of the searched choices \[1, 2, 4\]"),
    ("baseline-bool-choice", HEAD + DIVISOR + "baselines:\n  b: {base_channel_divisor: true}\n",
     r"baselines.b.base_channel_divisor: must be one of the searched choices.*got True"),
    ("baseline-unknown-key", VALID + POINT % "lamda_base_init: 1",
     r"baselines.b.lamda_base_init: unknown TrainConfig key \(did you mean 'lambda_base_init'"),
    ("baseline-partial", VALID + "baselines:\n  b: {seed: 3}\n",
     r"baselines.b: a baseline must set every searched parameter, but misses lambda_base"),
    ("baseline-unet-searched", VALID + POINT % "model: unet",
     r"baselines.b.lambda_base: a unet baseline is its own model and takes no searched "
     r"parameter, but got lambda_base=1.0"),
    ("baseline-bad-extra", VALID + POINT % "model: cnn",
     r"baselines.b.model: model must be one of \['base_residual', 'unet'\], but got 'cnn'"),
    ("baseline-breaks-trial", VALID + "train: {base_channels: 8}\n" + POINT % "base_channels: 10",
     r"baselines.b.base_channels: base_channels must be divisible by base_channel_divisor"),
    ("baseline-fixed-conflict",
     HEAD + "train: {base_channels: 8, model: unet}\n"
     "search:\n  base_channel_divisor: {type: categorical, choices: [1, 16]}\n"
     "baselines:\n  b: {base_channel_divisor: 16, model: base_residual}\n",
     r"baselines.b: base_channels must be divisible .*\(base_channels=8, base_channel_divisor=16"),
    ("baseline-epochs", VALID + POINT % "epochs: 3",
     r"baselines.b.epochs: every trial trains for train.epochs"),
    ("searched-epochs", HEAD + "search:\n  epochs: {type: int, low: 2, high: 9}\n",
     r"search.epochs: every trial trains for train.epochs \(the scheduler's max_t\); fix it"),
    ("baseline-not-mapping", VALID + "baselines:\n  b: [1.0]\n",
     r"baselines.b: must be a mapping, but got \[1.0\]"),
    ("fewer-samples-than-baselines",
     VALID + "num_samples: 1\nbaselines:\n  a: {lambda_base: 1.0}\n  b: {lambda_base: 2.0}\n",
     r"num_samples: `num_samples >= len\(baselines\)` must hold .*\(num_samples=1, baselines=2\)"),
    # sampler and scheduler
    ("sampler-type", VALID + "sampler: {type: cmaes}\n",
     r"sampler.type: must be one of \['tpe', 'random', 'qmc'\], but got 'cmaes'"),
    ("sampler-seed", VALID + "sampler: {seed: -1}\n",
     r"sampler.seed: `seed >= 0` must hold, but got seed=-1"),
    ("scheduler-type", VALID + "scheduler: {type: hyperband}\n",
     r"scheduler.type: must be one of \['asha', 'none'\], but got 'hyperband'"),
    ("grace-zero", VALID + "scheduler: {grace_period: 0}\n",
     r"scheduler.grace_period: `grace_period >= 1` must hold, but got grace_period=0"),
    ("reduction-one", VALID + "scheduler: {reduction_factor: 1}\n",
     r"scheduler.reduction_factor: `reduction_factor > 1` must hold"),
    ("max-t-above-epochs", VALID + "train: {epochs: 12}\nscheduler: {max_t: 50}\n",
     r"scheduler.max_t: `max_t <= train.epochs` must hold, but got \(max_t=50, epochs=12\)"),
    ("grace-above-max-t", VALID + "train: {epochs: 3}\nscheduler: {grace_period: 4}\n",
     r"scheduler.grace_period: `grace_period <= max_t` must hold, but got \(grace_period=4"),
    ("scheduler-unknown", VALID + "scheduler: {type: asha, brackets: 2}\n",
     r"scheduler.brackets: unknown key"),
    # targets
    ("target-relative-unknown",
     VALID + "targets: {ideal: {val_rmse: [null, {times: 0.7, of: x}]}}\n",
     r"targets.ideal.val_rmse\[1\].of: must name a baseline of this study \(none\), but got 'x'"),
    ("target-relative-times", VALID + POINT % "seed: 1" + "targets: {ideal: {val_rmse: "
     "[null, {times: -1, of: b}]}}\n", r"targets.ideal.val_rmse\[1\].times: `times > 0` must "
     r"hold, but got times=-1"),
    ("target-relative-missing", VALID + POINT % "seed: 1" + "targets: {ideal: {val_rmse: "
     "[null, {times: 0.7}]}}\n", r"targets.ideal.val_rmse\[1\].of: is required"),
    ("target-relative-extra", VALID + POINT % "seed: 1" + "targets: {ideal: {val_rmse: "
     "[null, {times: 0.7, of: b, per: 2}]}}\n",
     r"targets.ideal.val_rmse\[1\].per: unknown key; allowed: times, of"),
    ("target-rule-empty", VALID + "targets: {rules: {sparse: ''}}\n",
     r"targets.rules.sparse: must be a sentence, but got ''"),
    ("scientific-unknown", VALID + "scientific: base_channel_divisor\n",
     r"scientific: must name a searched parameter \(lambda_base\), but got "
     r"'base_channel_divisor'"),
    ("target-level", VALID + "targets: {great: {val_rmse: [null, 1]}}\n",
     r"targets.great: unknown key; allowed: minimum, ideal"),
    ("target-low-above-high", VALID + "targets: {ideal: {sparse: [0.3, 0.2]}}\n",
     r"targets.ideal.sparse: `low <= high` must hold, but got \(low=0.3, high=0.2\)"),
    ("target-not-pair", VALID + "targets: {ideal: {sparse: 0.2}}\n",
     r"targets.ideal.sparse: must be \[low, high\] \(null for no bound\), but got 0.2"),
    ("target-unbounded", VALID + "targets: {ideal: {sparse: [null, null]}}\n",
     r"targets.ideal.sparse: needs at least one bound"),
    ("target-bool", VALID + "targets: {ideal: {val_delta1: [true, null]}}\n",
     r"targets.ideal.val_delta1\[0\]: must be a number, but got True"),
]


@pytest.mark.parametrize(("text", "match"), [case[1:] for case in BAD], ids=[c[0] for c in BAD])
def test_malformed_study_is_refused(tmp_path, text, match):
    refused(write(tmp_path, text), match)


def test_the_malformed_table_is_large_and_the_valid_base_loads(tmp_path):
    assert len(BAD) >= 30
    spec = load_study(write(tmp_path, VALID))
    assert spec.num_samples == 10 and spec.scheduler["max_t"] == 40  # TrainConfig's epochs
    assert spec.sampler == {"type": "tpe", "seed": 0}


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
                                         "search.residual_range.high=0.4", "scheduler.type=none"])
    assert spec.fixed["epochs"] == 3 and spec.num_samples == 4
    assert spec.space["residual_range"] == FloatDistribution(0.1, 0.4)
    assert spec.scheduler == {"type": "none"}
    assert load_study("generalization", ["train.epochs=6"]).scheduler["max_t"] == 6
    assert load_study("smoke", ["scheduler={type: none}"]).scheduler == {"type": "none"}
    moved = load_study("smoke", ["data.root=/d", "data.dataset=batvisionv2"])
    assert moved.fixed["data_root"] == "/d"


BAD_OVERRIDES = [
    ("search.residual_range.high=0.05",
     r"--set search.residual_range.high: search.residual_range: `low <= high` must hold, "
     r"but got \(low=0.1, high=0.05\)"),
    ("train.epochs=ten", r"--set train.epochs: epochs must be an integer, but got 'ten'"),
    ("train.epochs=1",
     r"--set train.epochs: scheduler.grace_period: `grace_period <= max_t` must hold"),
    ("train.base_channels=12",
     r"--set train.base_channels: search.base_channel_divisor.choices\[3\]: base_channels must "
     r"be divisible"),
    ("num_samples=2", r"--set num_samples: `num_samples >= len\(baselines\)` must hold"),
    ("nosuch=1", r"--set nosuch: unknown key"),
    ("num_samples", r"--set num_samples: expected key=value"),
    ("train..epochs=3", r"--set train..epochs=3: expected key=value with a dotted key"),
    ("num_samples.x=1", r"--set num_samples.x: num_samples must be a mapping to set num_samples.x"),
    ("train.epochs=[3", r"--set train.epochs: not valid YAML"),
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
