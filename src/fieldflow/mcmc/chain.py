"""What every Markov-chain baseline returns, so one stage writes any of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ChainResult:
    """Kept draws of a batch of Markov chains.

    Attributes:
        phi: configurations, shape (chain, draw, L, L), float32.
        per_draw: per-draw series, each shape (chain, draw); always ``action`` (float64),
            plus sampler-specific ones (HMC: ``accepted``; cluster: ``cluster_fraction``).
        acceptance: the sampler's acceptance rate over the kept draws (HMC: trajectories;
            cluster: the local Metropolis steps).
        info: scalar settings chosen at run time (tuned step sizes, trajectory length…),
            stored as ensemble attrs and columns of ``samplers.csv``.
    """

    phi: np.ndarray
    per_draw: dict[str, np.ndarray]
    acceptance: float
    info: dict[str, Any] = field(default_factory=dict)
