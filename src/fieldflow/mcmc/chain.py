"""What every Markov-chain baseline produces, so one stage writes any of them.

A baseline *streams* its kept draws into a :class:`DrawSink` as it makes them (the
pipeline's sink is :class:`fieldflow.io.EnsembleWriter`, which writes them to disk chunk by
chunk) and returns a :class:`ChainSummary`; :func:`collect` keeps them in memory instead,
as one :class:`ChainResult`.

A draw is one configuration of the point's theory: φ⁴'s φ (L, L) or U(1)'s links (2, L, L).
Its shape reaches :meth:`DrawSink.start` as ``L`` where it is (L, L), the form every sink
takes, and as the whole shape otherwise (:func:`sink_shape`).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import DTypeLike

from fieldflow.theory import PointLike

#: The shape of one draw as :meth:`DrawSink.start` takes it: L for (L, L), else the shape.
DrawShape = int | tuple[int, ...]


class DrawSink(Protocol):
    """Where a baseline puts its kept draws: declared once, then block by block along draw."""

    def start(
        self, n_chains: int, n_draws: int, L: DrawShape, per_draw: Mapping[str, DTypeLike]
    ) -> None:
        """Declare φ (n_chains, n_draws, L, L), or (n_chains, n_draws, *L) for a tuple
        ``L`` (:func:`sink_shape`), and the per-draw series with their dtypes."""

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
        self, n_chains: int, n_draws: int, L: DrawShape, per_draw: Mapping[str, DTypeLike]
    ) -> None:
        self.phi = np.empty((n_chains, n_draws, *draw_shape(L)), dtype=np.float32)
        shape = (n_chains, n_draws)
        self.per_draw = {name: np.empty(shape, dtype) for name, dtype in per_draw.items()}

    def append(self, phi: np.ndarray, per_draw: Mapping[str, np.ndarray]) -> None:
        draws = slice(self._filled, self._filled + phi.shape[1])
        self.phi[:, draws] = phi
        for name, values in per_draw.items():
            self.per_draw[name][:, draws] = values
        self._filled = draws.stop


def sink_shape(point: PointLike) -> DrawShape:
    """How to declare the point's draws to a :class:`DrawSink`: ``L`` where a draw is
    (L, L) (φ⁴), else the theory's field shape, e.g. (2, L, L) for U(1) links."""
    shape = point.theory.field_shape(point.L)
    return point.L if shape == (point.L, point.L) else shape


def draw_shape(L: DrawShape) -> tuple[int, ...]:
    """The shape of one draw from its declared form: (L, L) for an int, else ``L`` itself."""
    return (int(L), int(L)) if isinstance(L, numbers.Integral) else tuple(L)


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
