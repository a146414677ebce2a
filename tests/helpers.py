"""Plain helpers the tests import (``from helpers import ...``); fixtures live in conftest.py."""

from pathlib import Path

import numpy as np

from baseres.config import TrainConfig
from baseres.data.cache import SplitArrays

FIXTURE_ROOT = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "batvision_v2"


def tiny_config(**changes) -> TrainConfig:
    """A model small enough to train in well under a second per epoch."""
    values = dict(base_channels=8, image_size=32, batch_size=8, epochs=2, progress=False,
                  image_every=1, num_threads=1)
    values.update(changes)
    return TrainConfig(**values)


def random_split(n: int, size: int, seed: int = 0) -> SplitArrays:
    """Learnable toy data: depth is a smooth function of the feature image, with holes."""
    rng = np.random.default_rng(seed)
    features = rng.random((n, 2, size, size), dtype=np.float32)
    level = features.mean(axis=(1, 2, 3), keepdims=True)[:, :1] * 10.0 + 1.0
    depth = np.broadcast_to(level, (n, 1, size, size)).astype(np.float32).copy()
    depth[:, :, : size // 8, : size // 8] = 0.0  # an invalid corner, as real sensors have
    return SplitArrays(features=features, depth=depth)


def make_v2_root(root: Path, per_split: int = 2, location: str = "Room_A",
                 rate: int = 44100, frames: int = 20000) -> Path:
    """A tiny data set in the released V2 layout: noise WAVs and random uint16 depth."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    header = ("index,time,left audio time,right audio time,audio path,audio file name,"
              "camera time,camera path,camera file name,depth time,depth path,depth file name")
    for sub in ("audio", "depth"):
        (root / location / sub).mkdir(parents=True, exist_ok=True)
    index = 0
    for split in ("train", "val", "test"):
        rows = [header]
        for _ in range(per_split):
            audio = (rng.standard_normal((frames, 2)) * 2**28).astype(np.int32)
            sf.write(root / location / "audio" / f"audio_{index}.wav", audio, rate,
                     subtype="PCM_32")
            depth = rng.integers(500, 9000, size=(18, 32)).astype(np.uint16)
            depth[:4, :4] = 0
            np.save(root / location / "depth" / f"depth_{index}.npy", depth)
            rows.append(f"{index},0,0,0,{location}/audio/,audio_{index}.wav,0,{location}/camera/,"
                        f"camera_{index}.jpeg,0,{location}/depth/,depth_{index}.npy")
            index += 1
        (root / location / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return root
