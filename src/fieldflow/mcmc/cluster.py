r"""Brower–Tamayo embedded-Ising cluster updates for φ⁴, many chains as one batch.

Write φ_x = ε_x |φ_x| with ε_x = sign φ_x. In

    S(φ) = Σ_x [ Σ_μ (φ(x+μ̂) − φ(x))² + s φ(x)² + λ φ(x)⁴ ]

the squares φ_x², φ_x⁴ and the diagonal part of (φ(x+μ̂) − φ(x))² depend on |φ| only, so
at fixed |φ|

    S = const − 2 Σ_⟨xy⟩ |φ_x||φ_y| ε_x ε_y,

one term per nearest-neighbour link ⟨xy⟩ = (x, x+μ̂). The signs thus form an Ising model
e^{−S} ∝ exp(Σ_⟨xy⟩ J_xy ε_x ε_y) with couplings J_xy = 2|φ_x φ_y| ≥ 0 (Brower & Tamayo,
PRL 62 (1989) 1087). Swendsen–Wang bonds a satisfied link (ε_x = ε_y) with probability
p = 1 − e^{−2J_xy} = 1 − e^{−4 φ_x φ_y} and never an unsatisfied one; flipping the signs of
whole clusters of bonded sites then leaves e^{−S} invariant. With L = 2 the two links
(x, x+μ̂) and (x+μ̂, x+2μ̂) = (x+μ̂, x) join the same pair; each is a separate term of S and
gets its own bond.

One *update* is one cluster step on the signs (Swendsen–Wang: every cluster flipped with
probability ½; Wolff: the cluster of one uniformly chosen site per chain), optionally one
over-relaxation sweep, then ``local_sweeps`` checkerboard Metropolis sweeps, which change
|φ| (the cluster step alone is not ergodic). The Metropolis step size δ is tuned during
burn-in only and then frozen. Connected components of all chains come from one call to
:func:`scipy.sparse.csgraph.connected_components` on a block-diagonal graph whose nodes are
chain·V + site. Everything runs in float64; φ is stored as float32.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from tqdm.auto import tqdm

from fieldflow.lattice import Point, action
from fieldflow.mcmc.chain import ChainResult, ChainSummary, DrawSink, check_thin, collect
from fieldflow.mcmc.timing import Stopwatch

log = logging.getLogger(__name__)

VARIANTS = ("sw", "wolff")

#: Initial Metropolis step size δ, before burn-in adapts it.
INITIAL_STEP = 0.5
#: Upper bound on δ during adaptation (a sweep with larger steps is wasted work).
MAX_STEP = 10.0


@dataclass(frozen=True)
class ClusterSettings:
    """Run-time choices of the cluster sampler (see :func:`run`)."""

    n_chains: int
    n_updates: int
    burn_in: int
    local_sweeps: int = 1
    variant: str = "sw"
    overrelax: bool = False
    target_acceptance: float = 0.5
    thin: int = 1

    def __post_init__(self) -> None:
        check_thin(self.thin)
        if self.n_chains < 1:
            raise ValueError(f"n_chains must be at least 1, got {self.n_chains}")
        for name in ("n_updates", "burn_in"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.local_sweeps < 1:
            # The cluster step and the reflections never change the set of |φ| values.
            raise ValueError(f"local_sweeps must be at least 1 (the cluster step alone is not "
                             f"ergodic), got {self.local_sweeps}")  # fmt: skip
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown cluster variant {self.variant!r}; known: {VARIANTS}")
        if not 0.0 < self.target_acceptance < 1.0:
            raise ValueError(f"target_acceptance must be in (0, 1), got {self.target_acceptance}")

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> ClusterSettings:
        """Settings from a config section; the optional keys take the defaults above."""
        return cls(
            n_chains=_count("n_chains", settings["n_chains"]),
            n_updates=_count("n_updates", settings["n_updates"]),
            burn_in=_count("burn_in", settings["burn_in"]),
            local_sweeps=_count("local_sweeps", settings.get("local_sweeps", 1)),
            variant=str(settings.get("variant", "sw")),
            overrelax=bool(settings.get("overrelax", False)),
            target_acceptance=float(settings.get("target_acceptance", 0.5)),
            thin=_count("thin", settings.get("thin", 1)),
        )


def _count(name: str, value: Any) -> int:
    """``value`` as an int, refusing bools and non-integral numbers."""
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def check_point(point: Point) -> None:
    """Refuse points where e^{−S} is not normalisable or the lattice is too small."""
    if not (math.isfinite(point.s) and math.isfinite(point.lam)):
        raise ValueError(f"s and lam must be finite, got s={point.s}, lam={point.lam}")
    if point.lam < 0:
        raise ValueError(f"lam must be non-negative (action unbounded below), got {point.lam}")
    if point.lam == 0 and point.s <= 0:
        raise ValueError(f"lam = 0 needs s > 0 (else e^-S is not normalisable), got s={point.s}")
    if point.L < 2:
        raise ValueError(f"the cluster sampler needs L >= 2, got L={point.L}")


# ---------------------------------------------------------------------------------------
# The cluster step on the signs
# ---------------------------------------------------------------------------------------


def bond_probability(phi_x: np.ndarray, phi_y: np.ndarray) -> np.ndarray:
    r"""Bond probability p = 1 − e^{−4 φ_x φ_y} for same-sign neighbours, 0 otherwise.

    This is Swendsen–Wang's 1 − e^{−2J} with the embedded coupling J = 2|φ_x φ_y|.
    Broadcasts over its arguments.
    """
    return -np.expm1(-4.0 * np.maximum(phi_x * phi_y, 0.0))


def cluster_labels(phi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r"""Draw the bonds of every link and label the clusters of all chains at once.

    Args:
        phi: configurations, shape (chain, Lx, Ly), float64.
    Returns:
        cluster label per site, shape (chain, Lx, Ly); labels are unique across chains,
        as the bond graph on nodes chain·V + site is block-diagonal.
    """
    index = np.arange(phi.size).reshape(phi.shape)
    rows, cols = [], []
    for axis in (-2, -1):
        p = bond_probability(phi, np.roll(phi, -1, axis))
        bonded = rng.random(phi.shape) < p
        rows.append(index[bonded])
        cols.append(np.roll(index, -1, axis)[bonded])
    row, col = np.concatenate(rows), np.concatenate(cols)
    graph = csr_matrix((np.ones(row.size, dtype=np.int8), (row, col)), shape=(phi.size,) * 2)
    _, labels = connected_components(graph, directed=False)
    return labels.reshape(phi.shape)


def cluster_step(
    phi: np.ndarray, rng: np.random.Generator, variant: str = "sw"
) -> tuple[np.ndarray, np.ndarray]:
    r"""One embedded-Ising cluster update of the signs of φ at fixed |φ|, every chain.

    ``sw``: every cluster is flipped independently with probability ½ (Swendsen & Wang
    1987). ``wolff``: per chain, the cluster of one uniformly chosen site is flipped
    (Wolff 1989); building all clusters and keeping that one has the same law.

    Args:
        phi: configurations, shape (chain, Lx, Ly), float64.
    Returns:
        (new φ, same shape; fraction of sites flipped per chain, shape (chain,)).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown cluster variant {variant!r}; known: {VARIANTS}")
    labels = cluster_labels(phi, rng)
    n_chains = phi.shape[0]
    per_chain = labels.reshape(n_chains, -1)
    if variant == "sw":
        flip_cluster = rng.random(phi.size) < 0.5
        flip = flip_cluster[per_chain]
    else:
        seeds = rng.integers(per_chain.shape[1], size=n_chains)
        flip = per_chain == per_chain[np.arange(n_chains), seeds][:, None]
    flip = flip.reshape(phi.shape)
    return np.where(flip, -phi, phi), flip.reshape(n_chains, -1).mean(axis=1)


# ---------------------------------------------------------------------------------------
# Local updates of |φ|
# ---------------------------------------------------------------------------------------


def colour_masks(shape: tuple[int, int]) -> list[np.ndarray]:
    r"""Partition of the periodic lattice into sets with no two nearest neighbours.

    Even sizes: the two checkerboard parities. Otherwise a three-colouring
    (c(x) + c(y)) mod 3, where c colours the ring of each direction (c(i) = i mod 2, and
    2 on the last site of an odd ring), so neighbours always differ by 1 or 2 mod 3.

    Returns:
        boolean masks, each of shape ``shape``.
    """

    def ring(n: int) -> np.ndarray:
        c = np.arange(n) % 2
        if n % 2:
            c[-1] = 2
        return c

    lx, ly = shape
    if lx % 2 == 0 and ly % 2 == 0:
        colour = (np.arange(lx)[:, None] + np.arange(ly)[None, :]) % 2
    else:
        colour = (ring(lx)[:, None] + ring(ly)[None, :]) % 3
    return [colour == k for k in np.unique(colour)]


def neighbour_sum(phi: np.ndarray) -> np.ndarray:
    """Σ_{y nn x} φ_y over the four links at x (with multiplicity when L = 2); same shape."""
    return sum(np.roll(phi, shift, axis) for axis in (-2, -1) for shift in (1, -1))


def local_delta_action(
    old: np.ndarray, new: np.ndarray, nn: np.ndarray, s: float, lam: float
) -> np.ndarray:
    r"""ΔS of changing one site φ → φ' with its neighbours held fixed.

    The terms of S that contain φ_x are V(φ_x) + const with
    V(φ) = (4+s) φ² + λ φ⁴ − 2 φ Σ_{y nn x} φ_y, so
    ΔS = (4+s)(φ'² − φ²) + λ(φ'⁴ − φ⁴) − 2(φ' − φ) Σ_nn φ_y. Elementwise.
    """
    old2, new2 = old * old, new * new
    return (4.0 + s) * (new2 - old2) + lam * (new2 * new2 - old2 * old2) - 2.0 * (new - old) * nn


def local_minimum(b: np.ndarray, s: float, lam: float) -> np.ndarray:
    r"""Global minimiser c of V(φ) = (4+s) φ² + λ φ⁴ − b φ, elementwise (b = 2 Σ_nn φ_y).

    V'(c) = 4λc³ + 2(4+s)c − b = 0. By V(−φ; b) = V(φ; −b), c(b) = sign(b) c(|b|), and for
    b ≥ 0 the minimiser is the largest real root of the depressed cubic c³ + pc + q = 0,
    p = (4+s)/(2λ), q = −|b|/(4λ). With D = q²/4 + p³/27 ≥ 0 there is one real root
    (Cardano): c = A − p/(3A), A = ∛(−q/2 + √D); with D < 0 there are three and the largest
    is 2√(−p/3) cos(⅓ arccos((3q/2p)√(−3/p))). At λ = 0, c = b/(2(4+s)). One Newton step
    on V' removes the rounding of the closed forms.
    """
    b = np.asarray(b, dtype=np.float64)
    a = 4.0 + s
    if lam == 0:
        return b / (2.0 * a)
    p, q = a / (2.0 * lam), -np.abs(b) / (4.0 * lam)
    d = 0.25 * q * q + p**3 / 27.0
    cube = np.cbrt(-0.5 * q + np.sqrt(np.maximum(d, 0.0)))
    one_root = cube - np.divide(p, 3.0 * cube, out=np.zeros_like(cube), where=cube > 0)
    if p < 0:
        r = math.sqrt(-p / 3.0)
        cos3 = np.clip(1.5 * q / p * math.sqrt(-3.0 / p), -1.0, 1.0)
        three_roots = 2.0 * r * np.cos(np.arccos(cos3) / 3.0)
        one_root = np.where(d < 0, three_roots, one_root)
    c = np.where(b < 0, -one_root, one_root)
    slope = 4.0 * lam * c**3 + 2.0 * a * c - b
    curvature = 12.0 * lam * c * c + 2.0 * a
    return c - np.divide(slope, curvature, out=np.zeros_like(c), where=curvature > 0)


def _colour_update(
    phi: np.ndarray,
    propose: Callable[[np.ndarray, np.ndarray], np.ndarray],
    s: float,
    lam: float,
    rng: np.random.Generator,
) -> float:
    """Metropolis over each colour in turn, in place; returns the acceptance rate."""
    accepted, total = 0, 0
    for mask in colour_masks(phi.shape[-2:]):
        nn = neighbour_sum(phi)[:, mask]
        old = phi[:, mask]
        new = propose(old, nn)
        accept = local_delta_action(old, new, nn, s, lam) < rng.standard_exponential(old.shape)
        phi[:, mask] = np.where(accept, new, old)
        accepted += int(accept.sum())
        total += accept.size
    return accepted / total


def local_sweep(
    phi: np.ndarray, s: float, lam: float, delta: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    r"""One checkerboard Metropolis sweep, φ'_x = φ_x + δ U(−1, 1), accepted w.p. min(1, e^{−ΔS}).

    Sites of one colour have no common links, so they are updated at once with the local
    ΔS of :func:`local_delta_action`.

    Args:
        phi: configurations, shape (chain, Lx, Ly), float64 (not modified).
    Returns:
        (new φ, acceptance rate over all sites and chains).
    """
    phi = phi.copy()

    def propose(old: np.ndarray, nn: np.ndarray) -> np.ndarray:
        return old + delta * rng.uniform(-1.0, 1.0, old.shape)

    return phi, _colour_update(phi, propose, s, lam, rng)


def overrelax_sweep(
    phi: np.ndarray, s: float, lam: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    r"""One checkerboard sweep of reflections φ' = 2c − φ about c = :func:`local_minimum`.

    c depends only on the neighbours, so the reflection is a deterministic involution
    with unit Jacobian, i.e. a symmetric proposal; it is accepted with min(1, e^{−ΔS}).
    At λ = 0 V is symmetric about c and ΔS = 0 (microcanonical over-relaxation).

    Args:
        phi: configurations, shape (chain, Lx, Ly), float64 (not modified).
    Returns:
        (new φ, acceptance rate).
    """
    phi = phi.copy()

    def propose(old: np.ndarray, nn: np.ndarray) -> np.ndarray:
        return 2.0 * local_minimum(2.0 * nn, s, lam) - old

    return phi, _colour_update(phi, propose, s, lam, rng)


# ---------------------------------------------------------------------------------------
# The sampler
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Update:
    """One update of every chain: φ (chain, L, L), flipped fraction (chain,), acceptances."""

    phi: np.ndarray
    flipped: np.ndarray
    acceptance: float
    overrelax_acceptance: float


def update(
    phi: np.ndarray,
    point: Point,
    delta: float,
    rng: np.random.Generator,
    cfg: ClusterSettings,
) -> Update:
    """Cluster step, optional over-relaxation sweep, then ``cfg.local_sweeps`` Metropolis sweeps."""
    phi, flipped = cluster_step(phi, rng, cfg.variant)
    or_acc = math.nan
    if cfg.overrelax:
        phi, or_acc = overrelax_sweep(phi, point.s, point.lam, rng)
    rates = []
    for _ in range(cfg.local_sweeps):
        phi, rate = local_sweep(phi, point.s, point.lam, delta, rng)
        rates.append(rate)
    return Update(phi, flipped, float(np.mean(rates)), or_acc)


def _tune(
    phi: np.ndarray, point: Point, cfg: ClusterSettings, rng: np.random.Generator, progress: bool
) -> tuple[np.ndarray, float]:
    """Burn-in: log δ += γ_t (acceptance − target), γ_t = t^-0.6, δ ≤ MAX_STEP."""
    log_delta = math.log(INITIAL_STEP)
    for t in tqdm(range(cfg.burn_in), disable=not progress, desc="cluster burn-in"):
        step = update(phi, point, math.exp(log_delta), rng, cfg)
        phi = step.phi
        log_delta += (t + 1) ** -0.6 * (step.acceptance - cfg.target_acceptance)
        log_delta = min(log_delta, math.log(MAX_STEP))
    return phi, math.exp(log_delta)


def stream(
    point: Point, settings: dict[str, Any], seed: int, sink: DrawSink, progress: bool = True
) -> ChainSummary:
    r"""Run ``n_chains`` cluster chains from φ = 0.1·N(0, 1); keep ``n_updates`` each.

    Settings: ``n_chains``, ``n_updates`` (kept per chain), ``burn_in`` (updates
    discarded; δ is tuned there only), and optionally ``thin`` (1: after the burn-in,
    ``n_updates * thin`` updates run and every ``thin``-th is kept), ``local_sweeps`` (1),
    ``variant`` ("sw" | "wolff"), ``overrelax`` (False), ``target_acceptance`` (0.5, of
    the local Metropolis steps).

    ``sink`` receives each kept update as it is made: φ (chain, draw, L, L) float32; per
    draw ``action`` (S after the update) and ``cluster_fraction`` (fraction of sites
    flipped by its cluster step), float64.

    Returns:
        acceptance of the local Metropolis steps over all production updates (NaN without
        any); info: ``step_size``, ``local_sweeps``, ``variant``, ``overrelax``, ``thin``,
        and ``seconds_per_update`` with its error: the median seconds per update of one
        chain, each production update of all chains timed as one batch
        (:func:`fieldflow.mcmc.timing.per_update`).
    """
    cfg = ClusterSettings.from_dict(settings)
    check_point(point)
    rng = np.random.default_rng(seed)
    phi = 0.1 * rng.standard_normal((cfg.n_chains, point.L, point.L))
    phi, delta = _tune(phi, point, cfg, rng, progress)
    log.info("cluster: local step size %.4f after %d burn-in updates", delta, cfg.burn_in)
    sink.start(cfg.n_chains, cfg.n_updates, point.L,
               {"action": np.float64, "cluster_fraction": np.float64})  # fmt: skip
    n_updates = cfg.n_updates * cfg.thin
    rate, or_rate, flipped = 0.0, 0.0, 0.0
    watch = Stopwatch()
    for t in tqdm(range(n_updates), disable=not progress, desc="cluster", mininterval=10):
        kept = (t + 1) % cfg.thin == 0
        with watch.batch(cfg.n_chains):
            step = update(phi, point, delta, rng, cfg)
            phi = step.phi
        if kept:  # measured and written outside the timed batch, whatever thin is
            draw = phi.astype(np.float32)[:, None]
            s = action(torch.from_numpy(phi), point.s, point.lam).numpy()
            sink.append(draw, {"action": s[:, None], "cluster_fraction": step.flipped[:, None]})
        rate += step.acceptance
        or_rate += step.overrelax_acceptance
        flipped += float(step.flipped.mean())
    acceptance = rate / n_updates if n_updates else math.nan
    if cfg.overrelax and n_updates:
        log.info("cluster: over-relaxation acceptance %.3f", or_rate / n_updates)
    log.info("cluster: local acceptance %.3f, mean flipped fraction %.3f", acceptance,
             flipped / n_updates if n_updates else math.nan)  # fmt: skip
    info = {
        "step_size": delta,
        "local_sweeps": cfg.local_sweeps,
        "variant": cfg.variant,
        "overrelax": cfg.overrelax,
        "thin": cfg.thin,
        **watch.result().info(),
    }
    return ChainSummary(acceptance, info)


def run(point: Point, settings: dict[str, Any], seed: int, progress: bool = True) -> ChainResult:
    """:func:`stream` with the draws kept in memory, as one :class:`ChainResult`."""
    return collect(stream, point, settings, seed, progress)
