"""The synthetic recordings' echo timing and depth, from the geometry: each echo arrives at
its round-trip time after the configured latency, and depth and echo agree."""

from __future__ import annotations

import math

import numpy as np
import pytest

from baseres.data import synth
from baseres.data.synth import Box, Scene, SynthParams

# --------------------------------------------------------------------------- physics

QUIET = SynthParams(reverb_level=0.0, noise_level=0.0)
BIG = (100.0, 100.0, 100.0)
LATENCY = 269  # frames from the start of a recording to the chirp's emission (the default)


def echo_onsets(scene: Scene, params: SynthParams = QUIET) -> list[int]:
    """First arrival per ear of everything but the direct sound, by matched filtering."""
    anechoic = Scene(scene.room, (0.0,) * 6, scene.position, scene.yaw)
    echo = (synth.render_audio(scene, params, np.random.default_rng(0))
            - synth.render_audio(anechoic, params, np.random.default_rng(0)))
    onsets = []
    for ear in range(2):
        envelope = np.abs(np.correlate(echo[:, ear], synth.chirp(), "valid"))
        onsets.append(int(np.argmax(envelope > 0.5 * envelope.max())))
    return onsets


HOP = 16  # the STFT hop of the official preprocessing, in samples


@pytest.mark.parametrize(("distance", "yaw_deg", "nearer"), [
    (0.6, 135, 0),   # wall at front-left: left ear nearer
    (1.0, -135, 1),  # wall at front-right: right ear nearer
    (2.5, 135, 0),
    (5.0, -135, 1),
    (9.0, 135, 0),
])
def test_single_wall_echo_arrives_at_round_trip_time(distance, yaw_deg, nearer):
    # Only the wall x = 0 reflects; the receiver stands `distance` from it, turned 45 degrees
    # so that one ear is about 7 cm closer to the wall than the other.
    scene = Scene(BIG, (0.9, 0, 0, 0, 0, 0), (distance, 50.0, 50.0), math.radians(yaw_deg))
    onsets = echo_onsets(scene)
    expected = LATENCY + 2 * distance / 343.0 * 44100
    for onset in onsets:
        assert abs(onset - expected) <= HOP
    assert onsets[nearer] < onsets[1 - nearer]


@pytest.mark.parametrize("distance", [1.0, 3.0, 7.5])
def test_facing_wall_has_flat_depth(distance):
    scene = Scene(BIG, (0.9, 0, 0, 0, 0, 0), (distance, 50.0, 50.0), math.pi)
    z, surface, cos_in = synth.render_depth(scene, QUIET)
    np.testing.assert_allclose(z, distance, rtol=1e-5)
    assert np.all(surface == 0)
    assert cos_in.max() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("box_distance", [1.5, 3.0])
def test_box_echo_and_depth_come_from_the_same_geometry(box_distance):
    # Facing -x: a box whose front face is box_distance ahead, a wall at 8 m behind it.
    front = 8.0 - box_distance
    box = Box((front - 1.0, 49.0, 0.0), (front, 51.0, 100.0), 0.8)
    scene = Scene(BIG, (0.9, 0, 0, 0, 0, 0), (8.0, 50.0, 50.0), math.pi, (box,))
    z, surface, _ = synth.render_depth(scene, QUIET)
    centre = z[z.shape[0] // 2, z.shape[1] // 2]
    assert centre == pytest.approx(box_distance, rel=1e-5)
    assert surface[z.shape[0] // 2, z.shape[1] // 2] == 6
    expected = LATENCY + 2 * centre / 343.0 * 44100
    for onset in echo_onsets(scene):
        assert abs(onset - expected) <= HOP


def test_nearer_wall_gives_a_stronger_echo():
    def echo_energy(distance: float) -> float:
        scene = Scene(BIG, (0.9, 0, 0, 0, 0, 0), (distance, 50.0, 50.0), math.pi)
        ir = synth.impulse_response(scene, QUIET, np.random.default_rng(0))
        return float(np.sum(ir[:, LATENCY + 40:] ** 2))  # after the direct sound

    assert echo_energy(1.0) > echo_energy(2.0) > echo_energy(4.0)


@pytest.mark.parametrize("latency", [0, 100, 269, 1000])
def test_direct_sound_starts_at_the_configured_latency(latency):
    params = SynthParams(reverb_level=0.0, noise_level=0.0, latency_frames=latency)
    anechoic = Scene(BIG, (0.0,) * 6, (50.0, 50.0, 50.0), 0.0)  # the direct sound only
    wave = synth.render_audio(anechoic, params, np.random.default_rng(0))
    travel = 0.1 / 343.0 * 44100  # each ear is mic_spacing / 2 = 0.1 m from the speaker
    for ear in range(2):
        envelope = np.abs(np.correlate(wave[:, ear], synth.chirp(), "valid"))
        onset = int(np.argmax(envelope > 0.5 * envelope.max()))
        assert abs(onset - (latency + travel)) <= 1
        assert np.abs(wave[: latency + 12, ear]).max() < 1e-6  # silence until it arrives
