"""The on-disk feature cache: each (data set, split, feature settings) is preprocessed once.

Features and resized depth are stored as .npy arrays that later runs memory-map read-only, so N
trials on a node cost one preprocessing and the page cache holds one copy. The folder name is a
hash of the inputs (settings, file list, each file's size, mtime, ctime and inode), so edited
data is never served stale; a folder is built under a file lock in a temporary sibling and
renamed into place, and one whose arrays do not match its manifest (e.g. truncated) is rebuilt,
never read.
"""

from __future__ import annotations

import hashlib
import json
import logging
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
    SPLITS,
    DataError,
    SampleRef,
    list_v1_samples,
    list_v2_samples,
    load_depth_mm,
    load_waveform,
    v2_locations,
)
from baseres.data.features import FeatureSettings, depth_to_metres, waveform_to_features
from baseres.data.home import cache_home

MANIFEST = "manifest.json"
# The splits load_split serves: the released three, and the test rows of the training places
# (equal to "test" unless test_locations holds places out).
SPLIT_NAMES = ("train", "val", "test", "test_seen")
LOCATION_KEYS = ("locations", "val_locations", "test_locations")
logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class LocationPlan:
    """Which places each split reads (BatVision V2 layout)."""

    seen: tuple[str, ...] | None  # training places; None = every location folder (as released)
    val: tuple[str, ...] | None  # held-out val places (all their rows); None = seen val rows
    test: tuple[str, ...] | None  # held-out test places (all their rows); None = seen test rows


def check_locations(cfg: TrainConfig, root: str | os.PathLike) -> LocationPlan | None:
    """Validate the configured locations against the data root, before any feature work.

    Every name in ``locations``, ``val_locations`` and ``test_locations`` must be a location
    folder of ``root`` (one holding split CSVs); the unknown ones are named in one DataError
    with the root. BatVision V1 has no locations, so setting any of them is an error. Returns
    the places each split reads (None for V1).
    """
    root = Path(root)
    given = {key: getattr(cfg, key) for key in LOCATION_KEYS if getattr(cfg, key) is not None}
    if cfg.dataset == "batvisionv1":
        if given:
            raise DataError(f"{' and '.join(given)} need the BatVision V2 layout (dataset "
                            "batvisionv2 or synthetic), but dataset is batvisionv1, which has "
                            "no location folders")
        return None
    known = v2_locations(root)
    unknown = [f"{name!r} ({key})" for key, names in given.items() for name in names
               if name not in known]
    if unknown:
        raise DataError(f"{root}: unknown location{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(unknown)}: no folder of that name with train/val/test.csv "
                        f"under the data root; its locations are {known}")
    held = set(cfg.val_locations or ()) | set(cfg.test_locations or ())
    if not held:
        return LocationPlan(tuple(cfg.locations) if cfg.locations else None, None, None)
    pool = cfg.locations if cfg.locations is not None else known
    seen = tuple(name for name in pool if name not in held)
    if not seen:
        raise DataError(f"{root}: no location left to train on: val_locations "
                        f"{cfg.val_locations} and test_locations {cfg.test_locations} hold out "
                        f"every one of {list(pool)}")
    return LocationPlan(seen, tuple(cfg.val_locations) if cfg.val_locations else None,
                        tuple(cfg.test_locations) if cfg.test_locations else None)


def sample_refs(cfg: TrainConfig, root: Path, split: str) -> list[SampleRef]:
    """The samples of one split (see SPLIT_NAMES), after ``check_locations``.

    Without held-out places, the released per-location splits: each split's CSV rows of the
    chosen locations (all by default). With ``val_locations`` / ``test_locations``: "val" /
    "test" are every row (train.csv, val.csv and test.csv) of those places, and the other
    splits read only the remaining places, so "train" never holds a held-out place.
    "test_seen" is the test rows of the training places ("test" when test_locations is unset).
    """
    if split not in SPLIT_NAMES:
        raise ValueError(f"split must be one of {SPLIT_NAMES}, but got {split!r}")
    plan = check_locations(cfg, root)
    csv_split = "test" if split == "test_seen" else split
    if plan is None:
        return list_v1_samples(root, csv_split)
    held = {"val": plan.val, "test": plan.test}.get(split)
    if held is not None:
        return [ref for name in held for part in SPLITS
                if (Path(root) / name / f"{part}.csv").is_file()
                for ref in list_v2_samples(root, part, [name])]
    if plan.seen is None:
        return list_v2_samples(root, csv_split, None)
    names = list(plan.seen)
    if cfg.locations is None:  # like the released reading: the folders holding this CSV
        names = [name for name in names if (Path(root) / name / f"{csv_split}.csv").is_file()]
        if not names:
            raise DataError(f"{root}: no training location holds {csv_split}.csv")
    return list_v2_samples(root, csv_split, names)


def _file_stamp(path: Path) -> list:
    """What changes when a file is edited. mtime alone does not: cp -p, rsync -t and tar set
    it back; ctime (which no user tool sets) and the inode (a file replaced) do."""
    try:
        stat = path.stat()
        return [str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
    except OSError:
        return [str(path), -1, -1, -1, -1]


def cache_key(refs: list[SampleRef], settings: FeatureSettings, skip_bad: bool) -> str:
    inputs = {"settings": settings.as_dict(), "skip_bad_samples": skip_bad,
              "files": [[_file_stamp(p) for p in ref.files] for ref in refs]}
    return hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:20]


def _manifest_matches(folder: Path) -> dict | None:
    """The manifest if the folder is complete and every array has its recorded size."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        int(manifest["valid_images"])  # an entry from before this count: rebuilt
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
    skipped, kept, valid = [], 0, 0
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
        valid += bool((depth[kept] > 0).any())
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
    return tmp, skipped, valid


def load_split(cfg: TrainConfig, split: str, root: Path | None = None, progress: bool = True
               ) -> SplitArrays:
    """Features and depth of one split (see ``sample_refs``), from the cache or computed once
    and cached; the cache entry is keyed by the split's files, so held-out splits get their
    own."""
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
    if arrays.skipped:  # a warning, not a log record: the caller can fix the files
        warnings.warn(f"{root}: skipped {len(arrays.skipped)} bad sample(s) of split {split!r}: "
                      + "; ".join(arrays.skipped), stacklevel=2)
    if len(arrays) == 0:
        raise DataError(f"{root}: split {split!r} has no readable sample")
    if manifest["valid_images"] == 0:  # else every trial fails at its first validation
        rule = "a split must hold at least one valid (nonzero) depth pixel"
        raise DataError(f"{root}: split {split!r}: {rule}, but the depth of all its "
                        f"{len(arrays)} samples is 0 (invalid) after resizing to "
                        f"{settings.image_size} px", key=str(root), rule=rule, value=0)
    return arrays


def _build(folder, refs, settings, skip_bad, progress, root, split) -> dict:
    if folder.exists():  # incomplete or damaged: never read, rebuild from the sources
        shutil.rmtree(folder)
    if progress:
        logger.info("baseres: features of split %r (%s samples) into %s", split, len(refs),
                    folder)
    tmp, skipped, valid = _compute(refs, settings, skip_bad, progress, str(folder))
    manifest = {
        "root": str(root), "split": split, "settings": settings.as_dict(),
        "samples": len(refs) - len(skipped), "skipped": skipped, "built_by_pid": os.getpid(),
        "valid_images": valid,  # samples with at least one valid depth pixel
        "arrays": {name: {"bytes": (tmp / name).stat().st_size,
                          "shape": list(np.load(tmp / name, mmap_mode="r").shape)}
                   for name in ("features.npy", "depth.npy")},
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, folder)
    return manifest
