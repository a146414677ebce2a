"""Rooms and poses: each location is one fixed shoebox room, seen from many robot poses.

The room of a location (size, surface reflectances, box obstacles, colours) depends only on
``(seed, location name)``; the pose of sample ``i`` is drawn from ``(seed, i)`` inside its
location's room. Poses stand in the two end parts of the room's long axis looking in, and the
boxes stand between them, so most views show boxes that shape both depth and echoes.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from baseres.data.synth.params import STYLES, SynthParams, location_of, style_of

# Pose and room randomness (generator 3.0). The pose faces the room centre within
# +- YAW_SPREAD_DEG and stands, along the long axis, within the first/last END_PART of the room.
YAW_SPREAD_DEG = 20.0
END_PART = 0.3
POSE_CLEARANCE = 0.5  # metres from walls and boxes to the receiver
FREE_AHEAD = 1.5  # metres of free view wanted ahead of the pose (64 tries, then the last)
BOX_REFLECTANCE = (0.5, 0.9)  # amplitude reflectance range of boxes
_ROOM_STREAM = 0x524F4F4D  # "ROOM": keeps room draws apart from the per-sample streams


@dataclass(frozen=True)
class Box:
    lo: tuple[float, float, float]  # min corner, metres
    hi: tuple[float, float, float]  # max corner, metres
    reflectance: float = 0.6


@dataclass(frozen=True)
class Scene:
    """One room, seen and heard from one pose.

    Room axes: x in [0, room[0]], y in [0, room[1]], z (up) in [0, room[2]]. The speaker and
    camera sit at ``position`` facing ``yaw`` (radians from +x towards +y, level); the ears sit
    ``mic_spacing / 2`` to its left and right. ``wall_reflectance`` is ordered x=0, x=max,
    y=0, y=max, floor, ceiling; 0 makes a surface anechoic.
    """

    room: tuple[float, float, float]
    wall_reflectance: tuple[float, float, float, float, float, float]
    position: tuple[float, float, float]
    yaw: float
    boxes: tuple[Box, ...] = ()
    colors: tuple[tuple[int, int, int], ...] = field(default=(), compare=False)

    def frame(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(origin, forward, right) unit vectors; up is +z."""
        forward = np.array([math.cos(self.yaw), math.sin(self.yaw), 0.0])
        right = np.array([math.sin(self.yaw), -math.cos(self.yaw), 0.0])
        return np.asarray(self.position, dtype=float), forward, right

    def ears(self, params: SynthParams) -> np.ndarray:
        """(2, 3): left ear, right ear."""
        origin, _, right = self.frame()
        half = params.mic_spacing / 2
        return np.stack([origin - half * right, origin + half * right])


@dataclass(frozen=True)
class Room:
    """One location's place: everything about a scene except the robot's pose."""

    name: str
    style: str
    size: tuple[float, float, float]  # x, y, z extents in metres
    wall_reflectance: tuple[float, float, float, float, float, float]
    boxes: tuple[Box, ...]
    colors: tuple[tuple[int, int, int], ...]  # walls (6), then boxes

    @property
    def long_axis(self) -> int:
        return int(self.size[1] > self.size[0])

    @property
    def reach(self) -> float:
        """How far along the long axis, from either end, the robot may stand."""
        return max(END_PART * self.size[self.long_axis], POSE_CLEARANCE + 0.1)

    def scene(self, position: tuple[float, float, float], yaw: float) -> Scene:
        return Scene(self.size, self.wall_reflectance, position, yaw, self.boxes, self.colors)

    def to_dict(self) -> dict:
        return {"style": self.style, "size": list(self.size),
                "wall_reflectance": list(self.wall_reflectance),
                "boxes": [{"lo": list(b.lo), "hi": list(b.hi), "reflectance": b.reflectance}
                          for b in self.boxes]}


def _name_key(location: str) -> int:
    return int.from_bytes(hashlib.sha256(location.encode()).digest()[:4], "big")


@lru_cache(maxsize=256)
def _draw_room(seed: int, location: str) -> Room:
    style = STYLES[style_of(location)]
    rng = np.random.default_rng([seed, _ROOM_STREAM, _name_key(location), 1])
    size = (float(rng.uniform(*style.width)), float(rng.uniform(*style.length)),
            float(rng.uniform(*style.height)))
    walls = tuple(float(r) for r in rng.uniform(*style.reflectance, size=6))
    room = Room(location, style_of(location), size, walls, (), ())
    # Boxes stand between the two pose zones, POSE_CLEARANCE beyond them, so no pose is ever
    # inside or against a box; across the long axis they may stand anywhere.
    long = room.long_axis
    lo_limit = np.zeros(2)
    hi_limit = np.array(size[:2])
    lo_limit[long] = room.reach + POSE_CLEARANCE
    hi_limit[long] = size[long] - room.reach - POSE_CLEARANCE
    boxes = []
    for _ in range(int(rng.integers(style.obstacles[0], style.obstacles[1] + 1))):
        for _ in range(16):
            extent = rng.uniform([0.3, 0.3, 0.4], [1.5, 1.5, 2.0])
            centre = rng.uniform(lo_limit, np.maximum(hi_limit, lo_limit))
            lo = np.maximum(centre - extent[:2] / 2, lo_limit)
            hi = np.minimum(centre + extent[:2] / 2, hi_limit)
            if np.all(hi - lo >= 0.2):
                boxes.append(Box((float(lo[0]), float(lo[1]), 0.0),
                                 (float(hi[0]), float(hi[1]), float(extent[2])),
                                 float(rng.uniform(*BOX_REFLECTANCE))))
                break
    colors = tuple(tuple(int(c) for c in rng.integers(60, 256, size=3))
                   for _ in range(6 + len(boxes)))
    return Room(location, room.style, size, walls, tuple(boxes), colors)


def location_room(params: SynthParams, location: str) -> Room:
    """The fixed room of a location: a function of ``(params.seed, location)`` only."""
    return _draw_room(params.seed, location)


def _box_arrays(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([b.lo for b in scene.boxes], dtype=float).reshape(-1, 3)
    hi = np.array([b.hi for b in scene.boxes], dtype=float).reshape(-1, 3)
    return lo, hi


def _reflectances(scene: Scene) -> np.ndarray:
    """Per surface id: walls 0..5, then boxes 6, 7, ..."""
    return np.array(list(scene.wall_reflectance) + [b.reflectance for b in scene.boxes])


def cast_rays(scene: Scene, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, ...]:
    """First hit of rays from a point inside the room; ``dirs`` is (3, n), one row per axis.

    Returns (t, surface, cos_incidence), each (n,): t is in units of ``dirs`` (so camera rays
    with a unit forward component give z-depth directly), surface is 0..5 for the walls (see
    Scene) and 6 + k for box k, cos_incidence is |cos| between ray and surface normal.
    Components are kept as separate rows because numpy reduces along a length-3 axis slowly.
    """
    # A zero component would give 0 * inf = nan in the slab tests; nudging it is harmless.
    dirs = np.where(np.abs(dirs) < 1e-12, dirs.dtype.type(1e-12), dirs)
    inv = 1.0 / dirs
    mag = np.abs(dirs)
    # Python floats keep float32 rays in float32 (numpy scalars would promote to float64).
    o = [float(v) for v in origin]
    # Inside the room the exit through an axis' pair of walls is the positive slab root.
    t = np.maximum((scene.room[0] - o[0]) * inv[0], -o[0] * inv[0])
    surface = (dirs[0] > 0).astype(np.int8)
    normal = mag[0]  # |ray component| along the hit surface's normal
    for a in (1, 2):
        t_a = np.maximum((scene.room[a] - o[a]) * inv[a], -o[a] * inv[a])
        closer = t_a < t
        t = np.where(closer, t_a, t)
        surface = np.where(closer, np.int8(2 * a) + (dirs[a] > 0), surface)
        normal = np.where(closer, mag[a], normal)
    for k, box in enumerate(scene.boxes):
        t_in = t_out = box_normal = None
        for a in range(3):
            t1 = (box.lo[a] - o[a]) * inv[a]
            t2 = (box.hi[a] - o[a]) * inv[a]
            near = np.minimum(t1, t2)
            far = np.maximum(t1, t2)
            if t_in is None:
                t_in, t_out, box_normal = near, far, mag[a]
            else:
                box_normal = np.where(near > t_in, mag[a], box_normal)
                t_in = np.maximum(t_in, near)
                t_out = np.minimum(t_out, far)
        hit = (t_in <= t_out) & (t_in > 0) & (t_in < t)
        if hit.any():
            t = np.where(hit, t_in, t)
            normal = np.where(hit, box_normal, normal)
            surface = np.where(hit, np.int8(6 + k), surface)
    cos_in = normal / np.sqrt(np.einsum("an,an->n", dirs, dirs))
    return t, surface, cos_in


def _segments_blocked(scene: Scene, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Whether each segment p0 -> p1 passes through a box (endpoints on a face do not count)."""
    lo, hi = _box_arrays(scene)
    d = p1 - p0
    d = np.where(np.abs(d) < 1e-12, 1e-12, d)
    inv = 1.0 / d
    blocked = np.zeros(len(p0), dtype=bool)
    for k in range(len(lo)):
        t1 = (lo[k] - p0) * inv
        t2 = (hi[k] - p0) * inv
        t_in = np.minimum(t1, t2).max(axis=1)
        t_out = np.maximum(t1, t2).min(axis=1)
        blocked |= (t_in < t_out - 1e-9) & (t_out > 1e-9) & (t_in < 1 - 1e-9)
    return blocked


def sample_scene(params: SynthParams, index: int, rng: np.random.Generator) -> Scene:
    """Sample ``index``'s view of its location's room, the pose drawn from ``rng``.

    The pose stands POSE_CLEARANCE or more from the walls, in one end part of the room's long
    axis (``Room.reach``), at a robot's camera height, facing the room centre within
    +-YAW_SPREAD_DEG with FREE_AHEAD metres of free view (else the last of 64 draws). Boxes
    stand beyond the end parts, so the pose keeps POSE_CLEARANCE from them too.
    """
    room = location_room(params, location_of(params, index))
    size, long_axis = room.size, room.long_axis
    for _ in range(64):
        xy = [float(rng.uniform(POSE_CLEARANCE, size[a] - POSE_CLEARANCE)) for a in (0, 1)]
        along = float(rng.uniform(POSE_CLEARANCE, room.reach))
        xy[long_axis] = along if rng.random() < 0.5 else size[long_axis] - along
        pos = (xy[0], xy[1], float(rng.uniform(0.8, min(1.6, size[2] - 0.4))))
        to_centre = math.atan2(size[1] / 2 - pos[1], size[0] / 2 - pos[0])
        yaw = to_centre + float(rng.uniform(-1, 1)) * math.radians(YAW_SPREAD_DEG)
        scene = room.scene(pos, yaw)
        if cast_rays(scene, np.array(pos), scene.frame()[1][:, None])[0][0] >= FREE_AHEAD:
            break
    return scene
