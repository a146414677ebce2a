import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import make_v2_root, tiny_config

from baseres.config import MIN_MAX_DEPTH
from baseres.data import cache as cache_module
from baseres.data import synth
from baseres.data.batvision import (
    DataError,
    list_v1_samples,
    list_v2_samples,
    load_depth_mm,
    load_waveform,
)
from baseres.data.cache import check_locations, load_split, sample_refs
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


def cut_wav_mid_data(root):
    path = root / "Room_A" / "audio" / "audio_0.wav"  # 20000 stereo int32 frames, 8 bytes each
    path.write_bytes(path.read_bytes()[:-80000])  # a copy cut short: the header is whole
    return ("audio_0.wav: truncated WAV: its header declares 20000 frames, but the file holds "
            "10000$"), "train"


def latin1_csv(root):
    csv = root / "Room_A" / "train.csv"
    csv.write_bytes(csv.read_text().replace("Room_A/camera/", "R\u00e9ception/").encode("latin-1"))
    return (r"Room_A/train.csv: a split CSV must be UTF-8 text \(save it as UTF-8\), but it holds "
            r"byte 0xe9, which is not \(invalid continuation byte\)$"), "train"


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


def png_as_depth(root):  # an image saved under the .npy name: no pickle advice, the rule
    (root / "Room_A" / "depth" / "depth_0.npy").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    return ("depth_0.npy: unreadable .npy file: not a NumPy .npy array \\(its first bytes are "
            "no .npy header\\)$"), "train"


def absent_depth(root):
    (root / "Room_A" / "depth" / "depth_0.npy").unlink()
    return "depth_0.npy: file does not exist", "train"


@pytest.mark.parametrize("damage", [break_csv_column, remove_wav, truncate_wav, cut_wav_mid_data,
                                    latin1_csv, mono_wav, wrong_rate, flat_depth, nan_depth,
                                    png_as_depth, absent_depth])
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


def test_a_byte_order_mark_before_the_first_column_is_not_part_of_its_name(tmp_path):
    # as spreadsheets save "UTF-8 CSV"; the first column is a required one
    (tmp_path / "train.csv").write_bytes(
        "\ufeffaudio path left,audio path right,depth path\nl.npy,r.npy,d.npy\n".encode())
    (ref,) = list_v1_samples(tmp_path, "train")
    assert ref.audio == (tmp_path / "l.npy", tmp_path / "r.npy")


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


def test_an_edit_that_keeps_size_and_mtime_is_not_served_stale(tmp_path, monkeypatch):
    root = make_v2_root(tmp_path / "v2", per_split=3)
    cfg = tiny_config(dataset="batvisionv2", data_root=str(root))
    calls = counting_features(monkeypatch)
    first = load_split(cfg, "train", progress=False)
    before = np.array(first.features[0])
    wav = root / "Room_A" / "audio" / "audio_0.wav"
    stat = wav.stat()
    data, rate = sf.read(wav, dtype="int32")
    sf.write(wav, data[::-1].copy(), rate, subtype="PCM_32")  # other audio, same size
    os.utime(wav, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as cp -p, rsync -t and tar do
    assert (wav.stat().st_size, wav.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    edited = load_split(cfg, "train", progress=False)
    assert len(calls) == 6 and edited.folder != first.folder
    assert not np.array_equal(edited.features[0], before)  # the edit is what is served


def test_a_split_without_any_valid_depth_is_refused_when_loaded(tmp_path):
    root = make_v2_root(tmp_path / "v2")
    for index in (2, 3):  # the val rows
        np.save(root / "Room_A" / "depth" / f"depth_{index}.npy", np.zeros((18, 32), np.uint16))
    cfg = tiny_config(dataset="batvisionv2", data_root=str(root))
    assert len(load_split(cfg, "train", progress=False)) == 2
    with pytest.raises(DataError) as info:
        load_split(cfg, "val", progress=False)
    rule = "a split must hold at least one valid (nonzero) depth pixel"
    assert str(info.value) == (f"{root}: split 'val': {rule}, but the depth of all its 2 "
                               "samples is 0 (invalid) after resizing to 32 px")
    assert (info.value.key, info.value.rule, info.value.value) == (str(root), rule, 0)
    with pytest.raises(DataError, match=re.escape(rule)):  # the cached entry says it again
        load_split(cfg, "val", progress=False)


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


# --------------------------------------------------------------------------- held-out places

PLACES = ("Room_A", "Room_B", "Room_C", "Room_D")
# make_v2_root writes, per location, sample 0 in train.csv, 1 in val.csv and 2 in test.csv.
TRAIN, VAL, TEST = 0, 1, 2
ALL = (TRAIN, VAL, TEST)


@pytest.fixture(scope="module")
def places_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("places") / "v2"
    for location in PLACES:
        make_v2_root(root, per_split=1, location=location)
    return root


def where(root, refs) -> set[tuple[str, int]]:
    """(location, index) of each sample, read off its files' paths."""
    found = set()
    for ref in refs:
        location, kind, name = ref.audio[0].relative_to(root).parts
        assert (kind, ref.depth.relative_to(root).parts[0]) == ("audio", location)
        found.add((location, int(name.removeprefix("audio_").removesuffix(".wav"))))
    return found


def rows(spec: str, *indices: int) -> set[tuple[str, int]]:
    """rows("AB", TRAIN) -> {("Room_A", 0), ("Room_B", 0)}."""
    return {(f"Room_{letter}", index) for letter in spec for index in indices}


HELD_OUT_CASES = [
    ("released splits", {},
     {"train": rows("ABCD", TRAIN), "val": rows("ABCD", VAL), "test": rows("ABCD", TEST),
      "test_seen": rows("ABCD", TEST)}),
    ("val place", {"val_locations": ["Room_C"]},
     {"train": rows("ABD", TRAIN), "val": rows("C", *ALL), "test": rows("ABD", TEST),
      "test_seen": rows("ABD", TEST)}),
    ("test place", {"test_locations": ["Room_D"]},
     {"train": rows("ABC", TRAIN), "val": rows("ABC", VAL), "test": rows("D", *ALL),
      "test_seen": rows("ABC", TEST)}),
    ("both, two test places", {"val_locations": ["Room_B"], "test_locations": ["Room_C", "Room_D"]},
     {"train": rows("A", TRAIN), "val": rows("B", *ALL), "test": rows("CD", *ALL),
      "test_seen": rows("A", TEST)}),
    ("restricted, held out inside", {"locations": ["Room_A", "Room_B", "Room_C"],
                                     "test_locations": ["Room_C"]},
     {"train": rows("AB", TRAIN), "val": rows("AB", VAL), "test": rows("C", *ALL),
      "test_seen": rows("AB", TEST)}),
    ("restricted, held out outside", {"locations": ["Room_A"], "val_locations": ["Room_D"]},
     {"train": rows("A", TRAIN), "val": rows("D", *ALL), "test": rows("A", TEST),
      "test_seen": rows("A", TEST)}),
]


@pytest.mark.parametrize(("changes", "expected"), [c[1:] for c in HELD_OUT_CASES],
                         ids=[c[0] for c in HELD_OUT_CASES])
def test_splits_with_and_without_held_out_places(places_root, changes, expected):
    cfg = tiny_config(dataset="batvisionv2", data_root=str(places_root), **changes)
    found = {split: where(places_root, sample_refs(cfg, places_root, split))
             for split in ("train", "val", "test", "test_seen")}
    assert found == expected
    trained = {location for location, _ in found["train"]}
    for key, split in (("val_locations", "val"), ("test_locations", "test")):
        if changes.get(key):  # a held-out place never reaches training
            assert trained.isdisjoint(location for location, _ in found[split])
            assert {location for location, _ in found[split]} == set(changes[key])


def test_held_out_splits_on_the_synthetic_set(tmp_path):
    params = synth.SynthParams(num_train=8, num_val=4, num_test=4, styles=("Office", "Hall"),
                               rooms_per_style=2)
    root = synth.generate(tmp_path / "synthetic", params, progress=False)
    cfg = tiny_config(data_root=str(root), val_locations=["Hall_1"],
                      test_locations=["Office_2"])
    assert cfg.dataset == "synthetic"
    locations = {split: sorted({ref.depth.relative_to(root).parts[0]
                                for ref in sample_refs(cfg, root, split)})
                 for split in ("train", "val", "test", "test_seen")}
    assert locations == {"train": ["Hall_2", "Office_1"], "val": ["Hall_1"],
                         "test": ["Office_2"], "test_seen": ["Hall_2", "Office_1"]}
    assert len(sample_refs(cfg, root, "train")) == 4  # 2 train poses of each seen place
    assert len(sample_refs(cfg, root, "val")) == 4  # every pose of Hall_1
    assert len(sample_refs(cfg, root, "test_seen")) == 2  # 1 test pose of each seen place


@pytest.mark.parametrize(("changes", "named"), [
    ({"locations": ["Room_A", "Nowhere"]}, r"'Nowhere' \(locations\)"),
    ({"val_locations": ["Nowhere"]}, r"'Nowhere' \(val_locations\)"),
    ({"test_locations": ["Room_B", "Nowhere"]}, r"'Nowhere' \(test_locations\)"),
    ({"val_locations": ["audio"]}, r"'audio' \(val_locations\)"),  # a folder, but no place
    ({"val_locations": ["Elsewhere"], "test_locations": ["Nowhere"]},
     r"'Elsewhere' \(val_locations\), 'Nowhere' \(test_locations\)"),
])
def test_unknown_place_is_named_before_any_feature_is_computed(places_root, monkeypatch,
                                                               changes, named):
    (places_root / "audio").mkdir(exist_ok=True)
    cfg = tiny_config(dataset="batvisionv2", data_root=str(places_root), **changes)
    calls = counting_features(monkeypatch)
    for call in (lambda: check_locations(cfg, places_root),
                 lambda: load_split(cfg, "train", progress=False)):
        with pytest.raises(DataError, match=rf"{re.escape(str(places_root))}: unknown "
                                            rf"locations? {named}: no folder") as err:
            call()
        assert "Room_A" in str(err.value)  # the locations that are there
    assert calls == []


@pytest.mark.parametrize("changes", [{"val_locations": ["a"]}, {"test_locations": ["a"]},
                                     {"locations": ["a"]}])
def test_v1_has_no_places_to_hold_out(tmp_path, changes):
    cfg = tiny_config(dataset="batvisionv1", data_root=str(tmp_path), **changes)
    with pytest.raises(DataError, match=rf"^{next(iter(changes))} need.* the BatVision V2 "
                                        r"layout .*dataset is batvisionv1"):
        check_locations(cfg, tmp_path)
    with pytest.raises(DataError, match="need the BatVision V2 layout"):
        load_split(cfg, "val", progress=False)


def test_v1_test_seen_is_its_test_split(tmp_path):
    np.save(tmp_path / "l.npy", np.ones(50, dtype=np.float32))
    np.save(tmp_path / "d.npy", np.ones((4, 4)))
    for split, count in (("train", 1), ("val", 2), ("test", 3)):
        (tmp_path / f"{split}.csv").write_text(
            "audio path left,audio path right,depth path\n" + "l.npy,l.npy,d.npy\n" * count)
    cfg = tiny_config(dataset="batvisionv1", data_root=str(tmp_path))
    assert check_locations(cfg, tmp_path) is None
    assert len(sample_refs(cfg, tmp_path, "test_seen")) == 3


def test_holding_out_every_place_is_refused(places_root):
    cfg = tiny_config(dataset="batvisionv2", data_root=str(places_root),
                      val_locations=["Room_A", "Room_B"], test_locations=["Room_C", "Room_D"])
    with pytest.raises(DataError, match="no location left to train on"):
        check_locations(cfg, places_root)


@pytest.mark.parametrize("split", ["validation", "seen", ""])
def test_unknown_split_name(places_root, split):
    cfg = tiny_config(dataset="batvisionv2", data_root=str(places_root))
    with pytest.raises(ValueError, match=rf"split must be one of .*test_seen.*got '{split}'"):
        sample_refs(cfg, places_root, split)


def test_held_out_splits_get_their_own_cache_entries(places_root, monkeypatch):
    released = tiny_config(dataset="batvisionv2", data_root=str(places_root))
    held = released.replace(val_locations=["Room_B"])
    calls = counting_features(monkeypatch)
    plain_val = load_split(released, "val", progress=False)
    held_val = load_split(held, "val", progress=False)
    assert (len(plain_val), len(held_val)) == (4, 3)
    assert held_val.folder != plain_val.folder
    assert len(calls) == 7
    seen_test = load_split(held, "test_seen", progress=False)
    assert len(seen_test) == 3 and seen_test.folder.name.startswith("test_seen-")
    assert load_split(held, "val", progress=False).folder == held_val.folder  # a hit
    assert len(calls) == 10
