r"""Circular rational-quadratic splines: element-wise diffeomorphisms of the circle.

A rational-quadratic spline (Durkan et al. arXiv:1906.04032) on [−π, π] with K bins, knots
(x_k, y_k), k = 0..K, x_0 = y_0 = −π, x_K = y_K = π, and derivatives d_k > 0 at the knots:

    h(x) = y_k + (y_{k+1} − y_k) [s_k ξ² + d_k ξ(1−ξ)] / [s_k + (d_k + d_{k+1} − 2 s_k) ξ(1−ξ)],

ξ = (x − x_k)/(x_{k+1} − x_k), s_k = (y_{k+1} − y_k)/(x_{k+1} − x_k). It is monotone and maps
[−π, π] onto itself with −π ↦ −π and π ↦ π. Following Rezende et al. arXiv:2002.02428 §4,
the end derivatives are one parameter, d_K = d_0, so h' is continuous across the point
−π ≡ π and h is a C¹ diffeomorphism of the circle (a spline with the point ±π fixed).

Why splines and not the mixtures of non-compact projections of Kanwar et al.
arXiv:2003.06413: the spline's inverse is closed-form (a quadratic per bin), where a mixture
needs bisection, and the density at ±π (where the plaquettes of large β have almost none) is
set directly by d_0 instead of through the tails of every projection.

Unnormalised parameters θ, 3K per element, give the knots:

    widths = 2π [ε + (1 − Kε) softmax(θ[:K])],   heights likewise from θ[K:2K],
    d_k = ε + (1 − ε) softplus(θ[2K + k]) / log 2,  k = 0..K−1,  d_K = d_0,

so θ = 0 gives equal bins on the diagonal with unit derivatives: the identity. The transform
(:class:`CircularSpline`) is kept apart from the network that produces θ, as zuko does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

#: Smallest bin width and height, as a fraction of 2π, and smallest knot derivative.
MIN_BIN = 1e-3
MIN_DERIVATIVE = 1e-3


def n_spline_parameters(n_bins: int) -> int:
    """Unnormalised parameters per element of a K-bin circular spline: 3K."""
    return 3 * n_bins


@dataclass(frozen=True)
class CircularSpline:
    r"""Element-wise circular splines h: [−π, π] → [−π, π], one per element.

    Attributes:
        x_knots, y_knots: knots, shape (..., K + 1), from −π to π, increasing.
        derivatives: d_k > 0 at the knots, shape (..., K + 1), with d_K = d_0.
    """

    x_knots: Tensor
    y_knots: Tensor
    derivatives: Tensor

    @classmethod
    def from_parameters(cls, θ: Tensor) -> CircularSpline:
        """The splines of unnormalised parameters θ, shape (..., 3K), K ≥ 1."""
        if θ.shape[-1] % 3 or θ.shape[-1] == 0:
            raise ValueError(f"a circular spline needs 3K parameters, got {θ.shape[-1]}")
        w, h, d = θ.chunk(3, dim=-1)
        d = MIN_DERIVATIVE + (1.0 - MIN_DERIVATIVE) * F.softplus(d) / math.log(2.0)
        return cls(_knots(w), _knots(h), torch.cat([d, d[..., :1]], dim=-1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """y = h(x) and log h'(x) for angles x in [−π, π] of shape (...)."""
        return _spline(x, self.x_knots, self.y_knots, self.derivatives, inverse=False)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """x = h⁻¹(y) and log (h⁻¹)'(y) = −log h'(x) for y in [−π, π] of shape (...)."""
        return _spline(y, self.x_knots, self.y_knots, self.derivatives, inverse=True)


def _knots(unnormalised: Tensor) -> Tensor:
    """Knots −π = k_0 < … < k_K = π from K unnormalised bin sizes, shape (..., K + 1)."""
    n_bins = unnormalised.shape[-1]
    sizes = MIN_BIN + (1.0 - n_bins * MIN_BIN) * torch.softmax(unnormalised, dim=-1)
    interior = 2.0 * math.pi * torch.cumsum(sizes[..., :-1], dim=-1) - math.pi
    # The ends are set, not summed: rounding must not move the fixed point ±π.
    ends = torch.full_like(sizes[..., :1], math.pi)
    return torch.cat([-ends, interior, ends], dim=-1)


def _spline(
    v: Tensor, x_knots: Tensor, y_knots: Tensor, d: Tensor, inverse: bool
) -> tuple[Tensor, Tensor]:
    """The rational quadratic of the module docstring (or its inverse) at v, shape (...)."""
    shape = torch.broadcast_shapes(v.shape, x_knots.shape[:-1])
    v = v.expand(shape)
    x_knots, y_knots, d = (t.expand(*shape, t.shape[-1]) for t in (x_knots, y_knots, d))
    knots = y_knots if inverse else x_knots
    k = (v.unsqueeze(-1) >= knots[..., 1:-1]).sum(dim=-1, keepdim=True)

    def at(t: Tensor, offset: int) -> Tensor:
        return torch.gather(t, -1, k + offset).squeeze(-1)

    x0, w = at(x_knots, 0), at(x_knots, 1) - at(x_knots, 0)
    y0, h = at(y_knots, 0), at(y_knots, 1) - at(y_knots, 0)
    d0, d1 = at(d, 0), at(d, 1)
    s = h / w
    curvature = d0 + d1 - 2.0 * s
    if inverse:
        dy = v - y0
        a = h * (s - d0) + dy * curvature
        b = h * d0 - dy * curvature
        c = -s * dy
        disc = (b * b - 4.0 * a * c).clamp(min=0.0)
        ξ = (2.0 * c / (-b - disc.sqrt())).clamp(0.0, 1.0)
        out = x0 + ξ * w
    else:
        ξ = ((v - x0) / w).clamp(0.0, 1.0)
    ξη = ξ * (1.0 - ξ)
    denominator = s + curvature * ξη
    if not inverse:
        out = y0 + h * (s * ξ * ξ + d0 * ξη) / denominator
    numerator = s * s * (d1 * ξ * ξ + 2.0 * s * ξη + d0 * (1.0 - ξ) ** 2)
    log_derivative = numerator.log() - 2.0 * denominator.log()
    return out, -log_derivative if inverse else log_derivative
