"""The titled decomposition panel (baseres.viz) a researcher sees in TensorBoard: large tiles,
one colour bar per scale, residual 0 white."""

import numpy as np
import pytest
import torch
from matplotlib import colormaps

from baseres.viz import DEPTH_CMAP, RESIDUAL_CMAP, TILE_PX, decomposition_panel


def near(image: np.ndarray, rgb: np.ndarray, tolerance: int = 6) -> np.ndarray:
    return (np.abs(image.astype(int) - rgb).max(axis=-1) <= tolerance)


def colour(cmap: str, at: float) -> np.ndarray:
    return (np.array(colormaps[cmap](at)[:3]) * 255).round().astype(int)


def panel_inputs(with_base: bool = True):
    """Depth 6 m everywhere (half of 12); residual -0.5 | 0 | +0.5 m in vertical thirds."""
    size = 33
    depth = torch.full((2, 1, size, size), 6.0)
    outputs = {"final": depth.clone()}
    if with_base:
        residual = torch.zeros_like(depth)
        residual[..., :11], residual[..., 22:] = -0.5, 0.5
        outputs.update(base=depth.clone(), residual=residual)
    return outputs, depth


def test_panel_tiles_are_large_and_residual_zero_is_white():
    outputs, gt = panel_inputs()
    image = decomposition_panel(outputs, gt, max_depth=12.0, residual_limit=3.6)
    assert image.dtype == np.uint8 and image.shape[2] == 3
    blue, red = near(image, colour(RESIDUAL_CMAP, 0.0)), near(image, colour(RESIDUAL_CMAP, 1.0))
    rows = np.flatnonzero(blue.any(axis=1))
    row = int(rows[rows.size // 2])  # mid-figure: through a residual tile, not the bar's end
    blue_x, red_x = np.flatnonzero(blue[row]), np.flatnonzero(red[row])
    third = blue_x.size
    assert 3 * third >= 0.95 * TILE_PX  # 33 px tiles drawn about TILE_PX wide
    middle = image[row, (blue_x.max() + red_x.min()) // 2]
    assert middle.min() >= 235  # 0 m of residual is (near) white on the diverging map
    assert abs(red_x.size - third) <= 2 and red_x.min() > blue_x.max()
    # Four depth tiles' worth of 6 m: truth, final and base on one scale.
    assert near(image, colour(DEPTH_CMAP, 0.5), 3).sum() >= 3 * 2 * (0.95 * TILE_PX) ** 2


@pytest.mark.parametrize("cmap, with_base", [(DEPTH_CMAP, True), (RESIDUAL_CMAP, True),
                                             (DEPTH_CMAP, False)])
def test_panel_has_a_colour_bar_per_scale(cmap, with_base):
    outputs, gt = panel_inputs(with_base)
    image = decomposition_panel(outputs, gt, max_depth=12.0, residual_limit=3.6)
    # The tiles hold three values only; shades between them are drawn by a colour bar alone.
    for at in (0.2, 0.8):
        assert near(image, colour(cmap, at), 3).sum() >= 20, (cmap, at)


def test_a_unet_panel_has_no_residual():
    outputs, gt = panel_inputs(with_base=False)
    image = decomposition_panel(outputs, gt, max_depth=12.0, residual_limit=3.6)
    assert not near(image, colour(RESIDUAL_CMAP, 0.0)).any()
    assert not near(image, colour(RESIDUAL_CMAP, 0.8), 3).any()
