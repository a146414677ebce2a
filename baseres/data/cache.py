"""The on-disk feature cache: each (data set, split, feature settings) is preprocessed once.

Features and resized depth are stored as .npy arrays that later runs memory-map read-only, so N
trials on a node cost one preprocessing and the page cache holds one copy. The folder name is a
hash of the inputs (settings, file list, each file's size and mtime), so edited data is never
served stale; a folder is built under a file lock in a temporary sibling and renamed into place,
and one whose arrays do not match its manifest (e.g. truncated) is rebuilt, never read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from filelock import FileLock
from numpy.lib.format import open_memmap
from tqdm import tqdm

from baseres.config import TrainConfig
from baseres.data.batvision import (
    DataError,
    SampleRef,
    list_v1_samples,
    list_v2_samples,
    load_depth_mm,
    load_waveform,
)
from baseres.data.features import FeatureSettings, depth_to_metres, waveform_to_features

MANIFEST = "manifest.json"


def cache_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "baseres"


@dataclass
class SplitArrays:
    """One split, ready to train on: N x 2 x S x S features and N x 1 x S x S depth (metres)."""

    features: np.ndarray
    depth: np.ndarray
    folder: Path | None = None
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.features)


def resolve_data_root(cfg: TrainConfig, progress: bool = True) -> Path:
    """The data set folder: the configured root, or the generated synthetic set."""
    if cfg.data_root is not None:
        return Path(cfg.data_root).expanduser().resolve()
    if cfg.dataset == "synthetic":
        from baseres.data.synth import ensure_synthetic

        return ensure_synthetic(progress=progress)
    raise DataError(f"dataset {cfg.dataset!r} needs a data root (--data-root / data_root)")


def sample_refs(cfg: TrainConfig, root: Path, split: str) -> list[SampleRef]:
    if cfg.dataset == "batvisionv1":
        return list_v1_samples(root, split)
    return list_v2_samples(root, split, cfg.locations)


def _file_stamp(path: Path) -> list:
    try:
        stat = path.stat()
        return [str(path), stat.st_size, stat.st_mtime_ns]
    except OSError:
        return [str(path), -1, -1]


def cache_key(refs: list[SampleRef], settings: FeatureSettings, skip_bad: bool) -> str:
    inputs = {"settings": settings.as_dict(), "skip_bad_samples": skip_bad,
              "files": [[_file_stamp(p) for p in ref.files] for ref in refs]}
    return hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:20]


def _manifest_matches(folder: Path) -> dict | None:
    """The manifest if the folder is complete and every array has its recorded size."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        for name, info in manifest["arrays"].items():
            path = folder / name
            if path.stat().st_size != info["bytes"]:
                return None
            array = np.load(path, mmap_mode="r")
            if list(array.shape) != info["shape"]:
                return None
        return manifest
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _open(folder: Path, manifest: dict) -> SplitArrays:
    return SplitArrays(features=np.load(folder / "features.npy", mmap_mode="r"),
                       depth=np.load(folder / "depth.npy", mmap_mode="r"),
                       folder=folder, skipped=manifest.get("skipped", []))


def _compute(refs, settings, skip_bad, progress, label):
    """Write features and depth for every readable sample into a fresh temporary folder."""
    tmp = Path(f"{label}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        return _fill(tmp, refs, settings, skip_bad, progress, label)
    except BaseException:  # Ctrl-C, a full disk, a bad sample: never leave a half folder
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fill(tmp, refs, settings, skip_bad, progress, label):
    size = settings.image_size
    features = open_memmap(tmp / "features.npy", "w+", np.float32, (len(refs), 2, size, size))
    depth = open_memmap(tmp / "depth.npy", "w+", np.float32, (len(refs), 1, size, size))
    skipped, kept = [], 0
    show = progress and sys.stderr.isatty()
    for ref in tqdm(refs, desc=f"features {Path(label).name[:28]}", disable=not show,
                    unit="sample", leave=False):
        try:
            features[kept] = waveform_to_features(load_waveform(ref), settings).numpy()
            depth[kept] = depth_to_metres(load_depth_mm(ref), settings).numpy()
        except DataError as err:
            if not skip_bad:
                raise
            skipped.append(str(err))
            continue
        kept += 1
    features.flush()
    depth.flush()
    del features, depth
    if skipped:  # shrink the arrays to the samples that were kept
        for name in ("features.npy", "depth.npy"):
            full = np.load(tmp / name, mmap_mode="r")
            np.save(tmp / f"kept-{name}", full[:kept])
            del full
            os.replace(tmp / f"kept-{name}", tmp / name)
    return tmp, skipped


def load_split(cfg: TrainConfig, split: str, root: Path | None = None, progress: bool = True
               ) -> SplitArrays:
    """Features and depth of one split, from the cache or computed once and cached."""
    root = root or resolve_data_root(cfg, progress=progress)
    refs = sample_refs(cfg, root, split)
    if not refs:
        raise DataError(f"{root}: split {split!r} lists no samples")
    settings = FeatureSettings.from_config(cfg)
    key = cache_key(refs, settings, cfg.skip_bad_samples)
    folder = cache_home() / "features" / f"{split}-{key}"
    manifest = _manifest_matches(folder)
    if manifest is None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder) + ".lock"):
            manifest = _manifest_matches(folder)  # another process may have built it meanwhile
            if manifest is None:
                manifest = _build(folder, refs, settings, cfg.skip_bad_samples, progress, root,
                                  split)
    arrays = _open(folder, manifest)
    if arrays.skipped:
        warnings.warn(f"{root}: skipped {len(arrays.skipped)} bad sample(s) of split {split!r}: "
                      + "; ".join(arrays.skipped), stacklevel=2)
    if len(arrays) == 0:
        raise DataError(f"{root}: split {split!r} has no readable sample")
    return arrays


def _build(folder, refs, settings, skip_bad, progress, root, split) -> dict:
    if folder.exists():  # incomplete or damaged: never read, rebuild from the sources
        shutil.rmtree(folder)
    print(f"baseres: computing the features of split {split!r} ({len(refs)} samples) into "
          f"{folder}", file=sys.stderr, flush=True)
    tmp, skipped = _compute(refs, settings, skip_bad, progress, str(folder))
    manifest = {
        "root": str(root), "split": split, "settings": settings.as_dict(),
        "samples": len(refs) - len(skipped), "skipped": skipped, "built_by_pid": os.getpid(),
        "arrays": {name: {"bytes": (tmp / name).stat().st_size,
                          "shape": list(np.load(tmp / name, mmap_mode="r").shape)}
                   for name in ("features.npy", "depth.npy")},
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, folder)
    return manifest
