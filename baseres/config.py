"""Every training knob in one dataclass, with YAML round-tripping and strict validation.

Size knobs left at ``None`` resolve to the data set's preset when the config is built, so
``TrainConfig()`` trains a CPU-sized model on the embedded synthetic set while
``TrainConfig(dataset="batvisionv2")`` is the seed code's full-size model. The resolved values are
what gets saved, so a saved config always reproduces the run exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from baseres.errors import UserError

DATASETS = ("synthetic", "batvisionv2", "batvisionv1")
# Per-data-set defaults for the knobs left at None: (base_channels, image_size, max_depth).
# BatVision values are the seed code's; the synthetic preset is sized for 2 CPU cores, and its
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


# What only a base + residual model reads, and what only its curriculum reads.
BASE_KEYS = ("base_channel_divisor", "residual_range", "lambda_base", "lambda_sparse")
CURRICULUM_KEYS = ("warmup_epochs", "warmup_fraction", "lambda_recon_init", "lambda_recon_end",
                   "lambda_base_init", "lambda_base_end", "freeze_base")

MAX_YAML_DEPTH = 64  # nesting levels; Python's recursion limit is met near 1000 / 3
# The features keep the echoes from within max_depth: the first 2 * max_depth / 340 m/s of
# audio at 44.1 kHz. The centred STFT (n_fft 512, baseres.data.features) pads by n_fft / 2
# from that window itself, so it must hold more than 256 samples: max_depth >= 0.9907 m.
MIN_MAX_DEPTH = 0.991  # metres; a test pins it to FeatureSettings


class StrictSafeLoader(yaml.SafeLoader):
    """yaml.safe_load's loader (so tags such as !!python/object stay refused), plus four fixes.

    Duplicate keys are refused: PyYAML silently keeps the last one, which would hide a
    searched parameter written twice. ``1e-3`` is read as a number, as YAML 1.2 and
    every user expect, where YAML 1.1 makes it a string. Aliases (``*name``) are refused: a
    few lines of them expand to billions of values (or to a cycle) once a config is copied.
    And nesting is limited, so a deep document is one error rather than a RecursionError.
    """

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{event.anchor}) are not allowed; write the value out",
                event.start_mark)
        if self.depth >= MAX_YAML_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nesting deeper than {MAX_YAML_DEPTH} levels is not allowed",
                event.start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

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


class StrictSafeDumper(yaml.SafeDumper):
    """yaml.safe_dump's dumper whose output StrictSafeLoader reads back equal: it quotes every
    string that loader would read as something else (``"1e5"``), and writes a value used twice
    out twice rather than as an alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


for _yaml_class in (StrictSafeLoader, StrictSafeDumper):
    _yaml_class.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )


def knob(default: Any, help: str) -> Any:
    """A TrainConfig field with its one-line --help text (baseres.train builds its flags from
    these)."""
    return field(default=default, metadata={"help": help})


class ConfigError(UserError):
    """A config key is unknown, of the wrong type, or out of its allowed range."""

    @classmethod
    def refused(cls, key: str, rule: str, value: Any, why: str = "",
                got: str | None = None) -> ConfigError:
        """`key` breaks `rule` (e.g. "must be > 0"), which is written once: the message is
        "<key> <rule><why>, but got <got>" (`got`: repr(value) unless given), and key, rule
        and value travel as fields."""
        return cls(f"{key} {rule}{why}, but got {repr(value) if got is None else got}", key,
                   rule, value)


@dataclass
class TrainConfig:
    # --- model ---
    model: str = knob("base_residual",
                      "base_residual (two decoders) | unet (one decoder, baseline)")
    base_channels: int | None = knob(None, "encoder width C (widths C,2C,4C,8C,8C); None = preset")
    base_channel_divisor: int = knob(4, "base decoder widths 8C,4C,2C,C divided by this")
    residual_range: float = knob(0.3, "residual = tanh(.) * max_depth * residual_range")
    max_depth: float | None = knob(None,
                                   "metres; depth clipped here (None = preset: V2 30, else 12)")
    # --- loss ---
    recon_loss: str = knob("l1", "reconstruction term: l1 | silog")
    silog_lambda: float = knob(0.5, "variance weight of the SI-log loss")
    lambda_recon: float = knob(1.0, "recon weight without the curriculum (and the U-Net's always)")
    lambda_base: float = knob(1.2, "base-vs-lowpass weight without the curriculum")
    lambda_sparse: float = knob(0.05,
                                "weight of mean |residual|, constant under the curriculum too")
    lowpass_kernel: int | None = knob(None, "window of the base's low-passed target; None = S / 16")
    # --- curriculum ---
    use_adaptive_loss: bool = knob(False, "ramp weights over warmup, then fix the base decoder")
    warmup_epochs: int = knob(50, "epochs of the ramp; from this epoch on the base is frozen")
    warmup_fraction: float | None = knob(None,
                                         "warmup as a share of epochs; set, decides warmup_epochs")
    lambda_recon_init: float = knob(0.3, "curriculum: recon weight at epoch 0")
    lambda_recon_end: float = knob(1.0, "curriculum: recon weight at the end of warmup and after")
    lambda_base_init: float = knob(2.0, "curriculum: base weight at epoch 0")
    lambda_base_end: float = knob(0.3, "curriculum: base weight at the end of warmup and after")
    freeze_base: bool = knob(True, "curriculum: fix the base decoder after warmup (false: the "
                                   "ramp alone, the base keeps learning)")
    # --- optimiser ---
    optimizer: str = knob("adamw", "adamw | adam | sgd (momentum 0.9)")
    learning_rate: float = knob(1e-3, "peak learning rate")
    lr_schedule: str = knob("cosine", "cosine (decay to 0 over the epochs, per epoch) | constant")
    weight_decay: float = knob(0.01, "decoupled for adamw, L2 otherwise")
    grad_clip: float = knob(1.0, "max global gradient norm (0 = no clipping)")
    # --- data ---
    dataset: str = knob("synthetic", "synthetic | batvisionv2 | batvisionv1")
    data_root: str | None = knob(None, "data set folder; None = the generated synthetic set")
    locations: list[str] | None = knob(None, "BatVision V2 location folders to use; None = all")
    val_locations: list[str] | None = knob(None, "held-out places: val = all their samples")
    test_locations: list[str] | None = knob(None, "held-out places: test = all their samples")
    audio_format: str = knob("log_spectrogram", "spectrogram | log_spectrogram | mel")
    image_size: int | None = knob(None, "S: inputs and depth resized to S x S (None = preset)")
    skip_bad_samples: bool = knob(False,
                                  "warn about and skip unreadable samples instead of failing")
    # --- schedule ---
    epochs: int = knob(40, "training epochs")
    batch_size: int = knob(32, "samples per optimiser step")
    bn_recalibration_samples: int = knob(256,
                                         "train samples that re-estimate BN statistics before val")
    seed: int = knob(0, "seeds torch, numpy and the data order")
    # --- hardware ---
    device: str = knob("auto", "auto (cuda when present) | cpu | cuda")
    precision: str = knob("bf16", "bf16 autocast or fp32")
    channels_last: bool = knob(True, "NHWC tensors: faster convolutions on CPU (bench/RESULTS.md)")
    num_threads: int = knob(0, "torch intra-op threads; 0 = leave torch's default")
    # --- logging ---
    experiment_name: str = knob("baseres", "run name; default output folder results/train/<name>")
    out_dir: str | None = knob(None, "where config, metrics, checkpoints, events go")
    image_every: int = knob(5, "epochs between TensorBoard image panels (0 = never)")
    progress: bool = knob(True, "per-epoch progress bar when attached to a terminal")
    use_wandb: bool = knob(False, "also log to Weights & Biases (needs the wandb package)")
    extra: dict[str, Any] = field(default_factory=dict,
                                  metadata={"help": "free-form notes saved with the run"})
    def __post_init__(self) -> None:
        if self.dataset in DATASET_PRESETS:
            for key, value in DATASET_PRESETS[self.dataset].items():
                if getattr(self, key) is None:
                    setattr(self, key, value)
        if self.lowpass_kernel is None and isinstance(self.image_size, int):
            # The seed code's share: 16 px at 256 px. A fixed 16 at 64 px would blur a quarter of
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
        hints = config_fields()
        checked = {}
        for key, value in values.items():
            if key not in hints:
                raise ConfigError(
                    f"{source}: unknown key {key!r}; known keys: {', '.join(sorted(hints))}",
                    key, "must be a TrainConfig field", key)
            try:
                checked[key] = _coerce(key, value, hints[key])
            except ConfigError as err:
                raise ConfigError(f"{source}: {err}", key, err.rule, value) from None
        try:
            return cls(**checked)
        except ConfigError as err:  # the field at fault travels with the message
            raise ConfigError(f"{source}: {err}", err.key, err.rule, err.value) from None

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

    def to_yaml(self, path: str | Path | None = None, header: str = "",
                without: tuple[str, ...] = ()) -> str:
        values = {k: v for k, v in self.to_dict().items() if k not in without}
        text = header + yaml.safe_dump(values, sort_keys=False)
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
                raise ConfigError.refused(key, f"must be one of {list(allowed)}",
                                          getattr(self, key))
        size = self.image_size
        if size is None or not (32 <= size <= 256 and size % 16 == 0):
            raise ConfigError.refused("image_size", "must be a multiple of 16 in [32, 256]", size)
        positive = ("base_channels", "max_depth", "learning_rate", "epochs", "batch_size",
                    "lowpass_kernel", "residual_range")
        for key in positive:
            value = getattr(self, key)
            if value is None or not value > 0 or (isinstance(value, float) and math.isinf(value)):
                raise ConfigError.refused(key, "must be > 0 and finite", value)
        if self.max_depth < MIN_MAX_DEPTH:
            raise ConfigError.refused("max_depth", f"must be >= {MIN_MAX_DEPTH}", self.max_depth,
                                      " m (its echo window, 2 * max_depth / 340 m/s at 44.1 kHz, "
                                      "must exceed the STFT's n_fft / 2 = 256 samples)")
        non_negative = ("silog_lambda", "lambda_recon", "lambda_base", "lambda_sparse",
                        "lambda_recon_init", "lambda_base_init", "lambda_recon_end",
                        "lambda_base_end", "warmup_epochs", "weight_decay",
                        "grad_clip", "num_threads", "image_every", "bn_recalibration_samples")
        for key in non_negative:
            value = getattr(self, key)
            if not value >= 0 or (isinstance(value, float) and math.isinf(value)):
                raise ConfigError.refused(key, "must be >= 0 and finite", value)
        if self.warmup_fraction is not None and not 0 <= self.warmup_fraction <= 1:
            raise ConfigError.refused("warmup_fraction", "must be in [0, 1] (or null)",
                                      self.warmup_fraction)
        if not 0 <= self.seed < 2**32:
            raise ConfigError.refused("seed", "must be in [0, 2**32)", self.seed,
                                      got=str(self.seed))  # a numpy int shown as its number
        for key in ("locations", "val_locations", "test_locations"):
            names = getattr(self, key)
            if names is not None and not names:
                raise ConfigError.refused(key, "must name at least one location", [],
                                          " (or be null)")
            twice = sorted({n for i, n in enumerate(names or ()) if n in names[:i]})
            if twice:
                raise ConfigError.refused(
                    key, "must name each location once (twice counts its samples twice)", twice,
                    got=f"{twice} more than once")
        both = set(self.val_locations or ()) & set(self.test_locations or ())
        if both:
            rule = "must not share a location"  # the message says it of both keys
            raise ConfigError(f"val_locations and test_locations {rule}, but both name "
                              f"{sorted(both)}", "val_locations", f"{rule} with test_locations",
                              sorted(both))
        if self.model == "base_residual" and self.base_channels % self.base_channel_divisor:
            raise ConfigError.refused(
                "base_channels", "must be divisible by base_channel_divisor", self.base_channels,
                got=f"(base_channels={self.base_channels}, "
                    f"base_channel_divisor={self.base_channel_divisor})")

    # ---------------------------------------------------------------- helpers
    def inert_keys(self) -> tuple[str, ...]:
        """The keys that change nothing in this config's training (losses.curriculum): a
        U-Net has no base, residual or curriculum; the curriculum's ramp replaces the constant
        recon and base weights; without it the ramp's keys are unused."""
        if self.model == "unet":
            return (*BASE_KEYS, *CURRICULUM_KEYS, "use_adaptive_loss")
        if not self.use_adaptive_loss:
            return CURRICULUM_KEYS
        if self.warmup_epochs > 0:
            return ("lambda_recon", "lambda_base")
        return CURRICULUM_KEYS[1:]  # warmup_epochs 0 is what turns the ramp off: kept

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
            raise ConfigError.refused(where, "must be a list", value)
        (item,) = typing.get_args(hint)
        return [_coerce(f"{where}[{i}]", v, item) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError.refused(where, "must be a mapping", value)
        return dict(value)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError.refused(where, "must be a number", value)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError.refused(where, "must be an integer", value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError.refused(where, "must be true or false", value)
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError.refused(where, "must be a string", value)
    return value


@functools.cache
def config_fields() -> Mapping[str, Any]:
    """Field name -> annotation, in order: read by from_dict, baseres.train's flags, the study."""
    return types.MappingProxyType(typing.get_type_hints(TrainConfig))


def field_types(hint: Any) -> tuple[Any, ...]:
    """The classes an annotation admits, in order: ``list[str] | None`` -> (list, NoneType)."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    return tuple(typing.get_origin(t) or t for t in (typing.get_args(hint) if union else (hint,)))
