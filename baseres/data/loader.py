"""Batches straight from the cached arrays: one fancy-index copy per batch, no per-sample Python,
so producing a batch costs a small fraction of a training step."""

from __future__ import annotations

import numpy as np
import torch

from baseres.data.cache import SplitArrays


class BatchLoader:
    def __init__(self, arrays: SplitArrays, batch_size: int, shuffle: bool, seed: int = 0):
        self.arrays = arrays
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The shuffle order depends only on (seed, epoch), so a resumed run sees the same data."""
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.arrays) // self.batch_size)

    def __iter__(self):
        n = len(self.arrays)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(n, generator=generator).numpy()
        else:
            order = np.arange(n)
        for start in range(0, n, self.batch_size):
            # Sorted indices read the memory map front to back; the batch is the same set.
            index = np.sort(order[start:start + self.batch_size])
            yield (torch.from_numpy(np.ascontiguousarray(self.arrays.features[index])),
                   torch.from_numpy(np.ascontiguousarray(self.arrays.depth[index])))
