r"""An independent-plaquette prior for 2D U(1) links: the exact solution's structure, built in.

On the periodic L×L lattice the links θ_μ(x) (2V angles, V = L²) are, up to a linear change
of variables with integer coefficients and integer inverse, V − 1 gauge angles, the plaquette
angles θ_P of every plaquette but one, P* = (L−1, L−1), and two holonomies. The remaining
plaquette is fixed by the others, Σ_P θ_P = 0 before wrapping, since every link enters two
plaquettes with opposite signs. The Wilson weight exp(β Σ_P cos θ_P) depends on plaquettes
alone, so p is a product of von Mises densities vM_β(θ_P) = e^{β cos θ_P} / (2π I₀(β)) but for
the one factor of θ_{P*}. The prior

    q₀(θ) = (2π)^{−(V+1)} Π_{P ≠ P*} vM_κ(θ_P),   κ = β,

is that product without the constraint's factor: its importance weights are
w ∝ exp(κ cos θ_{P*}), with θ_{P*} nearly uniform on the circle, so that
ESS ≈ I₀(κ)² / I₀(2κ) ≈ 1/√(πκ) (0.46 at β = 2, 0.24 at β = 6) before any training, in
every topological sector alike. This is the property of two dimensions that makes the
theory solvable (Gross & Witten; the character expansion of :mod:`fieldflow.u1.exact`); it
has no analogue in four, where the Bianchi identity ties the plaquettes of every cube.

Sampling is exact: θ_P by rejection from the uniform density (accept with probability
e^{κ (cos θ − 1)}), the holonomies and the gauge angles uniform, then the links of the gauge
θ_1(x) = 0 for x_1 < L − 1, θ_2(0, x_2) = 0 for x_2 < L − 1 (:func:`links_from_plaquettes`)
and a uniform random gauge transformation. The density is a function of plaquettes only,
so it is gauge invariant, as the Haar prior is; it is not invariant under translations
(P* is one plaquette), as the stride-4 masks of the couplings are not either.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fieldflow.u1.lattice import gauge_transform, plaquette, wrap


def von_mises(
    kappa: float, shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None
) -> Tensor:
    """Exact draws of vM_κ(θ) ∝ e^{κ cos θ} on (−π, π], by rejection from the uniform.

    A uniform θ is kept with probability e^{κ (cos θ − 1)} ≤ 1; on average 1 in
    1/(I₀(κ) e^{−κ}) ≈ √(2πκ) proposals is kept, each element redrawn until it is.
    ``like`` gives the dtype and device.
    """
    if not (math.isfinite(kappa) and kappa >= 0):
        raise ValueError(f"the von Mises concentration must be finite and >= 0, got {kappa}")
    out = torch.empty(shape, dtype=like.dtype, device=like.device)
    pending = torch.ones(shape, dtype=torch.bool, device=like.device)
    while bool(pending.any()):
        n = int(pending.sum())
        theta = math.pi - 2.0 * math.pi * torch.rand(
            n, generator=generator, dtype=like.dtype, device=like.device
        )
        u = torch.rand(n, generator=generator, dtype=like.dtype, device=like.device)
        keep = u < torch.exp(kappa * (torch.cos(theta) - 1.0))
        index = pending.nonzero(as_tuple=True)
        chosen = tuple(i[keep] for i in index)
        out[chosen] = theta[keep]
        pending[chosen] = False
    return out


def links_from_plaquettes(plaquettes: Tensor, holonomies: Tensor) -> Tensor:
    r"""Links, shape (batch, 2, L, L), in the gauge θ_1(x) = 0 for x_1 < L − 1 and
    θ_2(0, x_2) = 0 for x_2 < L − 1, whose plaquettes are ``plaquettes`` (batch, L, L) at
    every x but P* = (L−1, L−1), which takes what the others leave, and whose
    θ_1(L−1, 0), θ_2(0, L−1) are the ``holonomies`` (batch, 2).

    From θ_P(x) = θ_1(x) + θ_2(x+1̂) − θ_1(x+2̂) − θ_2(x), with x = (i, j):
    θ_2(i, j) = θ_2(0, j) + Σ_{i' < i} θ_P(i', j), and along the last row
    θ_1(L−1, j+1) = θ_1(L−1, j) + θ_2(0, j) − θ_2(L−1, j) − θ_P(L−1, j), each wrapped to
    (−π, π] (the plaquettes are those of the links modulo 2π).
    """
    batch, L = plaquettes.shape[0], plaquettes.shape[-1]
    theta_2_first = plaquettes.new_zeros(batch, L)
    theta_2_first[:, L - 1] = holonomies[:, 1]
    below = torch.cumsum(plaquettes, dim=1) - plaquettes  # Σ_{i' < i} θ_P(i', j)
    # Wrapped as they are made: the sums grow like L π, and their float32 rounding with them.
    theta_2 = wrap(theta_2_first[:, None, :] + below)
    step = theta_2_first - theta_2[:, L - 1, :] - plaquettes[:, L - 1, :]  # (batch, L) over j
    last_row = wrap(holonomies[:, :1] + torch.cumsum(step, dim=1) - step)
    theta_1 = plaquettes.new_zeros(batch, L, L)
    theta_1[:, L - 1, :] = last_row
    return torch.stack([theta_1, theta_2], dim=1)


class PlaquettePrior:
    """The prior q₀ of the module docstring on links of an L×L lattice, at κ (= β)."""

    def __init__(self, L: int, kappa: float) -> None:
        if not (math.isfinite(kappa) and kappa >= 0):
            raise ValueError(f"the plaquette prior needs a finite kappa >= 0, got {kappa}")
        self.L = L
        self.kappa = kappa
        V = L * L
        # log I₀(κ) = log i0e(κ) + κ, stable at large κ.
        log_i0 = (
            math.log(float(torch.special.i0e(torch.tensor(kappa, dtype=torch.float64)))) + kappa
        )
        self.constant = -(V - 1) * (math.log(2.0 * math.pi) + log_i0) - (V + 1) * math.log(
            2.0 * math.pi
        )

    def sample(self, n: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
        """n configurations of links, shape (n, 2, L, L), wrapped to (−π, π]."""
        L = self.L
        plaquettes = von_mises(self.kappa, (n, L, L), like, generator)
        uniform = torch.rand(
            (n, 2 + L * L), generator=generator, dtype=like.dtype, device=like.device
        )
        angles = math.pi - 2.0 * math.pi * uniform
        links = links_from_plaquettes(plaquettes, angles[:, :2])
        return gauge_transform(links, angles[:, 2:].reshape(n, L, L))

    def log_prob(self, links: Tensor) -> Tensor:
        """log q₀ of links (batch, 2, L, L), shape (batch,): κ Σ_{P≠P*} cos θ_P + constant,
        in float64 whatever the links' dtype (the sum over V plaquettes reaches κV)."""
        cosines = torch.cos(plaquette(links.double()))
        total = cosines.sum(dim=(-2, -1)) - cosines[:, -1, -1]
        return self.kappa * total + self.constant


__all__ = ["PlaquettePrior", "links_from_plaquettes", "von_mises"]
