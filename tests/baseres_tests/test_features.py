"""baseres.data.features: a recording's STFT features and the depth map in metres, at each
size and audio format, on made-up signals and on the real BatVision V2 sample."""

import numpy as np
import pytest
import torch

from baseres.config import MIN_MAX_DEPTH
from baseres.data.batvision import list_v2_samples, load_depth_mm, load_waveform
from baseres.data.features import FeatureSettings, depth_to_metres, waveform_to_features


def settings(audio_format="log_spectrogram", size=64, max_depth=30.0):
    return FeatureSettings(audio_format=audio_format, image_size=size, max_depth=max_depth)


def test_the_smallest_max_depth_is_the_stfts_own_limit():
    wave = np.random.default_rng(0).standard_normal((2, 9000)).astype(np.float32)
    smallest = settings(size=32, max_depth=MIN_MAX_DEPTH)
    assert smallest.num_samples > smallest.n_fft // 2  # 257 > 256
    assert waveform_to_features(wave, smallest).shape == (2, 32, 32)
    below = settings(size=32, max_depth=MIN_MAX_DEPTH - 0.001)
    assert below.num_samples <= below.n_fft // 2  # the bound is tight, to the millimetre
    with pytest.raises(RuntimeError, match="Padding size should be less than"):
        waveform_to_features(wave, below)


def test_cut_keeps_echoes_from_within_max_depth():
    assert settings().num_samples == int(2 * 30 / 340 * 44100) == 7782
    assert settings(max_depth=12.0).num_samples == int(2 * 12 / 340 * 44100)


def test_real_v2_sample_shapes_units_and_invalid_fraction(fixture_root):
    (ref,) = list_v2_samples(fixture_root, "train")
    wave = load_waveform(ref)
    assert wave.shape == (2, 20000) and wave.dtype == np.float32
    raw = np.load(ref.depth)
    expected_invalid = float((raw == 0).mean())  # about 0.217
    for size in (64, 256):
        feats = waveform_to_features(wave, settings(size=size))
        depth = depth_to_metres(load_depth_mm(ref), settings(size=size))
        assert feats.shape == (2, size, size) and depth.shape == (1, size, size)
        assert torch.isfinite(feats).all()
        # millimetres became metres: the room is a few metres deep, never over 30 m
        assert 1.0 < float(depth[depth > 0].median()) < float(raw.max()) / 1000 + 1e-3
        assert float((depth == 0).float().mean()) == pytest.approx(expected_invalid, abs=0.03)
    sub = list_v2_samples(fixture_root, "val", locations=["Sample_Location"])
    assert len(sub) == 1


@pytest.mark.parametrize("audio_format", ["spectrogram", "log_spectrogram", "mel"])
def test_feature_formats(audio_format):
    wave = np.random.default_rng(0).standard_normal((2, 9000)).astype(np.float32)
    feats = waveform_to_features(wave, settings(audio_format, size=32))
    assert feats.shape == (2, 32, 32) and torch.isfinite(feats).all()
    if audio_format != "spectrogram":  # log formats are min-max normalised per channel
        assert float(feats.min()) >= -1e-6 and float(feats.max()) <= 1 + 1e-6


def test_short_audio_is_padded_and_channels_stay_apart():
    wave = np.zeros((2, 100), dtype=np.float32)
    wave[0, 10] = 1.0  # a click in the left ear only
    feats = waveform_to_features(wave, settings("spectrogram", size=32))
    assert feats.shape == (2, 32, 32)
    assert float(feats[0].sum()) > 0 and float(feats[1].sum()) == 0


def test_depth_clipped_to_max_depth_and_resized_nearest():
    mm = np.array([[0, 1000], [45000, 2000]], dtype=np.uint16)
    depth = depth_to_metres(mm, settings(size=32, max_depth=30.0))
    assert set(np.unique(depth.numpy()).tolist()) == {0.0, 1.0, 2.0, 30.0}  # no blended values
