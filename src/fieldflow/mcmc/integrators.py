r"""Reversible, symplectic integrators of H(φ, π) = ½ Σ_x π_x² + S(φ), and one HMC update.

Both integrators are time-reversible and volume-preserving, so the Metropolis step on the
energy error ΔH makes HMC exact; their energy error shrinks as ε² per unit time. They act on
fields of any shape: φ⁴'s φ (batch, L, L) or U(1)'s link angles (batch, 2, L, L), whose
momenta live on the same axes; the point supplies S and its force
(:class:`fieldflow.theory.PointLike`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from fieldflow.theory import PointLike

ForceFn = Callable[[Tensor], Tensor]
Integrator = Callable[[Tensor, Tensor, ForceFn, float, int], tuple[Tensor, Tensor]]

#: Omelyan's 2MN parameter (Omelyan, Mryglod & Folk 2003).
OMELYAN_XI = 0.1931833275037836


def leapfrog(
    phi: Tensor, pi: Tensor, f: ForceFn, eps: float, n_steps: int
) -> tuple[Tensor, Tensor]:
    """Velocity-Verlet integration of (φ, π) for n_steps of size eps; returns new (φ, π)."""
    pi = pi + 0.5 * eps * f(phi)
    for i in range(n_steps):
        phi = phi + eps * pi
        pi = pi + (eps if i < n_steps - 1 else 0.5 * eps) * f(phi)
    return phi, pi


def omelyan(phi: Tensor, pi: Tensor, f: ForceFn, eps: float, n_steps: int) -> tuple[Tensor, Tensor]:
    """Omelyan 2MN integrator (force-first, ξ ≈ 0.1932); returns new (φ, π)."""
    xi = OMELYAN_XI
    for _ in range(n_steps):
        pi = pi + xi * eps * f(phi)
        phi = phi + 0.5 * eps * pi
        pi = pi + (1.0 - 2.0 * xi) * eps * f(phi)
        phi = phi + 0.5 * eps * pi
        pi = pi + xi * eps * f(phi)
    return phi, pi


INTEGRATORS: dict[str, Integrator] = {"leapfrog": leapfrog, "omelyan": omelyan}


def trajectory(
    phi: Tensor,
    point: PointLike,
    integrator: Integrator,
    eps: float,
    n_steps: int,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor, Tensor]:
    """One HMC update of every chain: Gaussian momenta, ``n_steps`` of ``integrator``, then
    accept with probability min(1, e^{−ΔH}) per chain (never a non-finite H). The kinetic
    energy ½ Σ π² sums over every non-batch dimension; the new state is returned as the
    theory's canonical representative (U(1) links wrapped to (−π, π]; φ⁴ unchanged).

    Args:
        phi: the chains, shape (chain, *field_shape), e.g. (chain, L, L) or (chain, 2, L, L).
    Returns:
        the new φ, its action S and whether each chain accepted, shapes (chain,
        *field_shape), (chain,) and (chain,).
    """
    sites = tuple(range(1, phi.ndim))
    pi = torch.randn(phi.shape, generator=generator, dtype=phi.dtype)
    s_old = point.action(phi)
    h_old = 0.5 * (pi * pi).sum(dim=sites) + s_old
    phi_new, pi_new = integrator(phi, pi, point.force, eps, n_steps)
    s_new = point.action(phi_new)
    h_new = 0.5 * (pi_new * pi_new).sum(dim=sites) + s_new
    log_u = torch.log(torch.rand(phi.shape[0], generator=generator, dtype=phi.dtype))
    accept = log_u < (h_old - h_new)
    accept = accept & torch.isfinite(h_new)
    phi = torch.where(accept.view(-1, *(1,) * len(sites)), phi_new, phi)
    return point.theory.canonical(phi), torch.where(accept, s_new, s_old), accept
