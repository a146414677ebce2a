"""``python -m baseres.data.synth``: write a synthetic set into a folder."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from baseres.cli import OneLineParser
from baseres.data.synth.params import SynthParams, location_names
from baseres.data.synth.writer import generate


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _nonneg(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    defaults = SynthParams()
    parser = OneLineParser(
        prog="python -m baseres.data.synth",
        description=(
            "Generate the synthetic echo-room data set in the BatVision V2 layout: "
            f"{len(location_names(defaults))} locations ({defaults.rooms_per_style} rooms of "
            f"each style: {', '.join(defaults.styles)}), each one fixed room recorded from "
            "many robot poses, with audio/ (stereo 44.1 kHz 32-bit PCM WAV), depth/ (uint16 "
            "mm, 0 = invalid), camera/ (JPEG) and its own train/val/test.csv split by pose; "
            "manifest.json is written last. About 240 kB per sample, most of it audio. "
            "Output is deterministic in the seed; an interrupted run resumes when started "
            "again with the same arguments."
        ),
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="folder to write the set into (created if missing)")
    parser.add_argument("--num-train", type=_nonneg, default=defaults.num_train, metavar="N",
                        help="train samples (default %(default)s)")
    parser.add_argument("--num-val", type=_nonneg, default=defaults.num_val, metavar="N",
                        help="validation samples (default %(default)s)")
    parser.add_argument("--num-test", type=_nonneg, default=defaults.num_test, metavar="N",
                        help="test samples (default %(default)s)")
    parser.add_argument("--seed", type=_nonneg, default=defaults.seed, metavar="S",
                        help="random seed: rooms come from (S, location), the pose of sample i "
                        "from (S, i) (default %(default)s)")
    parser.add_argument("--workers", type=_positive, default=1, metavar="W",
                        help="worker processes (default 1); the output is the same for any W")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    try:
        params = SynthParams(num_train=args.num_train, num_val=args.num_val,
                             num_test=args.num_test, seed=args.seed)
        out = generate(args.out, params, workers=args.workers, progress=not args.quiet)
    except ValueError as exc:
        parser.error(str(exc))
    except OSError as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    print(out)
    return 0
