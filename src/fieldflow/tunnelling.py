r"""Tunnelling between the two vacua: sign changes of M = Σ_x φ_x, counted with hysteresis;
for U(1), changes of the topological sector Q.

Every observable but ``magnetization`` is even under φ → −φ, so a chain stuck in one
vacuum of the broken phase looks as good as one that visits both. The flips of sign M
measure how often a chain moves between them. Noise around M = 0 is not a flip: a
*crossing* is a passage from below −c to above +c or back, with the band
c = :data:`BAND` · ⟨|M|⟩ from the whole ensemble, and an excursion into the band that
returns to the side it came from counts nothing.

With n chains of N updates and k crossings in all, the tunnelling time is nN / k updates
per crossing of one chain. For a telegraph process (M = ±v flipping at rate r per update)
the autocorrelation of M is exp(−2r|t|), so τ_int(M) ≈ 1/(2r) = τ_tunnel / 2 for rare
flips. Zero crossings bound the rate by the "rule of three": the Poisson probability of
no event, exp(−r nN), is 5% at r = 3/(nN), so at 95% confidence τ_tunnel > nN/3 and
τ_int(M) > nN/6.

A theory names the primary and the count through its
:class:`~fieldflow.theory.OrderParameter`: φ⁴ counts M's band crossings
(:func:`band_crossings`), U(1) the changes of the integer nearest to Q
(:func:`sector_changes`), the same counts and bounds over updates following from either.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: The hysteresis band c as a fraction of ⟨|M|⟩.
BAND = 0.5
#: Events of a Poisson process whose chance of none is 5%: −ln 0.05 ≈ 3 ("rule of three").
NO_EVENT_95 = 3.0
#: Bins and bin-range step of :func:`histogram`.
HISTOGRAM_BINS = 60
HISTOGRAM_STEP = 0.25


def count_crossings(m: np.ndarray, threshold: float) -> np.ndarray:
    """Crossings of the band [−c, +c] per chain, with hysteresis.

    A draw above +c is on the + side, below −c on the − side, inside the band on neither;
    a crossing is a change of side between consecutive draws that are on a side.

    Args:
        m: M (or M/V, with ``threshold`` in the same units) per draw, shape (chain, draw).
        threshold: c ≥ 0.
    Returns:
        crossings per chain, shape (chain,), int64.
    """
    m = np.asarray(m, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"expected M of shape (chain, draw), got {m.shape}")
    side = np.where(m > threshold, 1, np.where(m < -threshold, -1, 0))
    counts = [np.count_nonzero(np.diff(chain[chain != 0])) for chain in side]
    return np.array(counts, dtype=np.int64)


def band_crossings(m: np.ndarray, band: float = BAND) -> tuple[float, np.ndarray]:
    """The threshold c = ``band`` · ⟨|M|⟩ of all chains and draws, and the crossings per
    chain of the band [−c, +c] (:func:`count_crossings`), M of shape (chain, draw)."""
    threshold = band * float(np.abs(m).mean())
    return threshold, count_crossings(m, threshold)


def sector_changes(q: np.ndarray) -> tuple[float, np.ndarray]:
    """Changes of sector of an integer-valued order parameter (U(1)'s Q), per chain.

    Q is an integer up to rounding, so its sector is the nearest integer; the threshold is
    the distance ½ to a sector's edge. Consecutive draws in different sectors are one
    change, whatever their difference.

    Args:
        q: Q per draw, shape (chain, draw).
    Returns:
        0.5, and the changes per chain, shape (chain,), int64.
    """
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2:
        raise ValueError(f"expected Q of shape (chain, draw), got {q.shape}")
    changes = np.count_nonzero(np.diff(np.rint(q), axis=1), axis=1)
    return 0.5, changes.astype(np.int64)


def tau_int_lower_bound(n_updates: int) -> float:
    """τ_int(M) > nN/6 at 95% confidence when nN updates showed no crossing."""
    return n_updates / (2.0 * NO_EVENT_95)


@dataclass(frozen=True)
class Tunnelling:
    """Crossings of one ensemble and the rates made from them.

    ``threshold`` is in the units of the M given to :func:`tunnelling` (M/V in the tables).
    """

    n_chains: int
    n_draws: int
    threshold: float
    per_chain: tuple[int, ...]
    seconds_per_update: float
    #: Updates per stored draw (a thinned Markov chain); crossings between stored draws
    #: that return before the next one are not seen.
    thin: int = 1

    @property
    def updates(self) -> int:
        """nN, the updates of all chains (thin × the stored draws)."""
        return self.n_chains * self.n_draws * self.thin

    @property
    def crossings(self) -> int:
        return int(sum(self.per_chain))

    @property
    def bound(self) -> str:
        """``"lower"`` when nothing crossed: :attr:`tunnel_updates` is then a lower bound."""
        return "lower" if self.crossings == 0 else ""

    @property
    def per_1000_updates(self) -> float:
        """Crossings per 1000 updates of one chain (0 as counted when none crossed)."""
        return 1000.0 * self.crossings / self.updates

    @property
    def per_second(self) -> float:
        """Crossings per second of one chain's sampling; NaN without a timing."""
        return self.crossings / (self.updates * self.seconds_per_update)

    @property
    def tunnel_updates(self) -> float:
        """Updates per crossing of one chain, nN/k; with k = 0 the bound nN/3."""
        return self.updates / (self.crossings or NO_EVENT_95)

    def row(self) -> dict[str, float | int | str]:
        """The columns of a tunnelling table after the point and sampler."""
        return {
            "n_chains": self.n_chains,
            "n_draws": self.n_draws,
            "threshold": self.threshold,
            "crossings": self.crossings,
            "per_1000_updates": self.per_1000_updates,
            "per_second": self.per_second,
            "tunnel_updates": self.tunnel_updates,
            "bound": self.bound,
            "thin": self.thin,
        }


def tunnelling(
    m: np.ndarray,
    seconds_per_update: float = math.nan,
    band: float = BAND,
    thin: int = 1,
    count: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None,
) -> Tunnelling:
    """Crossings of an ensemble with c = ``band`` · ⟨|M|⟩ over all its chains and draws.

    Args:
        m: M or M/V per stored draw, shape (chain, draw) (or another theory's order
            parameter, with its ``count``).
        seconds_per_update: median seconds per update of one chain (NaN if not timed).
        band: c / ⟨|M|⟩.
        thin: updates per stored draw.
        count: values ↦ (threshold, crossings per chain), the theory's
            :attr:`~fieldflow.theory.OrderParameter.count`; ``band`` is then unused.
            By default :func:`band_crossings` with ``band``.
    """
    m = np.asarray(m, dtype=np.float64)
    threshold, counts = band_crossings(m, band) if count is None else count(m)
    return Tunnelling(
        int(m.shape[0]),
        int(m.shape[1]),
        threshold,
        tuple(map(int, counts)),
        float(seconds_per_update),
        int(thin),
    )


def histogram(
    m: np.ndarray,
    bins: int = HISTOGRAM_BINS,
    step: float = HISTOGRAM_STEP,
    integer: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised histogram of M/V over the symmetric range ±B.

    B is max |M/V| rounded up to a multiple of ``step`` (at least ``step``), so a sampler
    stuck in one vacuum shows an empty half.

    An ``integer`` order parameter (U(1)'s Q) gets one bin per integer k, [k − ½, k + ½),
    for |k| ≤ max(max |Q|, 1): ``bins`` equal bins over ±B would put the integers on
    their edges, where rounding decides the bin. ``bins`` and ``step`` are then unused.

    Returns:
        bin edges, shape (bins + 1,), and densities (integrating to 1), shape (bins,); for
        an integer order parameter 2K + 2 edges and 2K + 1 densities.
    """
    values = np.asarray(m, dtype=np.float64).ravel()
    top = float(np.abs(values).max()) if values.size else 0.0
    if integer:
        K = max(round(top), 1)
        edges = np.arange(-K, K + 2, dtype=np.float64) - 0.5
        density, edges = np.histogram(values, bins=edges, density=True)
        return edges, density
    B = max(step * math.ceil(top / step), step)
    density, edges = np.histogram(values, bins=bins, range=(-B, B), density=True)
    return edges, density
