"""What every Markov-chain baseline produces, so one stage writes any of them.

A baseline *streams* its kept draws into a :class:`DrawSink` as it makes them (the
pipeline's sink is :class:`fieldflow.io.EnsembleWriter`, which writes them to disk chunk by
chunk) and returns a :class:`ChainSummary`; :func:`collect` keeps them in memory instead,
as one :class:`ChainResult`.

A draw is one configuration of the point's theory: φ⁴'s φ (L, L) or U(1)'s links (2, L, L);
:meth:`DrawSink.start` takes its shape, ``point.theory.field_shape(point.L)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import DTypeLike

from fieldflow.theory import PointLike


class DrawSink(Protocol):
    """Where a baseline puts its kept draws: declared once, then block by block along draw."""

    def start(
        self,
        n_chains: int,
        n_draws: int,
        shape: tuple[int, ...],
        per_draw: Mapping[str, DTypeLike],
    ) -> None:
        """Declare the field (n_chains, n_draws, *shape), ``shape`` the theory's
        ``field_shape(L)``, and the per-draw series with their dtypes."""

    def append(self, phi: np.ndarray, per_draw: Mapping[str, np.ndarray]) -> None:
        """The next k draws of every chain: φ (chain, k, *shape), each series (chain, k)."""


@dataclass(frozen=True)
class ChainSummary:
    """What a baseline reports besides its draws.

    Attributes:
        acceptance: the sampler's acceptance rate over its production updates, kept or
            thinned away (HMC: trajectories; cluster: the local Metropolis steps).
        info: scalar settings chosen at run time (tuned step sizes, trajectory length…),
            stored as ensemble attrs and columns of ``samplers.csv``.
    """

    acceptance: float
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChainResult:
    """Kept draws of a batch of Markov chains, in memory.

    Attributes:
        phi: configurations, shape (chain, draw, *field_shape), float32.
        per_draw: per-draw series, each shape (chain, draw); always ``action`` (float64),
            plus sampler-specific ones (HMC: ``accepted``; cluster: ``cluster_fraction``).
        acceptance, info: as in :class:`ChainSummary`.
    """

    phi: np.ndarray
    per_draw: dict[str, np.ndarray]
    acceptance: float
    info: dict[str, Any] = field(default_factory=dict)


class Collect:
    """A :class:`DrawSink` that keeps the draws in arrays allocated at :meth:`start`."""

    def __init__(self) -> None:
        self.phi = np.empty((0, 0, 0, 0), dtype=np.float32)
        self.per_draw: dict[str, np.ndarray] = {}
        self._filled = 0

    def start(
        self,
        n_chains: int,
        n_draws: int,
        shape: tuple[int, ...],
        per_draw: Mapping[str, DTypeLike],
    ) -> None:
        self.phi = np.empty((n_chains, n_draws, *shape), dtype=np.float32)
        shape = (n_chains, n_draws)
        self.per_draw = {name: np.empty(shape, dtype) for name, dtype in per_draw.items()}

    def append(self, phi: np.ndarray, per_draw: Mapping[str, np.ndarray]) -> None:
        draws = slice(self._filled, self._filled + phi.shape[1])
        self.phi[:, draws] = phi
        for name, values in per_draw.items():
            self.per_draw[name][:, draws] = values
        self._filled = draws.stop


ChainStream = Callable[[PointLike, dict[str, Any], int, DrawSink, bool], ChainSummary]


def collect(
    stream: ChainStream,
    point: PointLike,
    settings: dict[str, Any],
    seed: int,
    progress: bool = True,
) -> ChainResult:
    """Run a streaming baseline with its draws kept in memory, as one :class:`ChainResult`."""
    sink = Collect()
    summary = stream(point, settings, seed, sink, progress)
    return ChainResult(sink.phi, sink.per_draw, summary.acceptance, summary.info)


def check_thin(thin: Any) -> int:
    """``thin`` as an int ≥ 1 (keep every thin-th update), refusing bools and fractions."""
    if isinstance(thin, bool) or not isinstance(thin, int | np.integer) or thin < 1:
        raise ValueError(f"thin must be an integer >= 1, got {thin!r}")
    return int(thin)
