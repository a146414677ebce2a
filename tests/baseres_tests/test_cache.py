"""baseres.data.cache: the feature cache (hit, miss, stale, cut short, built once by two
processes) and the samples of each split, with and without held-out places."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from helpers import make_v2_root, tiny_config

from baseres.data import cache as cache_module
from baseres.data import synth
from baseres.data.batvision import DataError
from baseres.data.cache import check_locations, load_split, sample_refs


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
