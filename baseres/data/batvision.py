"""Readers for the released BatVision layouts.

V2: ``<root>/<Location>/{audio,depth,camera}/...`` with ``train.csv``/``val.csv``/``test.csv`` in
each location; CSV paths are relative to root (``root / <x path> / <x file name>``).
V1: ``<root>/{train,val,test}.csv`` naming per-channel ``.npy`` waveforms and ``.npy`` depth.
Every failure names the file and the problem.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from baseres.errors import UserError

SAMPLE_RATE = 44100
SPLITS = ("train", "val", "test")
V2_COLUMNS = ("audio path", "audio file name", "depth path", "depth file name")
V1_COLUMNS = ("audio path left", "audio path right", "depth path")


class DataError(UserError):
    """A data set file is missing, unreadable or malformed; the message names it.

    `key` is the file or folder at fault."""


@dataclass(frozen=True)
class SampleRef:
    """Where one sample's files are. V2 has one stereo WAV; V1 has one .npy per ear."""

    audio: tuple[Path, ...]
    depth: Path

    @property
    def files(self) -> tuple[Path, ...]:
        return (*self.audio, self.depth)


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name.
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in required if c not in columns]
            if missing:
                raise DataError(f"{path}: missing CSV column(s) {missing}; columns are {columns}")
            return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    except OSError as err:
        raise DataError(f"{path}: cannot read split file: {err.strerror}") from None
    except csv.Error as err:
        raise DataError(f"{path}: malformed CSV: {err}") from None
    except UnicodeDecodeError as err:
        rule = "a split CSV must be UTF-8 text"
        raise DataError(f"{path}: {rule} (save it as UTF-8), but it holds byte "
                        f"{err.object[err.start]:#04x}, which is not ({err.reason})",
                        key=str(path), rule=rule, value=err.object[err.start:err.end]) from None


def _check_root(root: Path) -> Path:
    if not root.is_dir():
        raise DataError(f"{root}: data root does not exist or is not a folder")
    return root


def v2_locations(root: str | Path) -> list[str]:
    """The location folders of a V2 root: those holding at least one split CSV, sorted."""
    root = _check_root(Path(root))
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and any((p / f"{split}.csv").is_file() for split in SPLITS))


def list_v2_samples(root: str | Path, split: str, locations: list[str] | None = None
                    ) -> list[SampleRef]:
    """All samples of `split` over the chosen locations (all folders holding split CSVs if None)."""
    root = _check_root(Path(root))
    if locations is None:
        folders = sorted(p for p in root.iterdir() if (p / f"{split}.csv").is_file())
        if not folders:
            raise DataError(f"{root}: no location folder holds {split}.csv "
                            "(not a BatVision V2 root)")
    else:
        folders = [root / name for name in locations]
        for folder in folders:
            if not (folder / f"{split}.csv").is_file():
                raise DataError(f"{folder / f'{split}.csv'}: location's split file does not exist")
    refs = []
    for folder in folders:
        for row in _read_csv(folder / f"{split}.csv", V2_COLUMNS):
            refs.append(SampleRef(
                audio=(root / row["audio path"] / row["audio file name"],),
                depth=root / row["depth path"] / row["depth file name"],
            ))
    return refs


def list_v1_samples(root: str | Path, split: str) -> list[SampleRef]:
    root = _check_root(Path(root))
    rows = _read_csv(root / f"{split}.csv", V1_COLUMNS)
    return [SampleRef(audio=(root / row["audio path left"], root / row["audio path right"]),
                      depth=root / row["depth path"]) for row in rows]


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: file does not exist") from None
    except (OSError, ValueError, EOFError) as err:
        # numpy says "allow_pickle=False" of any file that is not an array, which reads as
        # advice to unpickle it: the rule is what matters
        why = ("not a NumPy .npy array (its first bytes are no .npy header)"
               if "pickle" in str(err) else str(err))
        raise DataError(f"{path}: unreadable .npy file: {why}") from None


def load_waveform(ref: SampleRef) -> np.ndarray:
    """2 x T float32 waveform (left, right) at SAMPLE_RATE."""
    if len(ref.audio) == 2:  # V1: one mono .npy per ear
        ears = [_load_npy(p).astype(np.float32).reshape(-1) for p in ref.audio]
        length = min(len(e) for e in ears)
        return np.stack([e[:length] for e in ears])
    path = ref.audio[0]
    if not path.is_file():
        raise DataError(f"{path}: file does not exist")
    try:
        _check_wav_length(path)
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise DataError(f"{path}: unreadable WAV: {err}") from None
    if rate != SAMPLE_RATE:
        raise DataError(f"{path}: sample rate must be {SAMPLE_RATE} Hz, but got {rate}")
    if data.shape[1] != 2:
        raise DataError(f"{path}: audio must have 2 channels (left, right), "
                        f"but got {data.shape[1]}")
    if data.shape[0] == 0:
        raise DataError(f"{path}: audio has no frames")
    return np.ascontiguousarray(data.T)


def _check_wav_length(path: Path) -> None:
    """Refuse a RIFF WAV whose data chunk is shorter than its header says (a cut copy):
    libsndfile reads the frames that are there, and the features pad the cut with silence."""
    with path.open("rb") as handle:
        if handle.read(12)[8:] != b"WAVE":
            return  # not RIFF WAVE (e.g. RF64): libsndfile judges it alone
        size, frame = path.stat().st_size, 0
        while len(header := handle.read(8)) == 8:
            declared = int.from_bytes(header[4:], "little")
            if header[:4] == b"data":
                held = size - handle.tell()
                if held < declared:
                    rule = "a WAV file must hold the frames its data chunk declares"
                    frames = (f"{declared // frame} frames, but the file holds {held // frame}"
                              if frame else f"{declared} bytes, but the file holds {held}")
                    raise DataError(f"{path}: truncated WAV: its header declares {frames}",
                                    key=str(path), rule=rule,
                                    value=held // frame if frame else held)
                return
            body = handle.read(declared + declared % 2)  # chunks are padded to even sizes
            if header[:4] == b"fmt ":
                frame = int.from_bytes(body[12:14], "little")  # the block align: one frame


def load_depth_mm(ref: SampleRef) -> np.ndarray:
    """H x W depth in millimetres as float32. V1: NaN, inf and negatives become 0 (invalid);
    V2: NaN or inf is an error (its files are uint16)."""
    depth = _load_npy(ref.depth)
    if depth.ndim == 3 and depth.shape[0] == 1:
        depth = depth[0]
    if depth.ndim != 2 or min(depth.shape) < 2:
        raise DataError(f"{ref.depth}: depth must be a 2-D H x W array, "
                        f"but got shape {depth.shape}")
    if not np.issubdtype(depth.dtype, np.number):
        raise DataError(f"{ref.depth}: depth must be numeric, but got dtype {depth.dtype}")
    depth = depth.astype(np.float32)
    broken = ~np.isfinite(depth)
    if len(ref.audio) == 1 and broken.any():  # V2 depth is uint16: NaN means a damaged file
        raise DataError(f"{ref.depth}: depth holds {int(broken.sum())} NaN or infinite values "
                        "(BatVision V2 depth is uint16 millimetres)")
    depth[broken | (depth < 0)] = 0.0  # V1 marks missing depth with NaN/inf: invalid pixels
    return depth
