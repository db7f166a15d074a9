r"""2D U(1) lattice gauge theory on a periodic L×L lattice: plaquettes, action, force, charge.

Conventions follow DESIGN.md §2b (Kanwar et al. 2020, arXiv:2003.06413; Albergo et al. 2021,
arXiv:2101.08176). Links are real angles θ_μ(x) of shape (batch, 2, L, L): ``links[:, 0]`` is
θ_1 (direction 1̂, tensor dim −2) and ``links[:, 1]`` is θ_2 (direction 2̂, tensor dim −1), and
f(x + μ̂) is ``f.roll(-1, dim)``. The plaquette angle and the Wilson action are

    θ_P(x) = θ_1(x) + θ_2(x+1̂) − θ_1(x+2̂) − θ_2(x),    S = −β Σ_P cos θ_P,

and the geometric topological charge is Q = (1/2π) Σ_P arg e^{iθ_P} with arg in (−π, π].
Every function is periodic in each link, batched over the leading dimension and works in
whatever dtype it is given.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: Tensor dimension of each lattice direction μ = 1, 2 in a field of shape (..., L, L).
_DIMS = (-2, -1)


def wrap(angles: Tensor) -> Tensor:
    r"""Angles reduced modulo 2π to the canonical range (−π, π], any shape."""
    return math.pi - torch.remainder(math.pi - angles, 2.0 * math.pi)


def _shift(field: Tensor, mu: int) -> Tensor:
    """f(x + μ̂) for μ = 0 (direction 1̂) or 1 (direction 2̂) of a field (..., L, L)."""
    return field.roll(-1, _DIMS[mu])


def plaquette(links: Tensor) -> Tensor:
    r"""Plaquette angles θ_P(x) = θ_1(x) + θ_2(x+1̂) − θ_1(x+2̂) − θ_2(x), wrapped to (−π, π].

    Args:
        links: link angles, shape (batch, 2, L, L).
    Returns:
        θ_P per plaquette (labelled by its lower-left site x), shape (batch, L, L).
    """
    theta_1, theta_2 = links[:, 0], links[:, 1]
    return wrap(theta_1 + _shift(theta_2, 0) - _shift(theta_1, 1) - theta_2)


def action(links: Tensor, beta: float) -> Tensor:
    r"""Wilson action S = −β Σ_P cos θ_P (no constant term).

    Args:
        links: link angles, shape (batch, 2, L, L).
    Returns:
        S per configuration, shape (batch,).
    """
    return -beta * torch.cos(plaquette(links)).sum(dim=_DIMS)


def force(links: Tensor, beta: float) -> Tensor:
    r"""F = −∂S/∂θ_μ(x), from the two plaquettes that contain each link.

    θ_1(x) enters θ_P(x) with sign + and θ_P(x−2̂) with sign −; θ_2(x) enters θ_P(x−1̂)
    with + and θ_P(x) with −. With ∂S/∂θ_P = β sin θ_P this gives

        F_1(x) = −β [sin θ_P(x) − sin θ_P(x−2̂)],    F_2(x) = −β [sin θ_P(x−1̂) − sin θ_P(x)].

    Args:
        links: link angles, shape (batch, 2, L, L).
    Returns:
        the force, same shape as ``links``.
    """
    sin_p = torch.sin(plaquette(links))
    force_1 = -beta * (sin_p - sin_p.roll(1, _DIMS[1]))
    force_2 = -beta * (sin_p.roll(1, _DIMS[0]) - sin_p)
    return torch.stack((force_1, force_2), dim=1)


def topological_charge(links: Tensor) -> Tensor:
    r"""Geometric charge Q = (1/2π) Σ_P arg e^{iθ_P}, arg in (−π, π].

    On the periodic lattice Σ_P θ_P = 0 before wrapping, so Q is an integer up to rounding;
    it is returned unrounded, as a float of the links' dtype.

    Args:
        links: link angles, shape (batch, 2, L, L).
    Returns:
        Q per configuration, shape (batch,).
    """
    return plaquette(links).sum(dim=_DIMS) / (2.0 * math.pi)


def gauge_transform(links: Tensor, alpha: Tensor) -> Tensor:
    r"""θ_μ(x) → α(x) + θ_μ(x) − α(x+μ̂), wrapped to (−π, π]; plaquettes are invariant.

    Args:
        links: link angles, shape (batch, 2, L, L).
        alpha: gauge angles per site, shape (batch, L, L).
    Returns:
        the transformed links, shape (batch, 2, L, L).
    """
    shifted = torch.stack([_shift(alpha, mu) for mu in (0, 1)], dim=1)
    return wrap(alpha[:, None] + links - shifted)


def primary_observables(links: Tensor) -> dict[str, Tensor]:
    r"""Per-configuration primary quantities, each of shape (batch,).

    With V = L² plaquettes:

    - ``plaquette`` = (1/V) Σ_P cos θ_P  (its mean is the DESIGN.md ``plaquette``)
    - ``charge`` = Q, the geometric topological charge rounded to the nearest integer
    - ``charge2`` = Q²  (its mean over V is ``topological_susceptibility`` χ_t)

    Q is rounded because it is an integer only up to rounding (~1e-15 in float64): a chain
    frozen in one sector would otherwise fluctuate by that noise alone, and the Γ-method
    would give it a τ_int(Q) ≈ ½ of the noise, pricing a frozen chain as cheap. Rounded,
    such a chain is constant, which :func:`fieldflow.analysis.gamma_estimate` reports as
    having no τ_int at all.
    """
    charge = torch.round(topological_charge(links))
    return {
        "plaquette": torch.cos(plaquette(links)).mean(dim=_DIMS),
        "charge": charge,
        "charge2": charge * charge,
    }
