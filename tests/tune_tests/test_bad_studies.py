"""Malformed study files: each refused with one line naming the file, the key, the rule and
the value, by load_study and by the tune.run command line before Ray starts."""

import pytest
from helpers import DIVISOR, HEAD, POINT, SEARCH, VALID, refused, write

BAD = [
    # file and YAML
    ("yaml-tag", "name: !!python/object/apply:os.system ['true']\n" + SEARCH,
     r"not valid YAML: could not determine a constructor for the tag .*python/object"),
    ("yaml-syntax", "name: t\nsearch: [1\nsampler: {}\n", r"not valid YAML: .*\(line 3, column"),
    ("yaml-duplicate-key", VALID + "name: u\n", r"not valid YAML: duplicate key 'name'"),
    # a billion laughs: ten lines that expand to 10**9 values once a trial copies its config
    ("yaml-alias-bomb", VALID + "train:\n  extra:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n"
     + "".join(f"    {b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n"
               for a, b in zip("abcdefgh", "bcdefghi")),
     r"not valid YAML: aliases \(\*a\) are not allowed; write the value out \(line 7, column 12\)"),
    ("yaml-alias-cycle", VALID + "train:\n  extra: &e {again: *e}\n",
     r"not valid YAML: aliases \(\*e\) are not allowed"),
    ("yaml-deep", VALID + "train:\n  extra: " + "[" * 200_000 + "]" * 200_000 + "\n",
     r"not valid YAML: nesting deeper than 64 levels is not allowed \(line 5, column 72\)$"),
    ("not-a-mapping", "- name\n- search\n", r"a study must be a mapping at the top level"),
    ("file-too-large", VALID + "# " + "x" * 600_000 + "\n",
     r"a study file must be at most 512 KiB, but it is 586 KiB$"),
    # every value an int range can draw is built: 3, 5, 6 and 7 divide no base_channels 16
    ("int-range-inner-value", HEAD + "search:\n  base_channel_divisor: {type: int, low: 1, "
     "high: 8}\n", r"search\.base_channel_divisor\.value 3: .*base_channel_divisor must be "
     r"one of \[1, 2, 4, 8, 16\], but got 3"),
    ("duplicate-val-location", VALID + "data: {val_locations: [Office_3, Office_3, Hall_3]}\n",
     r"data\.val_locations\[1\]: each location must be named once .* but got 'Office_3' "
     "again"),
    ("duplicate-location", VALID + "data: {locations: [Office_1, Office_1]}\n",
     r"data\.locations\[1\]: each location must be named once"),
    ("wandb-in-a-study", VALID + "train: {use_wandb: true}\n",
     r"train\.use_wandb: a search logs to Weights & Biases with tune\.run --wandb PROJECT"),
    ("empty-file", "", r"the study file is empty"),
    # top level
    ("unknown-top-key", VALID + "num_sample: 3\n",
     r"num_sample: unknown key \(did you mean 'num_samples'\?\)"),
    ("missing-name", SEARCH, r": name: is required"),
    ("missing-search", HEAD, r": search: is required"),
    ("name-not-a-folder", "name: a/b\n" + SEARCH,
     r"name: must be one folder name, without '/', '\\' or NUL, but got 'a/b'$"),
    ("name-too-long", f"name: {'n' * 300}\n" + SEARCH,
     r"name: must be at most 100 characters long \(it names a folder\), but got 'nnn.*nnn' "
     r"\(300 characters\)$"),
    ("name-climbs-out", "name: ..\n" + SEARCH, r"name: must not start with '.' .*, but got '..'$"),
    ("name-hidden", "name: .t\n" + SEARCH, r"name: must not start with '.' .*, but got '.t'$"),
    ("name-empty", "name: ''\n" + SEARCH, r"name: must be a non-empty folder name, but got ''$"),
    ("name-number", "name: 12\n" + SEARCH, r"name: must be a non-empty folder name, but got 12$"),
    ("name-huge-number", f"name: {'9' * 80}\n" + SEARCH,
     r"name: must be a non-empty folder name, but got 9{30}\.\.\.9{30}$"),
    ("name-space", "name: my run\n" + SEARCH, r"name: must start with a letter or digit and use"),
    ("metric", VALID + "metric: val_mae\n", r"metric: must be one of \['val_rmse'\], but got"),
    ("mode", VALID + "mode: max\n", r"mode: must be one of \['min'\], but got 'max'"),
    ("budget-not-a-mapping", VALID + "budget: 100\n", r"budget: must be a mapping"),
    ("budget-empty", VALID + "budget: {}\n",
     r"budget: must set epochs or time_s \(or leave budget out and set num_samples\)"),
    ("budget-unknown-key", VALID + "budget: {epoch: 10}\n", r"budget\.epoch: unknown key"),
    ("budget-epochs-zero", VALID + "budget: {epochs: 0}\n",
     r"budget\.epochs: `epochs >= 1` must hold, but got epochs=0"),
    ("budget-time-negative", VALID + "budget: {time_s: -5}\n",
     r"budget\.time_s: `time_s > 0` must hold, but got time_s=-5"),
    # the baselines run first, each to its full budget (40 epochs, TrainConfig's default)
    ("budget-below-the-baselines", VALID + POINT % "residual_range: 0.3" + "budget: {epochs: 39}\n",
     r"budget\.epochs: `epochs >= baselines x max_t` must hold .*\(epochs=39, baselines=1, "
     r"max_t=40\)"),
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
    ("max-depth-under-the-stft", VALID + "train: {max_depth: 0.5}\n",
     r"train.max_depth: max_depth must be >= 0.991 m \(its echo window, .* must exceed the "
     r"STFT's n_fft / 2 = 256 samples\), but got 0.5$"),
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
    ("sampler-startup-negative", VALID + "sampler: {type: tpe, n_startup_trials: -1}\n",
     r"sampler.n_startup_trials: `n_startup_trials >= 0` must hold, but got n_startup_trials=-1"),
    ("sampler-startup-float", VALID + "sampler: {type: tpe, n_startup_trials: 2.5}\n",
     r"sampler.n_startup_trials: must be an integer, but got 2.5"),
    ("sampler-multivariate", VALID + "sampler: {type: tpe, multivariate: 1}\n",
     r"sampler.multivariate: must be true or false, but got 1"),
    ("sampler-liar", VALID + "sampler: {type: tpe, constant_liar: 'no'}\n",
     r"sampler.constant_liar: must be true or false, but got 'no'"),
    ("sampler-tpe-key-on-random", VALID + "sampler: {type: random, multivariate: true}\n",
     r"sampler.multivariate: is a key of TPE's, but sampler.type is 'random'"),
    ("sampler-tpe-key-on-the-default", VALID + "sampler: {n_startup_trials: 3}\n",
     r"sampler.n_startup_trials: is a key of TPE's, but sampler.type is 'random' \(the "
     r"default\)$"),
    ("sampler-constraints-without-targets", VALID + "sampler: {type: tpe, constraints: true}\n",
     r"sampler.constraints: needs targets.minimum \(the constraints are its bounds\)"),
    ("sampler-unknown", VALID + "sampler: {n_startup: 3}\n",
     r"sampler.n_startup: unknown key \(did you mean 'n_startup_trials'\?\)"),
    ("scheduler-type", VALID + "scheduler: {type: hyperband}\n",
     r"scheduler.type: must be one of \['asha', 'none'\], but got 'hyperband'"),
    ("grace-zero", VALID + "scheduler: {grace_period: 0}\n",
     r"scheduler.grace_period: `grace_period >= 1` must hold, but got grace_period=0"),
    ("reduction-one", VALID + "scheduler: {reduction_factor: 1}\n",
     r"scheduler.reduction_factor: `reduction_factor > 1` must hold"),
    # ln(40) / ln(1.0000001) + 1 = 36,888,797 rungs: Ray's ASHA would hold each (1.9 GB)
    ("reduction-near-one", VALID + "scheduler: {reduction_factor: 1.0000001}\n",
     r"scheduler.reduction_factor: `rungs <= max_t - grace_period \+ 1` must hold \(ASHA's "
     r"rungs, .*\), but got \(rungs=36888797, reduction_factor=1.0000001, grace_period=1, "
     r"max_t=40\)$"),
    ("reduction-finer-than-epochs", VALID + "train: {epochs: 3}\nscheduler: {reduction_factor: "
     "1.2}\n", r"scheduler.reduction_factor: .*\(rungs=7, reduction_factor=1.2, grace_period=1, "
     r"max_t=3\)$"),
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


@pytest.mark.parametrize("case", BAD, ids=lambda case: case[0])
def test_malformed_study_files_are_refused_by_the_cli_before_ray(case, tmp_path, capsys,
                                                                   monkeypatch):
    import time

    from tune.run import main

    name, text, _ = case

    def no_ray(*args):
        raise AssertionError("Ray must not start for a malformed study")

    monkeypatch.setattr("tune.run.start_ray", no_ray)
    study = tmp_path / f"{name}.yaml"
    study.write_text(text)
    start = time.perf_counter()
    assert main(["--space", str(study), "--storage", str(tmp_path / "results")]) == 2
    assert time.perf_counter() - start < 10
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert str(study) in err
    assert not (tmp_path / "results").exists()  # nothing written
