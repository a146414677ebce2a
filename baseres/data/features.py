"""Waveform -> spectrogram image, depth -> metres, and the on-disk feature cache.

Preprocessing follows the official BatVision loader: keep the echoes from within max_depth
(the first 2 * max_depth / 340 * sr samples), STFT (n_fft 512, win 64, hop 16, Hann, centred),
magnitude, resize to S x S. Depth: mm -> m, clip to max_depth, nearest-neighbour resize (bilinear
would blur holes into valid pixels).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from baseres.config import TrainConfig
from baseres.data.batvision import SAMPLE_RATE

SPEED_OF_SOUND = 340.0  # m/s, the official loader's value for the cut
FEATURE_VERSION = 1  # bump when the computation changes: it invalidates every cache


@dataclass(frozen=True)
class FeatureSettings:
    audio_format: str
    image_size: int
    max_depth: float
    sample_rate: int = SAMPLE_RATE
    n_fft: int = 512
    win_length: int = 64
    hop_length: int = 16
    n_mels: int = 32
    fmin: float = 20.0
    fmax: float = 20000.0
    version: int = FEATURE_VERSION

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> FeatureSettings:
        return cls(audio_format=cfg.audio_format, image_size=cfg.image_size,
                   max_depth=float(cfg.max_depth))

    @property
    def num_samples(self) -> int:
        return int(2 * self.max_depth / SPEED_OF_SOUND * self.sample_rate)

    def as_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=8)
def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, fmin: float, fmax: float
                   ) -> torch.Tensor:
    """Triangular filters on the HTK mel scale, n_mels x (n_fft // 2 + 1)."""
    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def to_hz(mel):
        return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)

    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = to_hz(np.linspace(to_mel(fmin), to_mel(min(fmax, sample_rate / 2)), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None] - lower) / (centre - lower)
    falling = (upper - bins[None]) / (upper - centre)
    return torch.from_numpy(np.maximum(0.0, np.minimum(rising, falling))).float()


def _minmax_per_channel(x: torch.Tensor) -> torch.Tensor:
    low = x.amin(dim=(-2, -1), keepdim=True)
    high = x.amax(dim=(-2, -1), keepdim=True)
    return (x - low) / (high - low).clamp(min=1e-8)


def waveform_to_features(wave: np.ndarray | torch.Tensor, settings: FeatureSettings
                         ) -> torch.Tensor:
    """2 x T waveform -> 2 x S x S float32 feature image."""
    wave = torch.as_tensor(wave, dtype=torch.float32)[:, : settings.num_samples]
    if wave.shape[1] < settings.num_samples:  # short recordings: silence after the end
        wave = F.pad(wave, (0, settings.num_samples - wave.shape[1]))
    spec = torch.stft(wave, n_fft=settings.n_fft, hop_length=settings.hop_length,
                      win_length=settings.win_length, window=torch.hann_window(settings.win_length),
                      center=True, return_complex=True).abs()
    if settings.audio_format == "mel":
        bank = mel_filterbank(settings.n_mels, settings.n_fft, settings.sample_rate,
                              settings.fmin, settings.fmax)
        spec = _minmax_per_channel(torch.log(torch.einsum("mf,cft->cmt", bank, spec**2) + 1e-10))
    elif settings.audio_format == "log_spectrogram":
        spec = _minmax_per_channel(torch.log(spec + 1e-8))
    size = (settings.image_size, settings.image_size)
    resized = F.interpolate(spec[None], size=size, mode="bilinear", align_corners=False,
                            antialias=True)[0]
    return torch.nan_to_num(resized, nan=0.0, posinf=0.0, neginf=0.0)


def depth_to_metres(depth_mm: np.ndarray, settings: FeatureSettings) -> torch.Tensor:
    """H x W millimetres (0 = invalid) -> 1 x S x S metres, clipped to max_depth."""
    depth = torch.as_tensor(depth_mm, dtype=torch.float32) / 1000.0
    depth = torch.nan_to_num(depth, nan=0.0, posinf=0.0, neginf=0.0).clamp(0.0, settings.max_depth)
    size = (settings.image_size, settings.image_size)
    return F.interpolate(depth[None, None], size=size, mode="nearest-exact")[0]
