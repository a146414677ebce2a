import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import make_v2_root, tiny_config

from baseres.data import cache as cache_module
from baseres.data.batvision import (
    DataError,
    list_v1_samples,
    list_v2_samples,
    load_depth_mm,
    load_waveform,
)
from baseres.data.cache import load_split
from baseres.data.features import FeatureSettings, depth_to_metres, waveform_to_features


def settings(audio_format="log_spectrogram", size=64, max_depth=30.0):
    return FeatureSettings(audio_format=audio_format, image_size=size, max_depth=max_depth)


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


def test_v1_reader_turns_nan_and_inf_into_invalid(tmp_path):
    np.save(tmp_path / "l.npy", np.ones(5000, dtype=np.float32))
    np.save(tmp_path / "r.npy", np.zeros(4000, dtype=np.float32))
    np.save(tmp_path / "d.npy", np.array([[np.nan, np.inf], [1500.0, -3.0]]))
    for split in ("train", "val", "test"):
        (tmp_path / f"{split}.csv").write_text(
            "audio path left,audio path right,depth path\nl.npy,r.npy,d.npy\n")
    (ref,) = list_v1_samples(tmp_path, "train")
    assert load_waveform(ref).shape == (2, 4000)
    assert load_depth_mm(ref).tolist() == [[0.0, 0.0], [1500.0, 0.0]]


def break_csv_column(root):
    csv = root / "Room_A" / "train.csv"
    csv.write_text(csv.read_text().replace("depth file name", "depth name"))
    return "train.csv: missing CSV column", "train"


def remove_wav(root):
    (root / "Room_A" / "audio" / "audio_0.wav").unlink()
    return "audio_0.wav: file does not exist", "train"


def truncate_wav(root):
    path = root / "Room_A" / "audio" / "audio_0.wav"
    path.write_bytes(path.read_bytes()[:30])
    return "audio_0.wav: unreadable WAV", "train"


def mono_wav(root):
    sf.write(root / "Room_A" / "audio" / "audio_0.wav", np.zeros((2000, 1), np.int32), 44100,
             subtype="PCM_32")
    return "audio_0.wav: audio must have 2 channels", "train"


def wrong_rate(root):
    sf.write(root / "Room_A" / "audio" / "audio_0.wav", np.zeros((2000, 2), np.int32), 16000,
             subtype="PCM_32")
    return r"audio_0.wav: sample rate must be 44100 Hz, but got 16000", "train"


def flat_depth(root):
    np.save(root / "Room_A" / "depth" / "depth_0.npy", np.ones(10, dtype=np.uint16))
    return "depth_0.npy: depth must be a 2-D", "train"


def nan_depth(root):
    depth = np.full((18, 32), 1500.0)
    depth[3, 4] = np.nan
    np.save(root / "Room_A" / "depth" / "depth_0.npy", depth)
    return "depth_0.npy: depth holds 1 NaN or infinite values", "train"


def absent_depth(root):
    (root / "Room_A" / "depth" / "depth_0.npy").unlink()
    return "depth_0.npy: file does not exist", "train"


@pytest.mark.parametrize("damage", [break_csv_column, remove_wav, truncate_wav, mono_wav,
                                    wrong_rate, flat_depth, nan_depth, absent_depth])
def test_bad_files_are_named(tmp_path, damage):
    root = make_v2_root(tmp_path / "v2")
    message, split = damage(root)
    cfg = tiny_config(dataset="batvisionv2", data_root=str(root))
    with pytest.raises(DataError, match=message):
        load_split(cfg, split, progress=False)
    if "CSV" not in message:  # with skip_bad_samples the other samples still load
        with pytest.warns(UserWarning, match=r"skipped 1 bad sample\(s\).*" + message):
            arrays = load_split(cfg.replace(skip_bad_samples=True), split, progress=False)
        assert len(arrays) == 1


@pytest.mark.parametrize("root, message", [
    ("absent", "data root does not exist"),
    ("empty", "no location folder holds train.csv"),
])
def test_bad_roots(tmp_path, root, message):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=message):
        list_v2_samples(tmp_path / root, "train")
    with pytest.raises(DataError, match="Nope/train.csv: location's split file does not exist"):
        list_v2_samples(tmp_path / "empty", "train", locations=["Nope"])


def counting_features(monkeypatch):
    calls = []
    real = cache_module.waveform_to_features

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(cache_module, "waveform_to_features", counted)
    return calls


def test_cache_hit_miss_stale_and_truncated(tmp_path, monkeypatch):
    root = make_v2_root(tmp_path / "v2", per_split=3)
    cfg = tiny_config(dataset="batvisionv2", data_root=str(root))
    calls = counting_features(monkeypatch)
    first = load_split(cfg, "train", progress=False)
    assert len(calls) == 3 and len(first) == 3
    assert not first.features.flags.writeable  # mapped read-only
    again = load_split(cfg, "train", progress=False)
    assert len(calls) == 3 and again.folder == first.folder  # hit: nothing recomputed
    np.testing.assert_array_equal(first.features, again.features)
    expected = np.array(first.features)

    other = load_split(cfg.replace(audio_format="mel"), "train", progress=False)
    assert len(calls) == 6 and other.folder != first.folder  # other settings: other entry

    features = first.folder / "features.npy"
    with open(features, "r+b") as handle:  # a crash or full disk left it short
        handle.truncate(features.stat().st_size - 100)
    rebuilt = load_split(cfg, "train", progress=False)
    assert len(calls) == 9 and rebuilt.folder == first.folder
    np.testing.assert_array_equal(rebuilt.features, expected)

    wav = root / "Room_A" / "audio" / "audio_0.wav"
    os.utime(wav, ns=(wav.stat().st_atime_ns, wav.stat().st_mtime_ns + 10**9))
    stale = load_split(cfg, "train", progress=False)
    assert len(calls) == 12 and stale.folder != first.folder  # edited data: never served stale


BUILD = """
import json, sys
from baseres.config import TrainConfig
from baseres.data.cache import load_split
cfg = TrainConfig(dataset="batvisionv2", data_root=sys.argv[1], image_size=32)
arrays = load_split(cfg, "train", progress=False)
manifest = json.loads((arrays.folder / "manifest.json").read_text())
print(manifest["built_by_pid"], len(arrays))
"""


def test_two_processes_build_the_cache_once(tmp_path):
    root = make_v2_root(tmp_path / "v2", per_split=6)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    builders = [subprocess.Popen([sys.executable, "-c", BUILD, str(root)], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(2)]
    results = []
    for builder in builders:
        out, err = builder.communicate(timeout=120)
        assert builder.returncode == 0, err[-2000:]
        results.append(out.split())
    assert results[0] == results[1] and results[0][1] == "6"  # one builder's cache, both read it
    leftovers = [p.name for p in (tmp_path / "cache" / "baseres" / "features").iterdir()
                 if ".tmp-" in p.name]
    assert not leftovers
