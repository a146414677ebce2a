"""Every training knob in one dataclass, with YAML round-tripping and strict validation.

Size knobs left at ``None`` resolve to the data set's preset when the config is built, so
``TrainConfig()`` trains a CPU-sized model on the embedded synthetic set while
``TrainConfig(dataset="batvisionv2")`` is the seed's full-size model. The resolved values are
what gets saved, so a saved config always reproduces the run exactly.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DATASETS = ("synthetic", "batvisionv2", "batvisionv1")
# Per-data-set defaults for the knobs left at None: (base_channels, image_size, max_depth).
# BatVision values are the seed's; the synthetic preset is sized for 2 CPU cores, and its
# max_depth is the synthetic depth camera's range.
DATASET_PRESETS = {
    "synthetic": {"base_channels": 16, "image_size": 64, "max_depth": 12.0},
    "batvisionv2": {"base_channels": 64, "image_size": 256, "max_depth": 30.0},
    "batvisionv1": {"base_channels": 64, "image_size": 256, "max_depth": 12.0},
}

CHOICES = {
    "model": ("base_residual", "unet"),
    "base_channel_divisor": (1, 2, 4, 8, 16),
    "recon_loss": ("l1", "silog"),
    "optimizer": ("adamw", "adam", "sgd"),
    "lr_schedule": ("cosine", "constant"),
    "dataset": DATASETS,
    "audio_format": ("spectrogram", "log_spectrogram", "mel"),
    "precision": ("fp32", "bf16"),
    "device": ("auto", "cpu", "cuda"),
}


class StrictSafeLoader(yaml.SafeLoader):
    """yaml.safe_load's loader (so tags such as !!python/object stay refused), plus two fixes.

    Duplicate keys are refused: PyYAML silently keeps the last one, which would hide a
    searched parameter written twice. And ``1e-3`` is read as a number, as YAML 1.2 and
    every user expect, where YAML 1.1 makes it a string.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


StrictSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class ConfigError(ValueError):
    """A config key is unknown, of the wrong type, or out of its allowed range."""


@dataclass
class TrainConfig:
    # --- model ---
    model: str = "base_residual"  # base_residual (two decoders) | unet (one decoder, baseline)
    base_channels: int | None = None  # encoder width C (widths C,2C,4C,8C,8C); None = preset
    base_channel_divisor: int = 4  # base decoder widths 8C,4C,2C,C divided by this
    residual_range: float = 0.3  # residual = tanh(.) * max_depth * residual_range
    max_depth: float | None = None  # metres; depth clipped here (None = preset: V2 30, else 12)
    # --- loss ---
    recon_loss: str = "l1"  # reconstruction term: l1 | silog
    silog_lambda: float = 0.5  # variance weight of the SI-log loss
    lambda_recon: float = 1.0  # recon weight without the curriculum (and the U-Net's always)
    lambda_base: float = 1.2  # base-vs-lowpass weight without the curriculum
    lambda_sparse: float = 0.05  # weight of mean |residual|, constant under the curriculum too
    lowpass_kernel: int | None = None  # window of the base's low-passed target; None = S / 16
    # --- curriculum ---
    use_adaptive_loss: bool = False  # ramp weights over warmup, then fix the base decoder
    warmup_epochs: int = 50  # epochs of the ramp; from this epoch on the base is frozen
    warmup_fraction: float | None = None  # warmup as a share of epochs; set, decides warmup_epochs
    lambda_recon_init: float = 0.3  # curriculum: recon weight at epoch 0
    lambda_recon_end: float = 1.0  # curriculum: recon weight at the end of warmup and after
    lambda_base_init: float = 2.0  # curriculum: base weight at epoch 0
    lambda_base_end: float = 0.3  # curriculum: base weight at the end of warmup and after
    # --- optimiser ---
    optimizer: str = "adamw"  # adamw | adam | sgd (momentum 0.9)
    learning_rate: float = 1e-3  # peak learning rate
    lr_schedule: str = "cosine"  # cosine (decay to 0 over the epochs, per epoch) | constant
    weight_decay: float = 0.01  # decoupled for adamw, L2 otherwise
    grad_clip: float = 1.0  # max global gradient norm (0 = no clipping)
    # --- data ---
    dataset: str = "synthetic"  # synthetic | batvisionv2 | batvisionv1
    data_root: str | None = None  # data set folder; None = the generated synthetic set
    locations: list[str] | None = None  # BatVision V2 location folders to use; None = all
    val_locations: list[str] | None = None  # held-out places: val = all their samples
    test_locations: list[str] | None = None  # held-out places: test = all their samples
    audio_format: str = "log_spectrogram"  # spectrogram | log_spectrogram | mel
    image_size: int | None = None  # S: inputs and depth resized to S x S (None = preset)
    skip_bad_samples: bool = False  # warn about and skip unreadable samples instead of failing
    # --- schedule ---
    epochs: int = 40  # training epochs
    batch_size: int = 32  # samples per optimiser step
    bn_recalibration_samples: int = 256  # train samples that re-estimate BN statistics before val
    seed: int = 0  # seeds torch, numpy and the data order
    # --- hardware ---
    device: str = "auto"  # auto (cuda when present) | cpu | cuda
    precision: str = "bf16"  # bf16 autocast or fp32
    channels_last: bool = True  # NHWC tensors: faster convolutions on CPU (bench/RESULTS.md)
    num_threads: int = 0  # torch intra-op threads; 0 = leave torch's default
    # --- logging ---
    experiment_name: str = "baseres"  # run name; default output folder results/train/<name>
    out_dir: str | None = None  # where config, metrics, checkpoints, events go
    image_every: int = 5  # epochs between TensorBoard image panels (0 = never)
    progress: bool = True  # per-epoch progress bar when attached to a terminal
    use_wandb: bool = False  # also log to Weights & Biases (needs the wandb package)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes saved with the run

    def __post_init__(self) -> None:
        if self.dataset in DATASET_PRESETS:
            for key, value in DATASET_PRESETS[self.dataset].items():
                if getattr(self, key) is None:
                    setattr(self, key, value)
        if self.lowpass_kernel is None and isinstance(self.image_size, int):
            # The seed's share: 16 px at 256 px. A fixed 16 at 64 px would blur a quarter of
            # the image, and no base could then leave a sparse residual.
            self.lowpass_kernel = max(1, self.image_size // 16)
        self._validate()
        if self.warmup_fraction is not None:
            # At least one epoch, so a short run with a nonzero share still has a curriculum.
            share = self.warmup_fraction * self.epochs
            self.warmup_epochs = max(1, math.floor(share + 0.5)) if share > 0 else 0

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a mapping; unknown keys and wrong types raise ConfigError naming the key."""
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: a config must be a mapping, but got {values!r}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        checked = {}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(
                    f"{source}: unknown key {key!r}; known keys: {', '.join(sorted(known))}"
                )
            checked[key] = _coerce(f"{source}: {key}", value, hints[key])
        try:
            return cls(**checked)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as err:
            raise ConfigError(f"{path}: cannot read config: {err.strerror}") from None
        try:
            values = yaml.load(text, Loader=StrictSafeLoader)  # safe_load's guarantees
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {one_line(str(err))}") from None
        return cls.from_dict(values if values is not None else {}, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | Path | None = None, header: str = "") -> str:
        text = header + yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy with some keys changed (types checked like from_dict)."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    # ---------------------------------------------------------------- validation
    def _validate(self) -> None:
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(
                    f"{key} must be one of {list(allowed)}, but got {getattr(self, key)!r}"
                )
        size = self.image_size
        if size is None or not (32 <= size <= 256 and size % 16 == 0):
            raise ConfigError(f"image_size must be a multiple of 16 in [32, 256], but got {size!r}")
        positive = ("base_channels", "max_depth", "learning_rate", "epochs", "batch_size",
                    "lowpass_kernel", "residual_range")
        for key in positive:
            value = getattr(self, key)
            if value is None or not value > 0 or (isinstance(value, float) and math.isinf(value)):
                raise ConfigError(f"{key} must be > 0 and finite, but got {value!r}")
        non_negative = ("silog_lambda", "lambda_recon", "lambda_base", "lambda_sparse",
                        "lambda_recon_init", "lambda_base_init", "lambda_recon_end",
                        "lambda_base_end", "warmup_epochs", "weight_decay",
                        "grad_clip", "num_threads", "image_every", "bn_recalibration_samples")
        for key in non_negative:
            value = getattr(self, key)
            if not value >= 0 or (isinstance(value, float) and math.isinf(value)):
                raise ConfigError(f"{key} must be >= 0 and finite, but got {value!r}")
        if self.warmup_fraction is not None and not 0 <= self.warmup_fraction <= 1:
            raise ConfigError(f"warmup_fraction must be in [0, 1] (or null), but got "
                              f"{self.warmup_fraction!r}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be in [0, 2**32), but got {self.seed}")
        for key in ("locations", "val_locations", "test_locations"):
            if getattr(self, key) is not None and not getattr(self, key):
                raise ConfigError(f"{key} must name at least one location (or be null), "
                                  "but got []")
        both = set(self.val_locations or ()) & set(self.test_locations or ())
        if both:
            raise ConfigError("val_locations and test_locations must not share a location, but "
                              f"both name {sorted(both)}")
        if self.model == "base_residual" and self.base_channels % self.base_channel_divisor:
            raise ConfigError(
                "base_channels must be divisible by base_channel_divisor, but got "
                f"(base_channels={self.base_channels}, "
                f"base_channel_divisor={self.base_channel_divisor})"
            )

    # ---------------------------------------------------------------- helpers
    @property
    def resolved_out_dir(self) -> Path:
        return Path(self.out_dir or Path("results") / "train" / self.experiment_name)


def one_line(text: str) -> str:
    """Any message as a single line (YAML errors span several)."""
    return " ".join(text.split())


def _coerce(where: str, value: Any, hint: Any) -> Any:
    """Check `value` against a field's annotation; ints are accepted for floats."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(where, value, option)
            except ConfigError as err:
                errors.append(err)
        raise errors[0]
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, but got {value!r}")
        (item,) = typing.get_args(hint)
        return [_coerce(f"{where}[{i}]", v, item) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, but got {value!r}")
        return dict(value)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where} must be a number, but got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where} must be an integer, but got {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false, but got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where} must be a string, but got {value!r}")
    return value


def config_fields() -> dict[str, Any]:
    """Field name -> type annotation; the study-file validator checks searched names here."""
    return typing.get_type_hints(TrainConfig)
