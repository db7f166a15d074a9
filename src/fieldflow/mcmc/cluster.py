r"""Brower–Tamayo embedded-Ising cluster updates for φ⁴, many chains as one batch.

Write φ_x = ε_x |φ_x| with ε_x = sign φ_x. At fixed |φ| the signs form an Ising model with
couplings J_xy = 2|φ_x φ_y| ≥ 0 on the nearest-neighbour links (Brower & Tamayo,
PRL 62 (1989) 1087), which Swendsen–Wang or Wolff clusters update exactly
(:mod:`fieldflow.mcmc.embedded_ising`).

One *update* is one cluster step on the signs (Swendsen–Wang: every cluster flipped with
probability ½; Wolff: the cluster of one uniformly chosen site per chain), optionally one
over-relaxation sweep, then ``local_sweeps`` checkerboard Metropolis sweeps, which change
|φ| (the cluster step alone is not ergodic). The Metropolis step size δ is tuned during
burn-in only and then frozen; the sweeps are :mod:`fieldflow.mcmc.local`. Everything runs
in float64; φ is stored as float32.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from fieldflow.lattice import Point, action
from fieldflow.mcmc.chain import ChainResult, ChainSummary, DrawSink, check_thin, collect
from fieldflow.mcmc.embedded_ising import VARIANTS, bond_probability, cluster_labels, cluster_step
from fieldflow.mcmc.local import (
    colour_masks,
    local_delta_action,
    local_minimum,
    local_sweep,
    neighbour_sum,
    overrelax_sweep,
)
from fieldflow.mcmc.timing import Stopwatch

__all__ = [
    "INITIAL_STEP",
    "MAX_STEP",
    "VARIANTS",
    "ClusterSettings",
    "Update",
    "bond_probability",
    "check_point",
    "cluster_labels",
    "cluster_step",
    "colour_masks",
    "local_delta_action",
    "local_minimum",
    "local_sweep",
    "neighbour_sum",
    "overrelax_sweep",
    "run",
    "stream",
    "update",
]

log = logging.getLogger(__name__)

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
            raise ValueError(
                f"local_sweeps must be at least 1 (the cluster step alone is not "
                f"ergodic), got {self.local_sweeps}"
            )
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
    sink.start(
        cfg.n_chains,
        cfg.n_updates,
        (point.L, point.L),
        {"action": np.float64, "cluster_fraction": np.float64},
    )
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
    log.info(
        "cluster: local acceptance %.3f, mean flipped fraction %.3f",
        acceptance,
        flipped / n_updates if n_updates else math.nan,
    )
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
