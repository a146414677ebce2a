"""The synthetic echo-room generator: layout, determinism, physics, caching and CLI."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from baseres.data import synth
from baseres.data.synth import Scene, SynthParams

REPO = Path(__file__).parents[2]
FIXTURE = Path(__file__).parents[3] / "shared/fixtures/batvision_v2"
# Four locations (two rooms of two styles), each with 2 train, 1 val and 1 test pose.
SMALL = SynthParams(num_train=8, num_val=4, num_test=4, styles=("Office", "Hall"),
                    rooms_per_style=2)
SMALL_LOCATIONS = ["Office_1", "Office_2", "Hall_1", "Hall_2"]
EXTENSIONS = {"audio": "wav", "camera": "jpeg", "depth": "npy"}


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")}


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def cell_kind(text: str) -> str:
    for kind in (int, float):
        try:
            kind(text)
            return kind.__name__
        except ValueError:
            pass
    return "str"


def check_row_paths(row: dict[str, str], location: str) -> None:
    """The release's convention: '<Location>/<kind>/' and '<kind>_<index>.<ext>'."""
    for kind, ext in EXTENSIONS.items():
        assert row[f"{kind} path"] == f"{location}/{kind}/"
        assert row[f"{kind} file name"] == f"{kind}_{row['index']}.{ext}"


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    return synth.generate(tmp_path_factory.mktemp("synth") / "set", SMALL, progress=False)


@pytest.fixture(scope="module")
def real_sample() -> Path:
    if not (FIXTURE / "Sample_Location" / "train.csv").is_file():
        pytest.skip(f"real BatVision V2 sample not present at {FIXTURE}")
    return FIXTURE / "Sample_Location"


# --------------------------------------------------------------------------- layout


def test_layout_lists_every_sample_once_with_its_files(small_set):
    seen = {}
    assert sorted(p.name for p in small_set.iterdir() if p.is_dir()) == sorted(SMALL_LOCATIONS)
    for location in SMALL_LOCATIONS:
        for kind in EXTENSIONS:
            assert (small_set / location / kind).is_dir()
        for split in synth.SPLITS:
            for row in read_rows(small_set / location / f"{split}.csv"):
                index = int(row["index"])
                assert index not in seen, f"index {index} listed twice"
                seen[index] = split
                assert synth.location_of(SMALL, index) == location
                check_row_paths(row, location)
                for kind in EXTENSIONS:
                    assert (small_set / row[f"{kind} path"] / row[f"{kind} file name"]).is_file()
    assert sorted(seen) == list(range(SMALL.num_samples))
    for split, count in synth.split_counts(SMALL).items():
        assert sorted(i for i, s in seen.items() if s == split) == list(
            synth.split_range(SMALL, split))
        assert sum(s == split for s in seen.values()) == count


def test_manifest_records_version_seed_and_params(small_set):
    found = synth.read_manifest(small_set)
    assert found["generator_version"] == synth.GENERATOR_VERSION
    assert found["digest"] == SMALL.digest()
    assert found["seed"] == SMALL.seed
    assert found["params"] == SMALL.to_dict()
    assert SynthParams(**found["params"]) == SMALL  # JSON lists come back as the same params
    assert sum(sum(c.values()) for c in found["locations"].values()) == SMALL.num_samples
    assert sorted(found["rooms"]) == sorted(SMALL_LOCATIONS)
    assert found["audio"]["latency_frames"] == 269


def test_file_formats(small_set):
    info = sf.info(str(small_set / "Office_1/audio/audio_0.wav"))
    assert (info.samplerate, info.channels, info.subtype, info.format, info.frames) == (
        44100, 2, "PCM_32", "WAV", 20000)
    audio, _ = sf.read(small_set / "Office_1/audio/audio_0.wav", dtype="int32")
    assert 0.3 < np.abs(audio).max() / 2**31 <= 1.0  # fixed-gain level, not silence
    depth = np.load(small_set / "Office_1/depth/depth_0.npy")
    assert depth.dtype == np.uint16 and depth.shape == (SMALL.depth_height, SMALL.depth_width)
    valid = depth[depth > 0] / 1000
    assert valid.min() >= SMALL.sensor_min_range * 0.9
    assert valid.max() <= SMALL.sensor_range * 1.1
    with Image.open(small_set / "Office_1/camera/camera_0.jpeg") as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (256, 144))


def test_formats_and_csv_match_the_real_sample(small_set, real_sample):
    real_info = sf.info(str(next((real_sample / "audio").glob("*.wav"))))
    ours_info = sf.info(str(small_set / "Office_1/audio/audio_0.wav"))
    for attr in ("samplerate", "channels", "subtype", "format", "frames"):
        assert getattr(ours_info, attr) == getattr(real_info, attr), attr

    real_depth = np.load(next((real_sample / "depth").glob("*.npy")))
    ours_depth = np.load(small_set / "Office_1/depth/depth_0.npy")
    assert (ours_depth.dtype, ours_depth.ndim) == (real_depth.dtype, real_depth.ndim)
    assert ours_depth.shape[1] * real_depth.shape[0] == real_depth.shape[1] * ours_depth.shape[0]

    with Image.open(next((real_sample / "camera").glob("*.jpeg"))) as real_cam, \
            Image.open(small_set / "Office_1/camera/camera_0.jpeg") as ours_cam:
        assert (ours_cam.format, ours_cam.mode) == (real_cam.format, real_cam.mode)

    for split in synth.SPLITS:
        real_bytes = (real_sample / f"{split}.csv").read_bytes()
        ours_bytes = (small_set / "Office_1" / f"{split}.csv").read_bytes()
        assert ours_bytes.split(b"\r\n")[0] == real_bytes.split(b"\r\n")[0]
        assert ours_bytes.endswith(b"\r\n") == real_bytes.endswith(b"\r\n")
        real_rows = read_rows(real_sample / f"{split}.csv")
        check_row_paths(real_rows[0], real_sample.name)  # the convention the reader relies on
        kinds = [cell_kind(v) for v in real_rows[0].values()]
        for row in read_rows(small_set / "Office_1" / f"{split}.csv"):
            assert [cell_kind(v) for v in row.values()] == kinds


def test_invalid_depth_fraction_is_realistic():
    fractions = [(synth.make_sample(SynthParams(), i).depth == 0).mean() for i in range(32)]
    assert 0.05 <= np.mean(fractions) <= 0.25
    assert max(fractions) < 0.6  # no sample is mostly holes


# --------------------------------------------------------------------------- locations

DEFAULT_LOCATIONS = [
    "Office_1", "Office_2", "Office_3", "Office_4",
    "Corridor_1", "Corridor_2", "Corridor_3", "Corridor_4",
    "Hall_1", "Hall_2", "Hall_3", "Hall_4",
    "Storage_1", "Storage_2", "Storage_3", "Storage_4",
]


def room_key(scene: Scene) -> tuple:
    return scene.room, scene.wall_reflectance, scene.boxes


def test_default_set_has_sixteen_locations_with_their_own_split_rows():
    assert list(synth.location_names(SynthParams())) == DEFAULT_LOCATIONS
    counts = synth.manifest(SynthParams())["locations"]
    assert list(counts) == DEFAULT_LOCATIONS
    for location, count in counts.items():  # 1000 / 250 / 250 over 16 places
        assert count["train"] in (62, 63) and count["val"] in (15, 16), location
        assert count["test"] in (15, 16), location
    assert [sum(c[split] for c in counts.values()) for split in synth.SPLITS] == [1000, 250, 250]


def test_each_location_splits_its_own_poses(small_set):
    expected = {  # locations take turns over the indices; splits are index ranges
        "Office_1": {"train": [0, 4], "val": [8], "test": [12]},
        "Office_2": {"train": [1, 5], "val": [9], "test": [13]},
        "Hall_1": {"train": [2, 6], "val": [10], "test": [14]},
        "Hall_2": {"train": [3, 7], "val": [11], "test": [15]},
    }
    for location, splits in expected.items():
        for split, indices in splits.items():
            rows = read_rows(small_set / location / f"{split}.csv")
            assert [int(row["index"]) for row in rows] == indices, (location, split)


def test_every_location_is_one_room_seen_from_many_poses(small_set):
    found = synth.read_manifest(small_set)
    scenes = {location: [] for location in SMALL_LOCATIONS}
    for location in SMALL_LOCATIONS:
        for split in synth.SPLITS:
            for row in read_rows(small_set / location / f"{split}.csv"):
                scenes[location].append(synth.make_sample(SMALL, int(row["index"])).scene)
    for location, views in scenes.items():
        assert len(views) == 4
        assert len({room_key(view) for view in views}) == 1, location  # one fixed room
        assert len({(view.position, view.yaw) for view in views}) == 4, location  # 4 poses
        room = found["rooms"][location]
        assert room["size"] == list(views[0].room)
        assert room["wall_reflectance"] == list(views[0].wall_reflectance)
        assert [(b["lo"], b["hi"]) for b in room["boxes"]] == [
            (list(b.lo), list(b.hi)) for b in views[0].boxes]
    assert len({room_key(views[0]) for views in scenes.values()}) == 4  # four different rooms
    for location in ("Office_1", "Office_2"):  # the style's ranges (3-6 m x 3.5-7 m)
        width, length, _ = scenes[location][0].room
        assert 3.0 <= width <= 6.0 and 3.5 <= length <= 7.0
    for location in ("Hall_1", "Hall_2"):
        width, length, _ = scenes[location][0].room
        assert 8.0 <= width <= 15.0 and 8.0 <= length <= 15.0


def test_poses_keep_clear_of_walls_and_boxes():
    for index in range(64):
        scene = synth.make_sample(SynthParams(), index).scene
        x, y, z = scene.position
        assert 0.5 <= x <= scene.room[0] - 0.5 and 0.5 <= y <= scene.room[1] - 0.5
        for box in scene.boxes:
            gap = np.maximum(np.maximum(np.subtract(box.lo[:2], (x, y)),
                                        np.subtract((x, y), box.hi[:2])), 0.0)
            assert np.hypot(*gap) >= 0.5, (index, box)


def test_room_depends_only_on_seed_and_location():
    hall = synth.location_room(SynthParams(), "Hall_2")
    assert synth.location_room(SMALL, "Hall_2") == hall  # other sizes, styles, rooms per style
    assert synth.location_room(SynthParams(num_train=3, seed=0), "Hall_2") == hall
    assert synth.location_room(SynthParams(seed=1), "Hall_2") != hall
    assert synth.location_room(SynthParams(), "Hall_3") != hall


def test_same_seed_same_locations_and_files_other_seed_other_rooms(small_set, tmp_path):
    again = synth.generate(tmp_path / "again", SMALL, progress=False)
    assert tree_bytes(again) == tree_bytes(small_set)
    other = synth.generate(tmp_path / "other", SynthParams(**{**SMALL.to_dict(), "seed": 1}),
                           progress=False)
    assert sorted(p.name for p in other.iterdir() if p.is_dir()) == sorted(SMALL_LOCATIONS)
    ours, theirs = synth.read_manifest(small_set)["rooms"], synth.read_manifest(other)["rooms"]
    for location in SMALL_LOCATIONS:
        assert ours[location]["size"] != theirs[location]["size"], location


@pytest.mark.parametrize("name", ["Office", "Office_0", "Attic_1", "Hall_x", ""])
def test_bad_location_names_are_refused(name):
    with pytest.raises(ValueError, match=r"a synthetic location is <Style>_<n> .* got"):
        synth.location_room(SynthParams(), name)


# --------------------------------------------------------------------------- latency


def onset_over_noise(wave: np.ndarray) -> list[int]:
    """Per channel, the first frame whose |amplitude| exceeds 20 times the noise floor (the
    std of the first 200 frames, before any sound arrives)."""
    floor = wave[:200].std(axis=0)
    return [int(np.argmax(np.abs(wave[:, c]) > 20 * floor[c])) for c in range(wave.shape[1])]


def test_synthetic_recordings_have_the_real_sample_latency(small_set, real_sample):
    real, _ = sf.read(real_sample / "audio" / "audio_47.wav", dtype="float64")
    real_onsets = onset_over_noise(real)
    assert real_onsets == [286, 286]  # 6.49 ms into the file, both ears
    wavs = sorted(small_set.glob("*/audio/*.wav"))
    assert len(wavs) == SMALL.num_samples
    for wav in wavs:
        ours, _ = sf.read(wav, dtype="float64")
        for mine, theirs in zip(onset_over_noise(ours), real_onsets, strict=True):
            assert abs(mine - theirs) <= 2, wav.name


# --------------------------------------------------------------------------- determinism


def test_generation_is_byte_identical_for_any_worker_count(small_set, tmp_path):
    again = synth.generate(tmp_path / "again", SMALL, workers=2, progress=False)
    assert tree_bytes(again) == tree_bytes(small_set)


def test_sample_does_not_depend_on_set_size(small_set, tmp_path):
    five = SynthParams(num_train=3, num_val=1, num_test=1, styles=SMALL.styles,
                       rooms_per_style=SMALL.rooms_per_style)
    root = synth.generate(tmp_path / "five", five, progress=False)
    for index in range(5):
        location = synth.location_of(five, index)
        for ours, theirs in zip(synth.sample_paths(root, location, index).values(),
                                synth.sample_paths(small_set, location, index).values(),
                                strict=True):
            assert ours.read_bytes() == theirs.read_bytes(), ours.name


def test_generate_resumes_and_keeps_complete_samples(small_set, tmp_path):
    root = tmp_path / "resumed"
    root.mkdir()
    for rel, data in tree_bytes(small_set).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / synth.MANIFEST).unlink()
    (root / "Office_2/depth/depth_5.npy").unlink()
    kept = root / "Office_1/audio/audio_4.wav"
    os.utime(kept, ns=(1, 1))
    synth.generate(root, SMALL, progress=False)
    assert kept.stat().st_mtime_ns == 1  # skipped, not rewritten
    assert tree_bytes(root) == tree_bytes(small_set)


def test_generate_refuses_a_folder_of_other_params(tmp_path):
    synth.generate(tmp_path, SynthParams(num_train=1, num_val=0, num_test=0), progress=False)
    with pytest.raises(ValueError, match="holds a synthetic set with digest"):
        synth.generate(tmp_path, SynthParams(num_train=1, num_val=0, num_test=0, seed=1),
                       progress=False)


# --------------------------------------------------------------------------- params


def test_digest_is_short_stable_and_covers_every_param():
    base = SynthParams()
    assert re.fullmatch(r"[0-9a-f]{12}", base.digest())
    assert SynthParams().digest() == base.digest()
    changed = [SynthParams(seed=1), SynthParams(num_train=999), SynthParams(sensor_range=10.0),
               SynthParams(styles=("Office",)), SynthParams(echo_rays=1024),
               SynthParams(rooms_per_style=3), SynthParams(latency_frames=0)]
    assert len({p.digest() for p in changed} | {base.digest()}) == len(changed) + 1


@pytest.mark.parametrize(("changes", "match"), [
    ({"num_train": -1}, r"num_train must be an integer >= 0, got -1"),
    ({"seed": 1.5}, r"seed must be an integer >= 0, got 1.5"),
    ({"num_train": 0, "num_val": 0, "num_test": 0}, r"must be > 0, got 0"),
    ({"styles": ("Attic",)}, r"styles must be among .*, got 'Attic'"),
    ({"styles": ("Hall", "Hall")}, r"styles must not repeat"),
    ({"sensor_range": 0.2}, r"sensor_min_range < sensor_range .* got"),
    ({"specular_fraction": 1.5}, r"specular_fraction must be in \[0, 1\], got 1.5"),
    ({"echo_rays": 0}, r"echo_rays must be >= 1, got 0"),
    ({"hfov_deg": 180.0}, r"hfov_deg must be in \(0, 180\), got 180.0"),
    ({"left_band": (0.3, 0.1)}, r"left_band\[0\] <= left_band\[1\] .* got \(0.3, 0.1\)"),
    ({"mic_spacing": 0.0}, r"mic_spacing must be > 0, got 0.0"),
    ({"rooms_per_style": 0}, r"rooms_per_style must be an integer >= 1, got 0"),
    ({"rooms_per_style": 2.0}, r"rooms_per_style must be an integer >= 1, got 2.0"),
    ({"latency_frames": -1}, r"latency_frames must be an integer >= 0, got -1"),
    ({"latency_frames": 10000}, r"latency_frames must be < 10000 \(half the .*, got 10000"),
])
def test_bad_params_are_refused_with_rule_and_value(changes, match):
    with pytest.raises(ValueError, match=match):
        SynthParams(**changes)


def test_default_root_follows_xdg_cache_home(monkeypatch, tmp_path):
    params = SynthParams(seed=3)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert synth.default_root(params) == tmp_path / "xdg/baseres" / f"synthetic-{params.digest()}"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert synth.default_root(params) == (
        tmp_path / "home/.cache/baseres" / f"synthetic-{params.digest()}")
    assert synth.default_root() == synth.default_root(SynthParams())


# --------------------------------------------------------------------------- ensure_synthetic

CHILD = """
import sys, time
from pathlib import Path
from baseres.data.synth import SynthParams, ensure_synthetic
root, ready, go = map(Path, sys.argv[1:4])
ready.touch()
while not go.exists():
    time.sleep(0.005)
print(ensure_synthetic(SynthParams(num_train=8, num_val=4, num_test=4, styles=("Office", "Hall"),
                                   rooms_per_style=2), root=root))
"""


def test_concurrent_ensure_generates_once(small_set, tmp_path, capsys):
    root = tmp_path / "cache" / "set"
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(tmp_path / f"r{k}"),
                                  str(go)], cwd=REPO, env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for k in range(2)]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"r{k}").exists() for k in range(2)):
        assert time.monotonic() < deadline, "children did not start"
        time.sleep(0.01)
    go.touch()  # both are imported and waiting: release them together
    results = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0], results
    assert [out.strip() for out, _ in results] == [str(root), str(root)]
    announcements = [line for _, err in results for line in err.splitlines()
                     if "generating" in line]
    assert len(announcements) == 1, results
    assert str(root) in announcements[0]
    assert tree_bytes(root) == tree_bytes(small_set)
    assert {p.name for p in root.parent.iterdir()} - {"set.lock"} == {"set"}  # no leftovers

    # Once the set exists it is returned as is, silently.
    assert synth.ensure_synthetic(SMALL, root=root) == root
    assert capsys.readouterr().err == ""


def test_interrupted_ensure_leaves_no_set_and_resumes(small_set, tmp_path, monkeypatch):
    root = tmp_path / "set"
    real_write = synth.writer.write_samples
    calls = []

    def crash_after_five(*args):
        calls.append(1)
        if len(calls) > 5:
            raise KeyboardInterrupt
        return real_write(*args)

    monkeypatch.setattr(synth.writer, "write_samples", crash_after_five)
    with pytest.raises(KeyboardInterrupt):
        synth.ensure_synthetic(SMALL, root=root, progress=False)
    assert not root.exists()  # never visible half-written
    partial = tmp_path / ".set.partial"
    assert len(list(partial.glob("*/audio/*.wav"))) == 5

    monkeypatch.setattr(synth.writer, "write_samples", real_write)
    assert synth.ensure_synthetic(SMALL, root=root, progress=False) == root
    assert not partial.exists()
    assert tree_bytes(root) == tree_bytes(small_set)


def test_ensure_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not a complete synthetic set"):
        synth.ensure_synthetic(SMALL, root=tmp_path / "set", progress=False)


# --------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(("args", "match"), [
    (["--num-train", "-1"], r"argument --num-train: must be >= 0, got -1"),
    (["--seed", "abc"], r"argument --seed: must be an integer, got 'abc'"),
    (["--workers", "0"], r"argument --workers: must be >= 1, got 0"),
    (["--num-train", "0", "--num-val", "0", "--num-test", "0"], r"must be > 0, got 0"),
    (["--bogus"], r"unrecognized arguments: --bogus"),
    (None, r"the following arguments are required: --out"),
])
def test_cli_bad_arguments_exit_2_with_one_line(args, match, tmp_path, capsys):
    argv = ["--num-train", "1"] if args is None else ["--out", str(tmp_path / "o"), *args]
    with pytest.raises(SystemExit) as exit_info:
        synth.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and re.search(match, err), err


def test_cli_module_writes_a_set_and_rejects_bad_input(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "baseres.data.synth", "--out", str(tmp_path / "cli")]
    ok = subprocess.run([*cmd, "--num-train", "2", "--num-val", "1", "--num-test", "1"],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == str(tmp_path / "cli")
    assert synth.read_manifest(tmp_path / "cli")["num_samples"] == 4
    bad = subprocess.run([*cmd, "--num-val=-3"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "python -m baseres.data.synth: error: argument --num-val: must be >= 0, got -3 "
        "(see --help)"]


def test_cli_help_explains_the_layout(capsys):
    with pytest.raises(SystemExit) as exit_info:
        synth.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "BatVision V2" in text and "--num-train" in text and "--workers" in text


def test_in_memory_sample_matches_written_files(small_set):
    sample = synth.make_sample(SMALL, 7)
    paths = synth.sample_paths(small_set, sample.location, 7)
    audio, rate = sf.read(paths["audio"], dtype="int32")
    assert rate == synth.SAMPLE_RATE
    np.testing.assert_array_equal(audio, sample.audio)
    np.testing.assert_array_equal(np.load(paths["depth"]), sample.depth)
    with Image.open(io.BytesIO(paths["camera"].read_bytes())) as image:
        assert image.size == (sample.camera.shape[1], sample.camera.shape[0])
