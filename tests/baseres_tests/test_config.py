import pytest
import yaml

from baseres.config import (
    DATASET_PRESETS,
    ConfigError,
    StrictSafeDumper,
    StrictSafeLoader,
    TrainConfig,
)


def test_defaults_are_the_seeds_values_after_its_fix():
    cfg = TrainConfig(dataset="batvisionv2")
    assert (cfg.base_channels, cfg.image_size, cfg.max_depth) == (64, 256, 30.0)
    assert cfg.base_channel_divisor == 4 and cfg.residual_range == 0.3
    assert (cfg.lambda_recon, cfg.lambda_base, cfg.lambda_sparse) == (1.0, 1.2, 0.05)
    assert (cfg.lambda_recon_init, cfg.lambda_base_init, cfg.warmup_epochs) == (0.3, 2.0, 50)
    assert (cfg.optimizer, cfg.learning_rate, cfg.grad_clip) == ("adamw", 1e-3, 1.0)


@pytest.mark.parametrize("dataset", sorted(DATASET_PRESETS))
def test_presets_fill_only_unset_size_knobs(dataset):
    preset = DATASET_PRESETS[dataset]
    cfg = TrainConfig(dataset=dataset)
    assert cfg.base_channels == preset["base_channels"]
    assert cfg.max_depth == preset["max_depth"]
    assert TrainConfig(dataset=dataset, base_channels=32).base_channels == 32


def test_yaml_round_trip_is_exact(tmp_path):
    cfg = TrainConfig(dataset="batvisionv1", locations=["a", "b"], lambda_base=0.7,
                      use_adaptive_loss=True, extra={"note": "x"})
    path = tmp_path / "c.yaml"
    cfg.to_yaml(path)
    again = TrainConfig.from_yaml(path)
    assert again == cfg
    assert again.to_yaml() == cfg.to_yaml()


def test_ints_are_accepted_for_floats_and_whole_floats_for_ints():
    cfg = TrainConfig.from_dict({"learning_rate": 1, "epochs": 3.0})
    assert isinstance(cfg.learning_rate, float) and cfg.epochs == 3


BAD = [
    ({"learing_rate": 0.1}, "unknown key 'learing_rate'"),
    ({"epochs": "ten"}, "epochs must be an integer, but got 'ten'"),
    ({"epochs": 2.5}, "epochs must be an integer, but got 2.5"),
    ({"epochs": True}, "epochs must be an integer, but got True"),
    ({"learning_rate": "fast"}, "learning_rate must be a number"),
    ({"use_adaptive_loss": "yes"}, "use_adaptive_loss must be true or false"),
    ({"model": "resnet"}, "model must be one of"),
    ({"base_channel_divisor": 3}, r"base_channel_divisor must be one of \[1, 2, 4, 8, 16\]"),
    ({"image_size": 40}, "image_size must be a multiple of 16 in"),
    ({"image_size": 512}, "image_size must be a multiple of 16 in"),
    ({"learning_rate": -1.0}, "learning_rate must be > 0"),
    ({"learning_rate": float("inf")}, "learning_rate must be > 0 and finite"),
    ({"lambda_base": float("nan")}, "lambda_base must be >= 0"),
    ({"warmup_epochs": -1}, "warmup_epochs must be >= 0"),
    ({"locations": "Sample_Location"}, "locations must be a list"),
    ({"locations": ["Office_1", "Office_1"]},
     r"locations must name each location once .*, but got \['Office_1'\] more than once"),
    ({"val_locations": ["Hall_3", "Office_3", "Hall_3"]}, "val_locations must name each"),
    ({"base_channels": 12, "base_channel_divisor": 8}, "must be divisible by"),
    ({"dataset": "kitti"}, "dataset must be one of"),
    # the echo window 2 * max_depth / 340 m/s at 44.1 kHz must exceed 256 samples (0.9907 m)
    ({"max_depth": 0.5}, r"max_depth must be >= 0.991 m \(its echo window, .*\), but got 0.5$"),
    ({"max_depth": 0.99}, r"max_depth must be >= 0.991 m .*, but got 0.99$"),
]


@pytest.mark.parametrize("values, message", BAD)
def test_bad_values_raise_naming_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(values)


@pytest.mark.parametrize("text, message", [
    ("epochs: [1\n", "not valid YAML"),
    ("- 1\n- 2\n", "a config must be a mapping"),
    ("!!python/object:os.system {}\n", "not valid YAML"),
    ("epochs: 3\nbogus: 1\n", "unknown key 'bogus'"),
    ("epochs: 3\nepochs: 4\n", "duplicate key 'epochs'"),
    ("extra: {a: &a [1, 2]}\nlocations: *a\n", r"aliases \(\*a\) are not allowed"),
    ("extra: {a: " + "[" * 100_000 + "]" * 100_000 + "}\n",
     r"nesting deeper than 64 levels is not allowed"),
])
def test_bad_yaml_files_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        TrainConfig.from_yaml(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_max_depth_at_its_lower_bound_is_accepted():
    assert TrainConfig(max_depth=0.991).max_depth == 0.991


@pytest.mark.parametrize("text", ["1e5", "true", "null", "0x10", "1_000", "~", "no", "1.5E3"])
def test_the_strict_dumper_quotes_strings_that_read_back_as_other_values(text):
    shared = [text]  # one object twice: safe_dump would write an alias, which is refused
    values = {"experiment_name": text, "extra": {"note": shared, "again": shared}}
    written = yaml.dump(values, Dumper=StrictSafeDumper)
    assert yaml.load(written, Loader=StrictSafeLoader) == values


def test_exponent_floats_read_as_numbers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 1e-3\nweight_decay: 5E-4\n")
    cfg = TrainConfig.from_yaml(path)
    assert (cfg.learning_rate, cfg.weight_decay) == (1e-3, 5e-4)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        TrainConfig.from_yaml(tmp_path / "absent.yaml")


def test_saved_yaml_is_plain_safe_yaml():
    assert yaml.safe_load(TrainConfig().to_yaml())["dataset"] == "synthetic"


@pytest.mark.parametrize("values, inert", [
    ({"model": "unet"}, {"base_channel_divisor", "residual_range", "lambda_base",
                         "lambda_sparse", "use_adaptive_loss", "warmup_epochs",
                         "warmup_fraction", "lambda_recon_init", "lambda_recon_end",
                         "lambda_base_init", "lambda_base_end", "freeze_base"}),
    ({"use_adaptive_loss": True, "warmup_epochs": 3}, {"lambda_recon", "lambda_base"}),
    ({"use_adaptive_loss": False}, {"warmup_epochs", "warmup_fraction", "lambda_recon_init",
                                    "lambda_recon_end", "lambda_base_init", "lambda_base_end",
                                    "freeze_base"}),
    # a curriculum of 0 epochs has no ramp: the constant weights apply (losses.curriculum),
    # and warmup_epochs 0 is what says so
    ({"use_adaptive_loss": True, "warmup_epochs": 0}, {"warmup_fraction", "lambda_recon_init",
                                                       "lambda_recon_end", "lambda_base_init",
                                                       "lambda_base_end", "freeze_base"}),
])
def test_inert_keys_are_those_training_never_reads(values, inert):
    assert set(TrainConfig(**values).inert_keys()) == inert
