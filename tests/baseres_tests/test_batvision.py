"""baseres.data.batvision: the BatVision V1 and V2 readers, and each bad file or data root
named in one line."""

import numpy as np
import pytest
import soundfile as sf
from helpers import make_v2_root, tiny_config

from baseres.data.batvision import (
    DataError,
    list_v1_samples,
    list_v2_samples,
    load_depth_mm,
    load_waveform,
)
from baseres.data.cache import load_split


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
