"""Colour maps for depth and residual, and the base | residual | final | ground-truth panel."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps


def colorize(values: np.ndarray, low: float, high: float, cmap: str,
             invalid: np.ndarray | None = None) -> np.ndarray:
    """H x W values -> H x W x 3 uint8; invalid pixels are drawn black."""
    scaled = np.clip((values - low) / max(high - low, 1e-8), 0.0, 1.0)
    rgb = (colormaps[cmap](scaled)[..., :3] * 255).astype(np.uint8)
    if invalid is not None:
        rgb[invalid] = 0
    return rgb


def decomposition_panel(outputs: dict[str, torch.Tensor], gt: torch.Tensor, max_depth: float,
                        residual_limit: float, rows: int = 4) -> np.ndarray:
    """Rows of [base | residual | final | ground truth] for the first `rows` samples, HWC uint8
    ([final | ground truth] for a model without a base).

    Depth maps share one scale (0..max_depth) so base, final and truth compare by eye; the
    residual uses a diverging map centred on 0 (blue: nearer than the base, red: farther).
    """
    lines = []
    limit = max(residual_limit, 1e-3)
    for i in range(min(rows, gt.shape[0])):
        truth = gt[i, 0].detach().float().cpu().numpy()

        def tile(key: str, i: int = i) -> np.ndarray:
            return outputs[key][i, 0].detach().float().cpu().numpy()

        tiles = []
        if "base" in outputs:  # a plain U-Net has only its final map
            tiles += [colorize(tile("base"), 0, max_depth, "magma"),
                      colorize(tile("residual"), -limit, limit, "RdBu_r")]
        tiles += [colorize(tile("final"), 0, max_depth, "magma"),
                  colorize(truth, 0, max_depth, "magma", invalid=truth <= 0)]
        lines.append(np.concatenate(tiles, axis=1))
    return np.concatenate(lines, axis=0)
