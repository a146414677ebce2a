"""The titled truth | final | base | residual panel."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps

DEPTH_CMAP = "magma"  # perceptually uniform: equal steps in depth read as equal steps in colour
RESIDUAL_CMAP = "RdBu_r"  # diverging, white at 0: blue nearer than the base, red farther
TILE_PX = 256  # each depth map is drawn this large, whatever the model's image size
_DPI = 100


def residual_scale(residual: np.ndarray, limit: float) -> float:
    """Half-width of the residual's symmetric colour scale: its largest magnitude in the panel
    (so a small residual still shows), at most the model's `limit`, at least 1 cm."""
    return float(min(max(np.abs(residual).max(initial=0.0), 0.01), max(limit, 0.01)))


def decomposition_panel(outputs: dict[str, torch.Tensor], gt: torch.Tensor, max_depth: float,
                        residual_limit: float, rows: int = 4) -> np.ndarray:
    """Rows of [ground truth | final | base | residual] for the first `rows` samples, as an
    HWC uint8 image with titled columns and colour bars ([ground truth | final] for a model
    without a base).

    Depth tiles share one scale (0..max_depth, one colour bar) so truth, final and base compare
    by eye; ground truth without a depth reading is grey. The residual has its own diverging
    scale centred on 0 and its own bar. Tiles are drawn TILE_PX wide, pixels kept square and sharp.
    """
    from matplotlib.figure import Figure

    count = min(rows, gt.shape[0])

    def maps(key: str) -> np.ndarray:
        return outputs[key][:count, 0].detach().float().cpu().numpy()

    truth = gt[:count, 0].detach().float().cpu().numpy()
    depth_columns = [("ground truth (grey: none)", np.ma.masked_less_equal(truth, 0)),
                     ("final", maps("final"))]
    has_base = "base" in outputs  # a plain U-Net has only its final map
    if has_base:
        depth_columns.append(("base", maps("base")))
        residual = maps("residual")
    bar = 0.12  # a colour bar's width, in tiles
    gap = 0.35  # room for the depth bar's labels before the residual column
    ratios = [1.0] * len(depth_columns) + [bar] + ([gap, 1.0, bar] if has_base else [])
    # Figure size from the tile size: gridspec spaces are fractions of the mean cell.
    tile_in, wspace, hspace = TILE_PX / _DPI, 0.08, 0.04
    title_in, margin_in, right_in = 0.4, 0.1, 0.8  # inches: titles, edges, the last bar's labels
    width = tile_in * (sum(ratios) + wspace * sum(ratios) / len(ratios) * (len(ratios) - 1))
    height = tile_in * (count + hspace * (count - 1))
    fig = Figure(figsize=(width + margin_in + right_in, height + title_in + margin_in), dpi=_DPI)
    grid = fig.add_gridspec(count, len(ratios), width_ratios=ratios, wspace=wspace,
                            hspace=hspace, left=margin_in / fig.get_figwidth(),
                            right=1 - right_in / fig.get_figwidth(),
                            top=1 - title_in / fig.get_figheight(),
                            bottom=margin_in / fig.get_figheight())
    depth_cmap = colormaps[DEPTH_CMAP].with_extremes(bad="0.75")  # magma's 0 m is black
    scale = residual_scale(residual, residual_limit) if has_base else 0.0
    for row in range(count):
        for col, (title, values) in enumerate(depth_columns):
            depth_image = _tile(fig, grid[row, col], values[row], depth_cmap, 0, max_depth,
                                title if row == 0 else None)
        if has_base:
            residual_image = _tile(fig, grid[row, -2], residual[row], RESIDUAL_CMAP, -scale,
                                   scale, "residual" if row == 0 else None)
    fig.colorbar(depth_image, cax=fig.add_subplot(grid[:, len(depth_columns)]),
                 label="depth (m)")
    if has_base:
        fig.colorbar(residual_image, cax=fig.add_subplot(grid[:, -1]),
                     label="residual (m): blue nearer, red farther")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _tile(fig, cell, values, cmap, low: float, high: float, title: str | None):
    ax = fig.add_subplot(cell)
    image = ax.imshow(values, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=13)
    return image
