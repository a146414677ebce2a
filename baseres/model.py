"""The base + residual network: one U-Net encoder, a narrow base decoder, a wide residual decoder.

base = sigmoid(head) * max_depth is the coarse room layout; residual = tanh(head) * max_depth *
residual_range adds detail; final = clamp(base + residual, 0, max_depth). ``model: unet`` keeps
the same encoder with a single decoder as the comparison baseline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baseres.config import TrainConfig

# Inputs beyond this magnitude carry no more information and could overflow in bf16/fp32.
_INPUT_LIMIT = 1e6


class DoubleConv(nn.Sequential):
    """Two 3x3 conv + BN + ReLU, the U-Net stage."""

    def __init__(self, in_ch: int, out_ch: int, mid_ch: int | None = None):
        mid_ch = mid_ch or out_ch
        super().__init__(
            nn.Conv2d(in_ch, mid_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class Encoder(nn.Module):
    """Widths C, 2C, 4C, 8C, 8C with max-pooling between stages; returns skips + bottleneck."""

    def __init__(self, in_ch: int, c: int):
        super().__init__()
        self.widths = [c, 2 * c, 4 * c, 8 * c, 8 * c]
        ins = [in_ch, *self.widths[:-1]]
        self.stages = nn.ModuleList(DoubleConv(i, o) for i, o in zip(ins, self.widths))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else F.max_pool2d(x, 2))
            features.append(x)
        return features


class Decoder(nn.Module):
    """Four bilinear up stages with skip connections and a 1x1 head, output widths
    4C, 2C, C, C divided by ``divisor``.

    ``divisor=1`` is the classic U-Net decoder (mid width = input width / 2): the residual
    decoder, and the seed code's base before its fix, which had the residual decoder's capacity.
    With a larger divisor the bottleneck and every skip are first projected by a 1x1 conv to
    width / divisor and every conv uses mid width = output width, so *every* conv narrows and
    the count falls about as divisor^2 (narrowing only the outputs would leave the wide skip
    inputs, which is how the seed code's base decoder kept 6.3 M parameters at divisor 4).
    """

    def __init__(self, encoder_widths: list[int], divisor: int = 1):
        super().__init__()
        c = encoder_widths[0]
        out_widths = [w // divisor for w in (4 * c, 2 * c, c, c)]
        skips = encoder_widths[3::-1]  # deepest skip first: 8C, 4C, 2C, C
        bottleneck = encoder_widths[4]
        if divisor == 1:  # nothing narrows: no projection
            self.projections = None
            skip_widths, prev = skips, bottleneck
        else:
            skip_widths = [w // divisor for w in skips]
            prev = bottleneck // divisor
            self.projections = nn.ModuleList(
                nn.Conv2d(i, o, 1, bias=False) for i, o in zip([bottleneck, *skips],
                                                               [prev, *skip_widths])
            )
        stages = []
        for skip_w, out_w in zip(skip_widths, out_widths):
            in_w = prev + skip_w
            stages.append(DoubleConv(in_w, out_w, in_w // 2 if divisor == 1 else out_w))
            prev = out_w
        self.stages = nn.ModuleList(stages)
        self.head = nn.Conv2d(prev, 1, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x, skips = features[4], features[3::-1]
        if self.projections is not None:
            x = self.projections[0](x)
            skips = [proj(s) for proj, s in zip(self.projections[1:], skips)]
        for stage, skip in zip(self.stages, skips):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = stage(torch.cat([x, skip], dim=1))
        return self.head(x)


def _count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def _clean(x: torch.Tensor) -> torch.Tensor:
    return torch.nan_to_num(x, nan=0.0).clamp(-_INPUT_LIMIT, _INPUT_LIMIT)


def _set_depth_bias(head: nn.Conv2d, mean_depth: float, max_depth: float) -> None:
    """Start a sigmoid depth head at the data's mean depth instead of max_depth / 2.

    At 0 bias a room averaging 3 m starts 12 m off with max_depth 30, and the residual
    spends its whole range compensating while the base crawls toward the data.
    """
    share = min(max(mean_depth / max_depth, 0.01), 0.99)
    with torch.no_grad():
        head.bias.fill_(float(torch.logit(torch.tensor(share))))


class BaseResidualNet(nn.Module):
    """forward(x) -> {"base", "residual", "final"}, each B x 1 x S x S in metres."""

    def __init__(self, cfg: TrainConfig, in_channels: int = 2):
        super().__init__()
        self.max_depth = float(cfg.max_depth)
        self.residual_range = float(cfg.residual_range)
        self.encoder = Encoder(in_channels, cfg.base_channels)
        self.residual_decoder = Decoder(self.encoder.widths)
        self.base_decoder = Decoder(self.encoder.widths, cfg.base_channel_divisor)
        self.base_frozen = False

    def init_depth_bias(self, mean_depth: float) -> None:
        _set_depth_bias(self.base_decoder.head, mean_depth, self.max_depth)

    def freeze_base(self) -> None:
        """Fix the base decoder: no gradient, no optimiser update, BN statistics kept."""
        self.base_frozen = True
        self.base_decoder.requires_grad_(False)
        self.base_decoder.eval()

    def train(self, mode: bool = True) -> BaseResidualNet:
        super().train(mode)
        if self.base_frozen:
            self.base_decoder.eval()
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.encoder(_clean(x))
        base = torch.sigmoid(self.base_decoder(features).float()) * self.max_depth
        residual = (torch.tanh(self.residual_decoder(features).float())
                    * self.max_depth * self.residual_range)
        # Once the base is fixed the reconstruction loss must not move it (as the seed code has it).
        base_for_final = base.detach() if self.base_frozen else base
        final = torch.clamp(base_for_final + residual, 0.0, self.max_depth)
        return {"base": base, "residual": residual, "final": final}

    def param_counts(self) -> dict[str, int]:
        counts = {
            "encoder": _count(self.encoder),
            "base_decoder": _count(self.base_decoder),
            "residual_decoder": _count(self.residual_decoder),
        }
        counts["total"] = sum(counts.values())
        return counts


class UNet(nn.Module):
    """The comparison baseline: the same encoder, one decoder (the residual decoder's widths),
    final = sigmoid(head) * max_depth. forward(x) -> {"final"}; it has no base to freeze."""

    base_frozen = False

    def __init__(self, cfg: TrainConfig, in_channels: int = 2):
        super().__init__()
        self.max_depth = float(cfg.max_depth)
        self.encoder = Encoder(in_channels, cfg.base_channels)
        self.decoder = Decoder(self.encoder.widths)

    def init_depth_bias(self, mean_depth: float) -> None:
        _set_depth_bias(self.decoder.head, mean_depth, self.max_depth)

    def freeze_base(self) -> None:
        raise TypeError("a plain U-Net has no base decoder to fix")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.encoder(_clean(x))
        return {"final": torch.sigmoid(self.decoder(features).float()) * self.max_depth}

    def param_counts(self) -> dict[str, int]:
        counts = {"encoder": _count(self.encoder), "decoder": _count(self.decoder)}
        counts["total"] = sum(counts.values())
        return counts


MODELS = {"base_residual": BaseResidualNet, "unet": UNet}


def build_model(cfg: TrainConfig) -> BaseResidualNet | UNet:
    return MODELS[cfg.model](cfg)
