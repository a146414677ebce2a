"""What the robot's depth camera reports from a pose: ray-cast z-depth with the failure
modes of a real stereo depth sensor, and a shaded RGB render."""

from __future__ import annotations

import math

import numpy as np

from baseres.data.synth.params import SynthParams
from baseres.data.synth.scene import Scene, cast_rays


def _focal(params: SynthParams) -> float:
    """Focal length in pixels of the square-pixel pinhole camera."""
    return (params.depth_width / 2) / math.tan(math.radians(params.hfov_deg) / 2)


def render_depth(scene: Scene, params: SynthParams) -> tuple[np.ndarray, ...]:
    """Ideal z-depth in metres, surface ids and |cos incidence|, each (H, W)."""
    origin, forward, right = scene.frame()
    height, width = params.depth_height, params.depth_width
    focal = _focal(params)
    xs = np.tile((np.arange(width) + 0.5 - width / 2) / focal, height)  # right of centre
    ys = np.repeat((np.arange(height) + 0.5 - height / 2) / focal, width)  # below centre
    # float32 halves the memory traffic of the biggest arrays; z stays exact to ~1e-6 m/m.
    dirs = np.stack([forward[0] + xs * right[0], forward[1] + xs * right[1], -ys])
    dirs = dirs.astype(np.float32)
    return tuple(a.reshape(height, width) for a in cast_rays(scene, origin, dirs))


def sensor_depth(
    z: np.ndarray, cos_in: np.ndarray, params: SynthParams, rng: np.random.Generator
) -> np.ndarray:
    """What a stereo depth sensor reports: uint16 mm with 0 where it fails.

    Failures, as in the real BatVision V2 depth maps: out of range, grazing incidence, flying
    pixels at depth discontinuities, the stereo shadow left of foreground objects (background
    seen by the left camera only), a band at the left border where no match is searched,
    and random dropout blobs (texture-less or shiny spots).
    """
    height, width = z.shape
    invalid = (z > params.sensor_range) | (z < params.sensor_min_range)
    invalid |= cos_in < params.grazing_cos
    jump_x = np.abs(np.diff(z, axis=1)) > params.edge_jump * np.minimum(z[:, 1:], z[:, :-1])
    jump_y = np.abs(np.diff(z, axis=0)) > params.edge_jump * np.minimum(z[1:], z[:-1])
    invalid[:, 1:] |= jump_x
    invalid[:, :-1] |= jump_x
    invalid[1:] |= jump_y
    invalid[:-1] |= jump_y
    if params.stereo_baseline > 0:
        # Pixel u (disparity d_u) is hidden from the right camera when some v > u lands on
        # or past it there: v - d_v <= u - d_u, i.e. max over v > u of (d_v - v) >= d_u - u.
        cols = np.arange(width)
        key = _focal(params) * params.stereo_baseline / z - cols
        ahead = np.maximum.accumulate(key[:, ::-1], axis=1)[:, ::-1]
        invalid[:, :-1] |= ahead[:, 1:] >= key[:, :-1]
    band = int(rng.uniform(*params.left_band) * width)
    invalid[:, :band] = True
    rows, cols = np.arange(height)[:, None], np.arange(width)[None, :]
    for _ in range(rng.poisson(params.hole_rate)):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.02, 0.12, size=2) * width
        invalid |= ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 < 1
    noisy = z + rng.standard_normal(z.shape, dtype=np.float32) * (params.depth_noise * z * z)
    mm = np.clip(np.rint(noisy * 1000.0), 1, 65535)
    mm[invalid] = 0
    return mm.astype(np.uint16)


def render_camera(scene: Scene, z: np.ndarray, surface: np.ndarray, cos_in: np.ndarray):
    """A shaded RGB render (uint8, H x W x 3): surface colour x Lambert x distance falloff."""
    colors = np.array(scene.colors or [(180, 180, 180)] * (6 + len(scene.boxes)), np.float32)
    shade = (0.35 + 0.65 * cos_in) / (1.0 + 0.06 * z)
    return np.clip(colors[surface] * shade[..., None], 0, 255).astype(np.uint8)
