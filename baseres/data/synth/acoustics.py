"""What the robot's ears hear from a pose: a chirp, its direct sound and the echoes of the
same walls and boxes the camera sees, delayed by path length / speed of sound plus the
recording latency.

Direct sound, first-order image sources of every wall and box face, diffuse scattering along
``echo_rays`` rays and a Sabine-decaying reverberant tail, convolved with the chirp.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from baseres.data.synth.params import NUM_FRAMES, SAMPLE_RATE, SynthParams
from baseres.data.synth.scene import (
    Scene,
    _reflectances,
    _segments_blocked,
    cast_rays,
)

# The emitted signal: a linear chirp, faded over a few samples so its edges do not click.
CHIRP_SECONDS = 0.003
CHIRP_F0 = 20.0
CHIRP_F1 = 20000.0
_CHIRP_FADE = 5
_FFT_SIZE = 20480  # >= NUM_FRAMES + chirp length - 1 (no wrap-around) and FFT-friendly
FRESNEL_MARGIN = 0.3  # metres: a finite face's specular echo fades as exp(-(miss/margin)^2)


@lru_cache(maxsize=1)
def chirp() -> np.ndarray:
    """The emitted signal: CHIRP_SECONDS of linear sweep CHIRP_F0 -> CHIRP_F1, unit peak."""
    n = round(CHIRP_SECONDS * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    rate = (CHIRP_F1 - CHIRP_F0) / CHIRP_SECONDS
    signal = np.sin(2 * np.pi * (CHIRP_F0 * t + 0.5 * rate * t * t))
    fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(_CHIRP_FADE) / _CHIRP_FADE)
    signal[:_CHIRP_FADE] *= fade
    signal[-_CHIRP_FADE:] *= fade[::-1]
    signal.flags.writeable = False  # shared by every caller through the cache
    return signal


@lru_cache(maxsize=1)
def _chirp_spectrum() -> np.ndarray:
    return np.fft.rfft(chirp(), _FFT_SIZE)


def _sphere(n: int, turn: float) -> np.ndarray:
    """(3, n) near-uniform unit directions: a Fibonacci spiral turned by ``turn`` about z."""
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    phi = np.pi * (3 - math.sqrt(5)) * k + turn
    r = np.sqrt(1 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z])


def _dot(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise a . v for a (3, n): plain arithmetic, so no BLAS thread pool is involved."""
    return a[0] * v[0] + a[1] * v[1] + a[2] * v[2]


def _directivity(cos_theta: np.ndarray, params: SynthParams) -> np.ndarray:
    return ((1 + cos_theta) / 2) ** params.directivity


def _ear_gain(arrival: np.ndarray, ear_axis: np.ndarray, params: SynthParams) -> np.ndarray:
    """Head shadow: louder from the ear's own side. arrival (3, n) unit, ear_axis (3,)."""
    return 1 + params.head_shadow * _dot(arrival, ear_axis)


def _direct_amplitude(params: SynthParams) -> float:
    # The ears are exactly lateral to the speaker (cos = 0) and the sound arrives from the
    # inner side (head shadow -1).
    pattern = float(_directivity(np.array(0.0), params))
    return params.direct_gain * pattern * (1 - params.head_shadow) / (params.mic_spacing / 2)


def _faces(scene: Scene) -> dict[str, np.ndarray]:
    """All reflecting rectangles that face the speaker: the 6 walls, then the box faces."""
    room = scene.room
    pos = scene.position
    axis, coord, lo, hi, refl = [], [], [], [], []
    for a in range(3):
        for side, c in ((0, 0.0), (1, room[a])):
            axis.append(a)
            coord.append(c)
            lo.append((0.0, 0.0, 0.0))
            hi.append(room)
            refl.append(scene.wall_reflectance[2 * a + side])
    for box in scene.boxes:
        for a in range(3):
            for c, facing in ((box.lo[a], pos[a] < box.lo[a]), (box.hi[a], pos[a] > box.hi[a])):
                if facing:
                    axis.append(a)
                    coord.append(c)
                    lo.append(box.lo)
                    hi.append(box.hi)
                    refl.append(box.reflectance)
    return {
        "axis": np.array(axis), "coord": np.array(coord), "lo": np.array(lo),
        "hi": np.array(hi), "refl": np.array(refl),
    }


def _image_sources(scene: Scene, params: SynthParams, ears: np.ndarray, ear_axes: np.ndarray):
    """First-order specular paths: (ear, path length, amplitude) for each visible one."""
    faces = _faces(scene)
    n = len(faces["axis"])
    speaker = np.asarray(scene.position, dtype=float)
    _, forward, _ = scene.frame()
    rows = np.arange(n)
    images = np.repeat(speaker[None], n, axis=0)
    images[rows, faces["axis"]] = 2 * faces["coord"] - speaker[faces["axis"]]
    ear_idx, lengths, amps = [], [], []
    for m in range(2):
        span = ears[m] - images
        lam = (faces["coord"] - images[rows, faces["axis"]]) / span[rows, faces["axis"]]
        points = images + lam[:, None] * span
        # The specular point lies in the face's plane by construction.
        # A finite face still reflects when the specular point falls just beside it (within
        # about a Fresnel zone at audio wavelengths): the echo fades with the miss distance.
        miss = np.linalg.norm(points - np.clip(points, faces["lo"], faces["hi"]), axis=1)
        on_face = miss <= 2.5 * FRESNEL_MARGIN
        ok = on_face & (faces["refl"] > 0)
        ok &= ~_segments_blocked(scene, np.repeat(speaker[None], n, axis=0), points)
        ok &= ~_segments_blocked(scene, points, np.repeat(ears[m][None], n, axis=0))
        if not ok.any():
            continue
        length = np.linalg.norm(span[ok], axis=1)
        out = points[ok] - speaker
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        arrival = (points[ok] - ears[m]) / np.linalg.norm(points[ok] - ears[m], axis=1)[:, None]
        emitted = _directivity(_dot(out.T, forward), params)
        amp = (params.specular_fraction * faces["refl"][ok] * emitted
               * np.exp(-(miss[ok] / FRESNEL_MARGIN) ** 2)
               * _ear_gain(arrival.T, ear_axes[m], params) / length)
        ear_idx.append(np.full(len(length), m))
        lengths.append(length)
        amps.append(amp)
    if not lengths:
        return np.zeros(0, int), np.zeros(0), np.zeros(0)
    return np.concatenate(ear_idx), np.concatenate(lengths), np.concatenate(amps)


def _reverb_time(scene: Scene) -> float:
    """Sabine RT60 in seconds from volume, surface areas and (energy) absorption."""
    w, ln, h = scene.room
    areas = [ln * h, ln * h, w * h, w * h, w * ln, w * ln]
    refl = list(scene.wall_reflectance)
    for b in scene.boxes:
        sx, sy, sz = (np.array(b.hi) - np.array(b.lo)).tolist()
        areas.append(2 * (sx * sz + sy * sz) + sx * sy)  # the bottom rests on the floor
        refl.append(b.reflectance)
    absorption = sum(a * (1 - r * r) for a, r in zip(areas, refl, strict=True))
    return float(np.clip(0.161 * w * ln * h / max(absorption, 1e-6), 0.05, 2.0))


def impulse_response(
    scene: Scene, params: SynthParams, rng: np.random.Generator
) -> np.ndarray:
    """(2, NUM_FRAMES) binaural impulse response (left, right) in units of 1/metre.

    Direct sound, first-order image sources of walls and box faces, diffuse scattering of
    ``echo_rays`` rays (Lambertian, weighted by speaker directivity), and a Sabine-decaying
    noise tail. Arrivals are placed at fractional sample delays by linear interpolation,
    ``params.latency_frames`` after the start of the recording plus path length / c.
    """
    c, fs = params.speed_of_sound, SAMPLE_RATE
    origin, forward, right = scene.frame()
    ears = scene.ears(params)
    ear_axes = np.stack([-right, right])
    ear_idx, lengths, amps = [], [], []

    direct = np.linalg.norm(ears - origin, axis=1)
    ear_idx.append(np.arange(2))
    lengths.append(direct)
    amps.append(np.full(2, _direct_amplitude(params)))

    specular = _image_sources(scene, params, ears, ear_axes)
    for store, part in zip((ear_idx, lengths, amps), specular, strict=True):
        store.append(part)

    # Diffuse scattering: a randomly turned spiral keeps the rays uniform while the sampling
    # pattern differs from scene to scene.
    dirs = _sphere(params.echo_rays, rng.uniform(0, 2 * math.pi))
    t, surface, cos_in = cast_rays(scene, origin, dirs)
    refl = _reflectances(scene)[surface]
    points = origin[:, None] + t * dirs
    # Lambertian patch of solid angle 4 pi / n: over a large facing wall the diffuse parts
    # add up to the specular amplitude, so specular_fraction splits the energy as named.
    weight = ((1 - params.specular_fraction) * refl * _directivity(_dot(dirs, forward), params)
              * cos_in * (4.0 / params.echo_rays))
    for m in range(2):
        back = points - ears[m][:, None]
        dist = np.sqrt(_dot(back, back))
        path = t + dist
        ear_idx.append(np.full(len(path), m))
        lengths.append(path)
        amps.append(weight * _ear_gain(back / dist, ear_axes[m], params) / path)

    ear_idx = np.concatenate(ear_idx)
    # The recording starts latency_frames before the chirp leaves the speaker.
    delay = np.concatenate(lengths) / c * fs + params.latency_frames
    amp = np.concatenate(amps)
    first = np.floor(delay).astype(np.int64)
    frac = delay - first
    keep = first + 1 < NUM_FRAMES
    slots = ear_idx[keep] * NUM_FRAMES + first[keep]
    ir = np.bincount(slots, weights=amp[keep] * (1 - frac[keep]), minlength=2 * NUM_FRAMES)
    ir += np.bincount(slots + 1, weights=amp[keep] * frac[keep], minlength=2 * NUM_FRAMES)
    ir = ir.reshape(2, NUM_FRAMES)

    if params.reverb_level > 0:
        # Late reverberation: an exponentially decaying diffuse field (energy density of a
        # room of volume V: 4 pi c / (V fs) per sample, times the speaker's mean power
        # 1 / (2 directivity + 1)), rising from the first echo.
        volume = float(np.prod(scene.room))
        rt60 = _reverb_time(scene)
        onset = 2 * float(t.min()) / c
        times = (np.arange(NUM_FRAMES) - params.latency_frames) / fs  # since the emission
        rise = 1 - np.exp(-np.maximum(times - onset, 0) / 0.005)
        level = params.reverb_level * math.sqrt(
            4 * math.pi * c / (volume * fs) / (2 * params.directivity + 1))
        envelope = level * rise * np.exp(-6.91 * times / rt60)
        ir += rng.standard_normal((2, NUM_FRAMES), dtype=np.float32) * envelope
    return ir


def render_audio(scene: Scene, params: SynthParams, rng: np.random.Generator) -> np.ndarray:
    """(NUM_FRAMES, 2) float recording, scaled so the direct sound peaks at output_level."""
    ir = impulse_response(scene, params, rng)
    wave = np.fft.irfft(np.fft.rfft(ir, _FFT_SIZE) * _chirp_spectrum(), _FFT_SIZE)
    wave = wave[:, :NUM_FRAMES]
    if params.noise_level > 0:
        noise = rng.standard_normal(wave.shape, dtype=np.float32)
        wave += noise * (params.noise_level * _direct_amplitude(params))
    # A fixed gain (not per-sample peak normalisation) keeps echo levels comparable across
    # samples: the direct sound is the same in every recording.
    return (wave * (params.output_level / _direct_amplitude(params))).T


def to_pcm32(audio: np.ndarray) -> np.ndarray:
    """Float in [-1, 1) full scale -> int32 PCM, clipping the rare overshoot."""
    return np.clip(np.rint(audio * 2.0**31), -(2**31), 2**31 - 1).astype(np.int32)
