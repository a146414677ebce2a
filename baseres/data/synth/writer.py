"""Samples in memory and on disk: the BatVision V2 layout, its CSVs and manifest, resumable
generation, and the generated-on-first-use cache copy."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import soundfile as sf
from filelock import FileLock
from PIL import Image
from tqdm import tqdm

from baseres.atomic import write_bytes_atomic
from baseres.data.batvision import DataError
from baseres.data.home import cache_home
from baseres.data.synth.acoustics import (
    CHIRP_F0,
    CHIRP_F1,
    CHIRP_SECONDS,
    render_audio,
    to_pcm32,
)
from baseres.data.synth.params import (
    GENERATOR_VERSION,
    NUM_FRAMES,
    SAMPLE_RATE,
    SPLITS,
    STYLES,
    SynthParams,
    location_of,
    locations,
    split_range,
)
from baseres.data.synth.scene import Scene, location_room, sample_scene
from baseres.data.synth.sensor import render_camera, render_depth, sensor_depth

CSV_COLUMNS = (
    "index", "time", "left audio time", "right audio time",
    "audio path", "audio file name", "camera time", "camera path", "camera file name",
    "depth time", "depth path", "depth file name",
)
MANIFEST = "manifest.json"
logger = logging.getLogger(__name__)
# Written at the start of a generation; a resumed run refuses a folder begun with other params.
_IN_PROGRESS = ".synth-in-progress.json"
# Placeholder clock for the CSV time columns (the fixture uses the same epoch).
_EPOCH = 1679068800.0


@dataclass
class Sample:
    index: int
    location: str
    scene: Scene
    audio: np.ndarray  # (NUM_FRAMES, 2) int32
    depth: np.ndarray  # (H, W) uint16 mm, 0 = invalid
    camera: np.ndarray  # (H, W, 3) uint8


def make_sample(params: SynthParams, index: int) -> Sample:
    """Sample ``index`` in memory: its location's room (from the seed and the location) seen
    from a pose drawn from ``(params.seed, index)``; no other sample is involved."""
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    rng = np.random.default_rng([params.seed, index])
    scene = sample_scene(params, index, rng)
    z, surface, cos_in = render_depth(scene, params)
    depth = sensor_depth(z, cos_in, params, rng)
    camera = render_camera(scene, z, surface, cos_in)
    audio = to_pcm32(render_audio(scene, params, rng))
    return Sample(index, location_of(params, index), scene, audio, depth, camera)


def sample_paths(root: Path, location: str, index: int) -> dict[str, Path]:
    base = Path(root) / location
    return {
        "audio": base / "audio" / f"audio_{index}.wav",
        "depth": base / "depth" / f"depth_{index}.npy",
        "camera": base / "camera" / f"camera_{index}.jpeg",
    }


def _encode(sample: Sample) -> dict[str, bytes]:
    wav = io.BytesIO()
    sf.write(wav, sample.audio, SAMPLE_RATE, subtype="PCM_32", format="WAV")
    npy = io.BytesIO()
    np.save(npy, sample.depth, allow_pickle=False)
    jpeg = io.BytesIO()
    Image.fromarray(sample.camera, "RGB").save(jpeg, format="JPEG", quality=90)
    return {"audio": wav.getvalue(), "depth": npy.getvalue(), "camera": jpeg.getvalue()}


def write_samples(root: Path, params: SynthParams, indices: Iterable[int]) -> int:
    """Write the given samples (skipping complete ones); returns how many were processed."""
    count = 0
    for index in indices:
        paths = sample_paths(root, location_of(params, index), index)
        if not all(p.exists() for p in paths.values()):
            for kind, data in _encode(make_sample(params, index)).items():
                write_bytes_atomic(paths[kind], data)
        count += 1
    return count


def _csv_bytes(params: SynthParams, location: str, split: str) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)  # "\r\n" line ends, like the released CSVs
    writer.writerow(CSV_COLUMNS)
    for index in split_range(params, split):
        if location_of(params, index) != location:
            continue
        time = repr(_EPOCH + 0.5 * index)
        writer.writerow([
            index, time, time, time,
            f"{location}/audio/", f"audio_{index}.wav",
            time, f"{location}/camera/", f"camera_{index}.jpeg",
            time, f"{location}/depth/", f"depth_{index}.npy",
        ])
    return text.getvalue().encode()


def manifest(params: SynthParams) -> dict:
    counts = {
        loc: {s: sum(1 for i in split_range(params, s) if location_of(params, i) == loc)
              for s in SPLITS}
        for loc in locations(params)
    }
    return {
        "generator": "baseres.data.synth",
        "generator_version": GENERATOR_VERSION,
        "digest": params.digest(),
        "seed": params.seed,
        "params": params.to_dict(),
        "styles": {name: dataclasses.asdict(STYLES[name]) for name in params.styles},
        "layout": "BatVision V2",
        "num_samples": params.num_samples,
        "locations": counts,  # samples (robot poses) per location and split
        "rooms": {loc: location_room(params, loc).to_dict() for loc in locations(params)},
        "audio": {"sample_rate": SAMPLE_RATE, "frames": NUM_FRAMES, "channels": 2,
                  "subtype": "PCM_32", "chirp": [CHIRP_SECONDS, CHIRP_F0, CHIRP_F1],
                  "latency_frames": params.latency_frames},
        "depth": {"height": params.depth_height, "width": params.depth_width,
                  "dtype": "uint16", "unit": "mm", "invalid": 0},
    }


def read_manifest(root: Path) -> dict | None:
    path = Path(root) / MANIFEST
    if not path.exists():
        return None
    return json.loads(path.read_text())


def _chunks(items: Sequence[int], size: int) -> list[list[int]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def generate(
    out_dir: str | os.PathLike, params: SynthParams, workers: int = 1, progress: bool = True
) -> Path:
    """Write the data set into ``out_dir``; resumes a run interrupted with the same params.

    Samples whose three files exist are kept (files are written atomically, so existing ones
    are complete). The CSVs and, last, the manifest are rewritten at the end. ``workers > 1``
    spawns processes (the bytes do not change), which re-imports the caller's main module:
    call it from under ``if __name__ == "__main__":``.
    """
    return _generate(Path(out_dir), params, workers, progress, announce=Path(out_dir))


def _generate(
    out: Path, params: SynthParams, workers: int, progress: bool, announce: Path
) -> Path:
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    digest = params.digest()
    found = read_manifest(out)
    marker = out / _IN_PROGRESS
    if found is None and marker.exists():
        found = json.loads(marker.read_text())
    if found is not None and found.get("digest") != digest:
        raise ValueError(
            f"{out} holds a synthetic set with digest {found.get('digest')!r}, but these params "
            f"have digest {digest!r}: use another folder or delete it"
        )
    for loc in locations(params):
        for kind in ("audio", "depth", "camera"):
            (out / loc / kind).mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        write_bytes_atomic(marker, json.dumps({"digest": digest}).encode())
    if progress:
        logger.info("baseres: generating %s synthetic samples (seed %s, generator %s) into %s",
                    params.num_samples, params.seed, GENERATOR_VERSION, announce)

    todo = range(params.num_samples)
    bar = tqdm(total=len(todo), desc="synthetic data", unit="sample",
               disable=not (progress and sys.stderr.isatty()))
    with bar:
        if workers == 1:
            for index in todo:
                bar.update(write_samples(out, params, [index]))
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                jobs = _chunks(todo, 32)
                for done in pool.map(write_samples, [out] * len(jobs), [params] * len(jobs),
                                     jobs):
                    bar.update(done)

    for loc in locations(params):
        for split in SPLITS:
            write_bytes_atomic(out / loc / f"{split}.csv", _csv_bytes(params, loc, split))
    write_bytes_atomic(out / MANIFEST, (json.dumps(manifest(params), indent=2) + "\n").encode())
    marker.unlink()
    return out


# --------------------------------------------------------------------------- cache


def default_root(params: SynthParams | None = None) -> Path:
    """$XDG_CACHE_HOME/baseres/synthetic-<digest> (else ~/.cache/baseres/...)."""
    params = params or SynthParams()
    return cache_home() / f"synthetic-{params.digest()}"


def _complete(root: Path, params: SynthParams) -> bool:
    found = read_manifest(root)
    if found is None:
        return False
    if found.get("digest") != params.digest():
        raise DataError(
            f"{root} holds a synthetic set with digest {found.get('digest')!r}, but these params "
            f"have digest {params.digest()!r}: pass another root"
        )
    return True


def ensure_synthetic(
    params: SynthParams | None = None,
    root: str | os.PathLike | None = None,
    progress: bool = True,
    workers: int = 1,
) -> Path:
    """The ready synthetic set, generated on first use.

    Generation runs under a file lock next to ``root`` into a sibling ``.<name>.partial``
    folder (resumed if an earlier run died) that is renamed into place when complete, so
    concurrent callers generate once and never see a half-written set. One process by
    default (about 20 s for the default 1500 samples): worker processes are spawned, which
    re-imports the caller's main module, so only pass ``workers`` from guarded code.
    """
    params = params or SynthParams()
    root = Path(root) if root is not None else default_root(params)
    if _complete(root, params):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root.parent / f"{root.name}.lock")):
        if _complete(root, params):
            return root
        if root.exists():
            if any(root.iterdir()):
                raise DataError(
                    f"{root} exists and is not a complete synthetic set (no {MANIFEST}): "
                    "pass another root or delete it"
                )
            root.rmdir()
        partial = root.parent / f".{root.name}.partial"
        marker = partial / _IN_PROGRESS
        # Only this lock holder writes here, so a partial set from other params is stale.
        if partial.exists() and (not marker.exists() or
                                 json.loads(marker.read_text()).get("digest") != params.digest()):
            shutil.rmtree(partial)
        _generate(partial, params, workers, progress, announce=root)
        os.replace(partial, root)
    return root


