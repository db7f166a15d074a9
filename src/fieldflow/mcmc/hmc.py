r"""Hybrid Monte Carlo for any theory, many chains advanced together as one batch.

H(φ, π) = ½ Σ_x π_x² + S(φ), with S and its force from the point
(:class:`fieldflow.theory.PointLike`: φ⁴ fields or U(1) link angles). A trajectory of
length τ (1 by default) is integrated with leapfrog or Omelyan's second-order minimum-norm
scheme, then accepted with probability min(1, e^{−ΔH}) per chain. The step size is tuned
during burn-in only (Robbins–Monro on log ε towards a target acceptance) and then frozen,
so the production chain is an exact Markov chain with a fixed kernel.

With ``trajectory_length="auto"`` the burn-in also picks τ for the point: τ = c ξ₂ from the
second-moment correlation length measured on the burn-in chains (φ⁴ only: a theory
without ξ₂, such as U(1), needs a numeric τ). The slowest (k = 0) free
mode has ω² = 2 s_eff ≈ 2/ξ², so a fixed τ moves it by ωτ ∝ 1/ξ per trajectory and τ_int
grows as ξ² (z ≈ 2); τ ∝ ξ turns it by a fixed angle instead, so for a free field τ_int
per trajectory would not grow at all (z ≈ 0), while each trajectory costs ∝ ξ more
leapfrog steps (z ≈ 1 in cost). Interacting, τ_int per trajectory still grew as about
ξ₂^1.1 at c = 0.5 (docs/decisions.md): compare samplers by the cost exponent.

The integrators and the update are :mod:`fieldflow.mcmc.integrators`, the burn-in
:mod:`fieldflow.mcmc.burnin`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from fieldflow.mcmc.burnin import (
    TAU0,
    TRAJECTORY_PER_XI,
    auto_burn_in,
    auto_trajectory_length,
    check_trajectory_length,
    steps_for,
    tune_step_size,
)
from fieldflow.mcmc.chain import (
    ChainResult,
    ChainSummary,
    Collect,
    DrawSink,
    check_thin,
    collect,
)
from fieldflow.mcmc.integrators import INTEGRATORS, OMELYAN_XI, leapfrog, omelyan, trajectory
from fieldflow.mcmc.timing import Stopwatch, UpdateTime
from fieldflow.theory import PointLike

__all__ = [
    "INTEGRATORS",
    "OMELYAN_XI",
    "TAU0",
    "TRAJECTORY_PER_XI",
    "HMCResult",
    "HMCRun",
    "auto_trajectory_length",
    "hmc",
    "hmc_stream",
    "leapfrog",
    "omelyan",
    "run",
    "stream",
    "tune_step_size",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HMCRun:
    """What an HMC run chose and measured, over its production trajectories (after burn-in).

    ``n_steps`` is the nominal number of steps, τ = ``n_steps * step_size``;
    ``mean_steps`` the mean over the production (jittered) trajectories and ``acceptance``
    their acceptance rate, kept or thinned away; ``timing`` the seconds per trajectory of
    one chain, each production trajectory of all chains timed as one batch.
    """

    step_size: float
    n_steps: int
    trajectory_length: float
    mean_steps: float
    acceptance: float
    timing: UpdateTime


@dataclass(frozen=True)
class HMCResult(HMCRun):
    """An :class:`HMCRun` with its kept draws in memory: φ (chain, draw, *field_shape)
    float32; S and the acceptance flag of the trajectory that produced each draw, per
    (chain, draw)."""

    phi: np.ndarray
    action: np.ndarray
    accepted: np.ndarray


def hmc_stream(
    point: PointLike,
    n_chains: int,
    n_trajectories: int,
    burn_in: int,
    seed: int,
    sink: DrawSink,
    trajectory_length: float | Literal["auto"] = 1.0,
    target_acceptance: float = 0.8,
    integrator: str = "leapfrog",
    jitter: float = 0.5,
    progress: bool = True,
    trajectory_per_xi: float = TRAJECTORY_PER_XI,
    thin: int = 1,
) -> HMCRun:
    """Run ``n_chains`` HMC chains in float64 from a cold start; keep n_trajectories each.

    The cold start is 0.1 · N(0, 1) on every component of the theory's field shape, taken
    to its canonical form (U(1) links near the identity).

    After the burn-in, ``n_trajectories * thin`` trajectories run and the state after every
    ``thin``-th goes to ``sink`` (declared (n_chains, n_trajectories) draws of φ, per draw
    ``action`` and ``accepted``) as soon as it is made, so memory does not grow with the run.

    With ``jitter`` > 0 the number of steps of each trajectory is drawn uniformly from
    [(1 − jitter) n, (1 + jitter) n], independently of the state (so detailed balance
    holds), which breaks the near-periodic orbits that make modes with ω τ ≈ kπ decorrelate
    slowly at a fixed trajectory length (Mackenzie 1989).

    ``trajectory_length="auto"`` splits the burn-in: its first half tunes ε at τ₀ = 1 and
    measures ξ₂, then τ = ``trajectory_per_xi`` · ξ₂ (:func:`auto_trajectory_length`) and
    the second half re-tunes ε at that τ. Both are frozen for the production trajectories.
    A theory without ξ₂ (U(1)) refuses ``"auto"`` with a ValueError.
    """
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    if integrator not in INTEGRATORS:
        raise ValueError(f"unknown integrator {integrator!r}; known: {sorted(INTEGRATORS)}")
    check_trajectory_length(trajectory_length, point)
    if not (math.isfinite(trajectory_per_xi) and trajectory_per_xi > 0):
        raise ValueError(f"trajectory_per_xi must be positive, got {trajectory_per_xi}")
    thin = check_thin(thin)
    generator = torch.Generator().manual_seed(seed)
    shape = (n_chains, *point.theory.field_shape(point.L))
    phi = point.theory.canonical(0.1 * torch.randn(shape, generator=generator, dtype=torch.float64))
    if trajectory_length == "auto":
        phi, eps, tau = auto_burn_in(
            phi,
            point,
            burn_in,
            trajectory_per_xi,
            target_acceptance,
            generator,
            integrator,
            progress,
        )
    else:
        tau = float(trajectory_length)
        phi, eps = tune_step_size(
            phi,
            point,
            burn_in,
            tau,
            target_acceptance,
            generator,
            integrator,
            progress=progress,
        )
    eps, n_steps = steps_for(tau, eps)
    log.info("HMC step size %.4f, %d steps per trajectory of %.3f", eps, n_steps, tau)
    step = INTEGRATORS[integrator]
    per_draw = {"action": np.float64, "accepted": np.bool_}
    sink.start(n_chains, n_trajectories, point.theory.field_shape(point.L), per_draw)
    n_updates = n_trajectories * thin
    low = max(1, math.floor((1.0 - jitter) * n_steps))
    high = max(low, math.ceil((1.0 + jitter) * n_steps))
    lengths = torch.randint(low, high + 1, (n_updates,), generator=generator).numpy()
    watch = Stopwatch()
    accepted = 0
    for t in tqdm(range(n_updates), disable=not progress, desc="hmc", mininterval=10):
        kept = (t + 1) % thin == 0
        with watch.batch(n_chains):
            phi, s, accept = trajectory(phi, point, step, eps, int(lengths[t]), generator)
            if kept:
                draw = phi.numpy().astype(np.float32)[:, None]
                series = {"action": s.numpy()[:, None], "accepted": accept.numpy()[:, None]}
        accepted += int(accept.sum())
        if kept:  # written outside the timed batch
            sink.append(draw, series)
    mean_steps = float(np.mean(lengths)) if n_updates else float(n_steps)
    acceptance = accepted / (n_chains * n_updates) if n_updates else math.nan
    return HMCRun(eps, n_steps, tau, mean_steps, acceptance, watch.result())


def hmc(
    point: PointLike, n_chains: int, n_trajectories: int, burn_in: int, seed: int, **options: Any
) -> HMCResult:
    """:func:`hmc_stream` with its draws kept in memory; ``options`` are its keywords."""
    sink = Collect()
    summary = hmc_stream(point, n_chains, n_trajectories, burn_in, seed, sink, **options)
    return HMCResult(
        **vars(summary),
        phi=sink.phi,
        action=sink.per_draw["action"],
        accepted=sink.per_draw["accepted"],
    )


def stream(
    point: PointLike, settings: dict[str, Any], seed: int, sink: DrawSink, progress: bool = True
) -> ChainSummary:
    """The pipeline's HMC entry point: :func:`hmc_stream` with the config's ``hmc`` settings.

    Args:
        point: the lattice point.
        settings: ``n_chains``, ``n_trajectories`` (kept per chain), ``burn_in`` and
            optionally ``thin``, ``trajectory_length`` (number or ``"auto"``),
            ``target_acceptance``, ``integrator``, ``trajectory_jitter``,
            ``trajectory_per_xi``.
        seed: seeds every random stream.
        sink: receives φ (chain, draw, *field_shape) float32, per draw ``action`` (float64) and
            ``accepted`` (bool), a kept trajectory at a time.
    Returns:
        the acceptance over all production trajectories; info ``step_size`` ε,
        ``n_leapfrog`` (mean steps per production trajectory), ``trajectory_length`` τ,
        ``thin``, and ``seconds_per_update`` with its error: the median seconds per
        trajectory of one chain (:func:`fieldflow.mcmc.timing.per_update`), kept or not.
    """
    thin = check_thin(settings.get("thin", 1))
    result = hmc_stream(
        point,
        settings["n_chains"],
        settings["n_trajectories"],
        settings["burn_in"],
        seed,
        sink,
        trajectory_length=settings.get("trajectory_length", 1.0),
        target_acceptance=settings.get("target_acceptance", 0.8),
        integrator=settings.get("integrator", "leapfrog"),
        jitter=settings.get("trajectory_jitter", 0.5),
        progress=progress,
        trajectory_per_xi=settings.get("trajectory_per_xi", TRAJECTORY_PER_XI),
        thin=thin,
    )
    return ChainSummary(
        acceptance=result.acceptance,
        info={
            "step_size": result.step_size,
            "n_leapfrog": result.mean_steps,
            "trajectory_length": result.trajectory_length,
            "thin": thin,
            **result.timing.info(),
        },
    )


def run(
    point: PointLike, settings: dict[str, Any], seed: int, progress: bool = True
) -> ChainResult:
    """:func:`stream` with the draws kept in memory, as one :class:`ChainResult`."""
    return collect(stream, point, settings, seed, progress)
