"""One array of an ensemble store written along its axis 1, chain by chain, a chunk at a time.

:class:`fieldflow.io.EnsembleWriter` keeps one per array: values arrive in pieces of any
length, and each chunk is written once it is full, so at most one chunk per chain is held.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class ChunkedColumn:
    """One array of a store being written along its axis 1, per chain, a chunk at a time.

    Each chain fills a buffer of one chunk, allocated once and reused, and the buffer is
    written when full. Values are copied in, so no caller's array (a view of a torch
    tensor, a whole batch of chains) stays referenced: holding thousands of small views
    until the end fragmented the heap and made the RSS of an L = 64 HMC job grow with
    the run (docs/decisions.md).
    """

    def __init__(self, name: str, array: Any) -> None:
        self.name = name
        self.array = array
        self.n_chains, self.length = array.shape[:2]
        self.step = array.chunks[1]
        self.written = [0] * self.n_chains
        self.filled = [0] * self.n_chains
        self._buffers: list[np.ndarray | None] = [None] * self.n_chains

    def add(self, chain: int, values: np.ndarray) -> None:
        """Copy ``values`` (k, ...) in as the next of ``chain``; write the chunks now full."""
        values = np.asarray(values)
        if values.shape[1:] != self.array.shape[2:]:
            expected = ("k", *self.array.shape[2:])
            raise ValueError(f"{self.name} gets values of shape {values.shape}, not {expected}")
        if self.written[chain] + self.filled[chain] + len(values) > self.length:
            raise ValueError(f"{self.name} of chain {chain} would exceed its {self.length}")
        buffer = self._buffers[chain]
        if buffer is None:
            buffer = np.empty((self.step, *self.array.shape[2:]), dtype=self.array.dtype)
            self._buffers[chain] = buffer
        offset = 0
        while offset < len(values):
            start, filled = self.written[chain], self.filled[chain]
            size = min(self.step, self.length - start)  # the last chunk may be shorter
            take = min(size - filled, len(values) - offset)
            buffer[filled : filled + take] = values[offset : offset + take]
            offset += take
            self.filled[chain] = filled + take
            if self.filled[chain] == size:
                self.array[chain, start : start + size] = buffer[:size]
                self.written[chain] = start + size
                self.filled[chain] = 0
        if self.written[chain] == self.length:
            self._buffers[chain] = None

    def check_full(self, store: Path) -> None:
        """Raise :class:`ValueError` unless every chain has all its values."""
        for chain, (written, filled) in enumerate(zip(self.written, self.filled, strict=True)):
            if written + filled < self.length:
                have = written + filled
                raise ValueError(
                    f"{store}: {self.name} of chain {chain} has {have} of its "
                    f"{self.length} values; the store stays incomplete"
                )
