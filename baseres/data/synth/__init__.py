"""Synthetic echo rooms written in the released BatVision V2 layout.

Like BatVision V2, a location is one place recorded from many robot poses: each of the
``len(styles) * rooms_per_style`` location folders (by default 16: ``Office_1`` ..
``Office_4``, ``Corridor_1`` .. ``Corridor_4``, ``Hall_1`` .. ``Hall_4``, ``Storage_1`` ..
``Storage_4``) is one fixed shoebox room with up to four box obstacles, and its samples are
views of it from different poses, each seen by a pinhole depth camera and heard by a binaural
receiver. Depth comes from ray casting; the echoes come from the same geometry (direct
sound, first-order image sources of every wall and box face, diffuse scattering along a few
thousand rays, and a reverberant tail), so echoes and depth agree by construction. The
recordings start ``latency_frames`` before the chirp is emitted, so the direct sound arrives
6.39 ms (282 frames) into the file, as in the real V2 sample. The output is the V2 layout that
``baseres.data.batvision`` reads, so one reader serves real and synthetic data::

    <root>/<Location>/{audio/audio_<i>.wav, depth/depth_<i>.npy, camera/camera_<i>.jpeg,
                       train.csv, val.csv, test.csv}
    <root>/manifest.json      written last: a set without it is incomplete

Sample ``i`` belongs to location ``i % num_locations`` and to the split whose index range
holds it (train, then val, then test), so every location has its own train/val/test rows,
split by pose in the set's proportions. A location's room depends only on ``(seed,
location)`` and sample ``i``'s pose only on ``(seed, i)``, never on the split sizes or on
which other samples are generated, so generation parallelises and resumes.

Modules: ``params`` (SynthParams, locations, splits), ``scene`` (rooms, poses, ray casting),
``sensor`` (depth and camera), ``acoustics`` (the recording), ``writer`` (files, manifest,
generation, the cached default set), ``cli`` (``python -m baseres.data.synth``).
"""

from baseres.data.synth.acoustics import (
    CHIRP_F0,
    CHIRP_F1,
    CHIRP_SECONDS,
    chirp,
    impulse_response,
    render_audio,
    to_pcm32,
)
from baseres.data.synth.cli import main
from baseres.data.synth.params import (
    DEFAULT_LATENCY_FRAMES,
    GENERATOR_VERSION,
    NUM_FRAMES,
    REAL_DIRECT_ONSET_FRAMES,
    SAMPLE_RATE,
    SPLITS,
    STYLES,
    RoomStyle,
    SynthParams,
    location_names,
    location_of,
    locations,
    split_counts,
    split_of,
    split_range,
    style_of,
)
from baseres.data.synth.scene import Box, Room, Scene, cast_rays, location_room, sample_scene
from baseres.data.synth.sensor import render_camera, render_depth, sensor_depth
from baseres.data.synth.writer import (
    CSV_COLUMNS,
    MANIFEST,
    Sample,
    default_root,
    ensure_synthetic,
    generate,
    make_sample,
    manifest,
    read_manifest,
    sample_paths,
    write_samples,
)

__all__ = [
    "CHIRP_F0", "CHIRP_F1", "CHIRP_SECONDS", "CSV_COLUMNS", "DEFAULT_LATENCY_FRAMES",
    "GENERATOR_VERSION", "MANIFEST", "NUM_FRAMES", "REAL_DIRECT_ONSET_FRAMES", "SAMPLE_RATE",
    "SPLITS", "STYLES", "Box", "Room", "RoomStyle", "Sample", "Scene", "SynthParams",
    "cast_rays", "chirp", "default_root", "ensure_synthetic", "generate", "impulse_response",
    "location_names", "location_of", "location_room", "locations", "main", "make_sample",
    "manifest", "read_manifest", "render_audio", "render_camera", "render_depth",
    "sample_paths", "sample_scene", "sensor_depth", "split_counts", "split_of", "split_range",
    "style_of", "to_pcm32", "write_samples",
]
