r"""Hybrid Monte Carlo for φ⁴, many chains advanced together as one batch.

H(φ, π) = ½ Σ_x π_x² + S(φ). A trajectory of length τ (1 by default) is integrated with
leapfrog or Omelyan's second-order minimum-norm scheme, then accepted with probability
min(1, e^{−ΔH}) per chain. The step size is tuned during burn-in only (Robbins–Monro on
log ε towards a target acceptance) and then frozen, so the production chain is an exact
Markov chain with a fixed kernel.

With ``trajectory_length="auto"`` the burn-in also picks τ for the point: τ = c ξ₂ from the
second-moment correlation length measured on the burn-in chains. The slowest (k = 0) free
mode has ω² = 2 s_eff ≈ 2/ξ², so a fixed τ moves it by ωτ ∝ 1/ξ per trajectory and τ_int
grows as ξ² (z ≈ 2); τ ∝ ξ turns it by a fixed angle instead, so for a free field τ_int
per trajectory would not grow at all (z ≈ 0), while each trajectory costs ∝ ξ more
leapfrog steps (z ≈ 1 in cost). Interacting, τ_int per trajectory still grew as about
ξ₂^1.1 at c = 0.5 (docs/decisions.md): compare samplers by the cost exponent.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from fieldflow.lattice import Point, action, force, primary_observables, second_moment_length
from fieldflow.mcmc.chain import (
    ChainResult,
    ChainSummary,
    Collect,
    DrawSink,
    check_thin,
    collect,
)
from fieldflow.mcmc.timing import Stopwatch, UpdateTime

log = logging.getLogger(__name__)

ForceFn = Callable[[Tensor], Tensor]

#: Omelyan's 2MN parameter (Omelyan, Mryglod & Folk 2003).
OMELYAN_XI = 0.1931833275037836

#: Trajectory length of the first half of an ``"auto"`` burn-in, its fallback and its floor.
TAU0 = 1.0
#: Default c of τ = c ξ₂: the cheapest per independent χ₂ (leapfrog steps × 2τ_int) of
#: c ∈ {0.3…3} at E4, E5 and (L, λ) = (20, 4.807), flat within ~10% over 0.4–0.65; about
#: half the quarter period π/(2√2) ξ₂ of the slowest free mode, as past it τ_int(χ₂)
#: levels off near 2 rather than falling towards ½.
TRAJECTORY_PER_XI = 0.5


def leapfrog(phi: Tensor, pi: Tensor, f: ForceFn, eps: float, n_steps: int):
    """Velocity-Verlet integration of (φ, π) for n_steps of size eps; returns new (φ, π)."""
    pi = pi + 0.5 * eps * f(phi)
    for i in range(n_steps):
        phi = phi + eps * pi
        pi = pi + (eps if i < n_steps - 1 else 0.5 * eps) * f(phi)
    return phi, pi


def omelyan(phi: Tensor, pi: Tensor, f: ForceFn, eps: float, n_steps: int):
    """Omelyan 2MN integrator (force-first, ξ ≈ 0.1932); returns new (φ, π)."""
    xi = OMELYAN_XI
    for _ in range(n_steps):
        pi = pi + xi * eps * f(phi)
        phi = phi + 0.5 * eps * pi
        pi = pi + (1.0 - 2.0 * xi) * eps * f(phi)
        phi = phi + 0.5 * eps * pi
        pi = pi + xi * eps * f(phi)
    return phi, pi


INTEGRATORS = {"leapfrog": leapfrog, "omelyan": omelyan}


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
    """An :class:`HMCRun` with its kept draws in memory: φ (chain, draw, L, L) float32; S
    and the acceptance flag of the trajectory that produced each draw, per (chain, draw)."""

    phi: np.ndarray
    action: np.ndarray
    accepted: np.ndarray


def _trajectory(phi, point, integrator, eps, n_steps, generator):
    """One HMC update of every chain; returns (new φ, S, accepted)."""

    def f(x: Tensor) -> Tensor:
        return force(x, point.s, point.lam)

    pi = torch.randn(phi.shape, generator=generator, dtype=phi.dtype)
    s_old = action(phi, point.s, point.lam)
    h_old = 0.5 * (pi * pi).sum(dim=(-2, -1)) + s_old
    phi_new, pi_new = integrator(phi, pi, f, eps, n_steps)
    s_new = action(phi_new, point.s, point.lam)
    h_new = 0.5 * (pi_new * pi_new).sum(dim=(-2, -1)) + s_new
    log_u = torch.log(torch.rand(phi.shape[0], generator=generator, dtype=phi.dtype))
    accept = log_u < (h_old - h_new)
    accept = accept & torch.isfinite(h_new)
    phi = torch.where(accept[:, None, None], phi_new, phi)
    return phi, torch.where(accept, s_new, s_old), accept


def _steps(trajectory_length: float, eps: float) -> tuple[float, int]:
    n = max(1, round(trajectory_length / eps))
    return trajectory_length / n, n


def tune_step_size(
    phi: Tensor,
    point: Point,
    n_trajectories: int,
    trajectory_length: float,
    target_acceptance: float,
    generator: torch.Generator,
    integrator: str = "leapfrog",
    eps: float = 0.1,
    progress: bool = False,
    observe: Callable[[int, Tensor], None] | None = None,
) -> tuple[Tensor, float]:
    """Burn-in with step-size adaptation: log ε += γ_t (acceptance − target), γ_t = t^-0.6.

    ``observe(t, φ)``, if given, sees the chains after each trajectory t.
    """
    step = INTEGRATORS[integrator]
    log_eps = math.log(eps)
    for t in tqdm(range(n_trajectories), disable=not progress, desc="hmc burn-in"):
        eps_t, n = _steps(trajectory_length, math.exp(log_eps))
        phi, _, accept = _trajectory(phi, point, step, eps_t, n, generator)
        if observe is not None:
            observe(t, phi)
        gamma = (t + 1) ** -0.6
        log_eps += gamma * (accept.double().mean().item() - target_acceptance)
        log_eps = min(log_eps, math.log(trajectory_length))
    return phi, math.exp(log_eps)


class _CorrelationLength:
    """Running ⟨M²⟩/V and F over all chains from trajectory ``start`` on; ξ₂ from them."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.m2 = 0.0
        self.f_first = 0.0
        self.count = 0

    def __call__(self, t: int, phi: Tensor) -> None:
        if t >= self.start:
            primaries = primary_observables(phi)
            self.m2 += primaries["m2"].sum().item()
            self.f_first += primaries["f_first"].sum().item()
            self.count += phi.shape[0]

    def value(self, L: int) -> float:
        """ξ₂ = sqrt(χ₂/F − 1) / (2 sin(π/L)); NaN without data or with χ₂ ≤ F."""
        if self.count == 0 or not self.f_first > 0:
            return math.nan
        ratio = self.m2 / self.f_first - 1.0
        if not (math.isfinite(ratio) and ratio > 0):
            return math.nan
        return float(second_moment_length(ratio, L))


def auto_trajectory_length(
    xi: float, L: int, trajectory_per_xi: float = TRAJECTORY_PER_XI
) -> float:
    r"""τ = c ξ₂ clipped to [τ₀, L/2] with τ₀ = 1; τ₀ if ξ₂ is not finite.

    The floor: where c ξ₂ < 1 the slowest mode (ω ≈ √2/ξ₂) already turns by
    ≳ √2 c rad in a unit trajectory, and shorter ones mostly slow the UV modes (free
    quarter period π/(2√(2(s + 8))) ≈ 0.55 at s = −4): at E1 (ξ₂ ≈ 1.5) τ = 0.75 cost
    6–10% more per independent χ₂ than τ = 1, τ = 0.5 25% more. The floor also bounds
    the damage of a noisy or unthermalised ξ₂ (an underestimate falls back towards τ₀).
    The ceiling bounds the cost where ξ₂ is not a finite-volume mass scale (the broken
    phase, where the unsubtracted χ₂ picks up ⟨M⟩², or at criticality): the slowest
    non-zero momentum of a massless field, ω = 2√2 sin(π/L), has its quarter period at
    ≈ 0.18 L, so τ = L/2 already turns every non-zero mode past it.
    """
    if not math.isfinite(xi):
        return TAU0
    return min(max(trajectory_per_xi * xi, TAU0), max(L / 2.0, TAU0))


def _check_trajectory_length(trajectory_length: float | str) -> None:
    if trajectory_length == "auto":
        return
    ok = isinstance(trajectory_length, numbers.Real) and not isinstance(trajectory_length, bool)
    if not (ok and math.isfinite(trajectory_length) and trajectory_length > 0):
        raise ValueError(
            f'trajectory_length must be a positive number or "auto", got {trajectory_length!r}'
        )


def _auto_burn_in(
    phi: Tensor,
    point: Point,
    burn_in: int,
    trajectory_per_xi: float,
    target_acceptance: float,
    generator: torch.Generator,
    integrator: str,
    progress: bool,
) -> tuple[Tensor, float, float]:
    """Burn-in that picks τ: tune ε at τ₀, measure ξ₂, set τ = c ξ₂, re-tune ε at τ.

    ξ₂ comes from the second quarter of the burn-in, all chains together (the first
    quarter thermalises). Returns (φ, ε, τ).
    """
    first = burn_in // 2
    xi = _CorrelationLength(start=first // 2)
    phi, eps = tune_step_size(
        phi, point, first, TAU0, target_acceptance, generator, integrator,
        progress=progress, observe=xi,
    )  # fmt: skip
    tau = auto_trajectory_length(xi.value(point.L), point.L, trajectory_per_xi)
    log.info("HMC burn-in: xi_2 %.3f, trajectory length %.3f", xi.value(point.L), tau)
    phi, eps = tune_step_size(
        phi, point, burn_in - first, tau, target_acceptance, generator, integrator,
        eps=min(eps, tau), progress=progress,
    )  # fmt: skip
    return phi, eps, tau


def hmc_stream(
    point: Point,
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
    """
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    if integrator not in INTEGRATORS:
        raise ValueError(f"unknown integrator {integrator!r}; known: {sorted(INTEGRATORS)}")
    _check_trajectory_length(trajectory_length)
    if not (math.isfinite(trajectory_per_xi) and trajectory_per_xi > 0):
        raise ValueError(f"trajectory_per_xi must be positive, got {trajectory_per_xi}")
    thin = check_thin(thin)
    generator = torch.Generator().manual_seed(seed)
    shape = (n_chains, point.L, point.L)
    phi = 0.1 * torch.randn(shape, generator=generator, dtype=torch.float64)
    if trajectory_length == "auto":
        phi, eps, tau = _auto_burn_in(
            phi, point, burn_in, trajectory_per_xi, target_acceptance, generator, integrator,
            progress,
        )  # fmt: skip
    else:
        tau = float(trajectory_length)
        phi, eps = tune_step_size(
            phi, point, burn_in, tau, target_acceptance, generator, integrator,
            progress=progress,
        )  # fmt: skip
    eps, n_steps = _steps(tau, eps)
    log.info("HMC step size %.4f, %d steps per trajectory of %.3f", eps, n_steps, tau)
    step = INTEGRATORS[integrator]
    sink.start(n_chains, n_trajectories, point.L, {"action": np.float64, "accepted": np.bool_})
    n_updates = n_trajectories * thin
    low = max(1, math.floor((1.0 - jitter) * n_steps))
    high = max(low, math.ceil((1.0 + jitter) * n_steps))
    lengths = torch.randint(low, high + 1, (n_updates,), generator=generator).numpy()
    watch = Stopwatch()
    accepted = 0
    for t in tqdm(range(n_updates), disable=not progress, desc="hmc", mininterval=10):
        kept = (t + 1) % thin == 0
        with watch.batch(n_chains):
            phi, s, accept = _trajectory(phi, point, step, eps, int(lengths[t]), generator)
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
    point: Point, n_chains: int, n_trajectories: int, burn_in: int, seed: int, **options: Any
) -> HMCResult:
    """:func:`hmc_stream` with its draws kept in memory; ``options`` are its keywords."""
    sink = Collect()
    summary = hmc_stream(point, n_chains, n_trajectories, burn_in, seed, sink, **options)
    return HMCResult(**vars(summary), phi=sink.phi, action=sink.per_draw["action"],
                     accepted=sink.per_draw["accepted"])  # fmt: skip


def stream(
    point: Point, settings: dict[str, Any], seed: int, sink: DrawSink, progress: bool = True
) -> ChainSummary:
    """The pipeline's HMC entry point: :func:`hmc_stream` with the config's ``hmc`` settings.

    Args:
        point: the lattice point.
        settings: ``n_chains``, ``n_trajectories`` (kept per chain), ``burn_in`` and
            optionally ``thin``, ``trajectory_length`` (number or ``"auto"``),
            ``target_acceptance``, ``integrator``, ``trajectory_jitter``,
            ``trajectory_per_xi``.
        seed: seeds every random stream.
        sink: receives φ (chain, draw, L, L) float32, per draw ``action`` (float64) and
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


def run(point: Point, settings: dict[str, Any], seed: int, progress: bool = True) -> ChainResult:
    """:func:`stream` with the draws kept in memory, as one :class:`ChainResult`."""
    return collect(stream, point, settings, seed, progress)
