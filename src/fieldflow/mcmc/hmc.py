r"""Hybrid Monte Carlo for φ⁴, many chains advanced together as one batch.

H(φ, π) = ½ Σ_x π_x² + S(φ). A trajectory of length τ (1 by default) is integrated with
leapfrog or Omelyan's second-order minimum-norm scheme, then accepted with probability
min(1, e^{−ΔH}) per chain. The step size is tuned during burn-in only (Robbins–Monro on
log ε towards a target acceptance) and then frozen, so the production chain is an exact
Markov chain with a fixed kernel.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from fieldflow.lattice import Point, action, force

log = logging.getLogger(__name__)

ForceFn = Callable[[Tensor], Tensor]

#: Omelyan's 2MN parameter (Omelyan, Mryglod & Folk 2003).
OMELYAN_XI = 0.1931833275037836


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
class HMCResult:
    """φ (chain, draw, L, L) float32; S and acceptance flags per (chain, draw)."""

    phi: np.ndarray
    action: np.ndarray
    accepted: np.ndarray
    step_size: float
    n_steps: int

    @property
    def acceptance(self) -> float:
        return float(self.accepted.mean())


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
) -> tuple[Tensor, float]:
    """Burn-in with step-size adaptation: log ε += γ_t (acceptance − target), γ_t = t^-0.6."""
    step = INTEGRATORS[integrator]
    log_eps = math.log(eps)
    for t in tqdm(range(n_trajectories), disable=not progress, desc="hmc burn-in"):
        eps_t, n = _steps(trajectory_length, math.exp(log_eps))
        phi, _, accept = _trajectory(phi, point, step, eps_t, n, generator)
        gamma = (t + 1) ** -0.6
        log_eps += gamma * (accept.double().mean().item() - target_acceptance)
        log_eps = min(log_eps, math.log(trajectory_length))
    return phi, math.exp(log_eps)


def hmc(
    point: Point,
    n_chains: int,
    n_trajectories: int,
    burn_in: int,
    seed: int,
    trajectory_length: float = 1.0,
    target_acceptance: float = 0.8,
    integrator: str = "leapfrog",
    jitter: float = 0.5,
    progress: bool = True,
) -> HMCResult:
    """Run ``n_chains`` HMC chains in float64 from a cold start; keep n_trajectories each.

    With ``jitter`` > 0 the number of steps of each trajectory is drawn uniformly from
    [(1 − jitter) n, (1 + jitter) n], independently of the state (so detailed balance
    holds), which breaks the near-periodic orbits that make modes with ω τ ≈ kπ decorrelate
    slowly at a fixed trajectory length (Mackenzie 1989).
    """
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    if integrator not in INTEGRATORS:
        raise ValueError(f"unknown integrator {integrator!r}; known: {sorted(INTEGRATORS)}")
    generator = torch.Generator().manual_seed(seed)
    shape = (n_chains, point.L, point.L)
    phi = 0.1 * torch.randn(shape, generator=generator, dtype=torch.float64)
    phi, eps = tune_step_size(
        phi,
        point,
        burn_in,
        trajectory_length,
        target_acceptance,
        generator,
        integrator,
        progress=progress,
    )
    eps, n_steps = _steps(trajectory_length, eps)
    log.info("HMC step size %.4f, %d steps per trajectory", eps, n_steps)
    step = INTEGRATORS[integrator]
    phis = np.empty((n_chains, n_trajectories, point.L, point.L), dtype=np.float32)
    actions = np.empty((n_chains, n_trajectories))
    accepted = np.empty((n_chains, n_trajectories), dtype=bool)
    low = max(1, math.floor((1.0 - jitter) * n_steps))
    high = max(low, math.ceil((1.0 + jitter) * n_steps))
    lengths = torch.randint(low, high + 1, (n_trajectories,), generator=generator).tolist()
    for t in tqdm(range(n_trajectories), disable=not progress, desc="hmc", mininterval=10):
        phi, s, accept = _trajectory(phi, point, step, eps, lengths[t], generator)
        phis[:, t] = phi.numpy()
        actions[:, t] = s.numpy()
        accepted[:, t] = accept.numpy()
    return HMCResult(phis, actions, accepted, eps, n_steps)
