r"""Neural spline flow: rational-quadratic spline couplings with checkerboard masks.

Durkan et al. arXiv:1906.04032, as used for φ⁴ by Del Debbio, Marsh Rossney & Wilson
arXiv:2105.12481. Each layer freezes the sites of one checkerboard parity
(:class:`~fieldflow.flows.coupling.CheckerboardCoupling`) and moves every other site
through its own monotone spline g_θ on [−B, B], with K bins and knots (x_k, y_k),
k = 0..K, x_0 = y_0 = −B, x_K = y_K = B, and derivatives d_k at the knots:

    g_θ(x) = y_k + (y_{k+1} − y_k) [s_k ξ² + d_k ξ(1−ξ)] / [s_k + (d_k + d_{k+1} − 2 s_k) ξ(1−ξ)],

ξ = (x − x_k)/(x_{k+1} − x_k), s_k = (y_{k+1} − y_k)/(x_{k+1} − x_k), and g_θ(x) = x outside
[−B, B] (d_0 = d_K = 1, so g is C¹). θ_x — K unnormalised widths, K heights and K − 1
interior derivatives per active site x — comes from a circular-padded CNN on the frozen
sites. The spline algebra is zuko's :class:`~zuko.transforms.MonotonicRQSTransform`, whose
zero parameters give equal bins on the diagonal with unit derivatives: the identity, so a
zero-initialised conditioner makes the flow the identity.

With ``z2_equivariant`` every layer is odd, f(−φ) = −f(φ). Let R reverse the order of the
widths, heights and derivatives. R moves knot k to (−x_{K−k}, −y_{K−k}) with derivative
d_{K−k}, and the rational quadratic is symmetric under ξ → 1 − ξ, d_k ↔ d_{k+1}, so

    g_{Rθ}(x) = −g_θ(−x).

The conditioner is symmetrised as θ(φ_f) = ½ [c(φ_f) + R c(−φ_f)], hence θ(−φ_f) = R θ(φ_f)
and g_{θ(−φ_f)}(−x) = −g_{θ(φ_f)}(x), with the same log-derivative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from zuko.transforms import MonotonicRQSTransform

from fieldflow.flows.base import Flow
from fieldflow.flows.coupling import CheckerboardFamily, checkerboard_flow


@dataclass(frozen=True)
class RationalQuadratic:
    """A rational-quadratic spline of each active site on [−bound, bound], K = n_bins.

    θ per site: K widths, K heights and K − 1 interior derivatives, all unnormalised.
    """

    n_bins: int
    bound: float

    def __post_init__(self) -> None:
        if self.n_bins < 2:
            raise ValueError(f"a spline needs at least two bins, got n_bins={self.n_bins}")

    @property
    def n_parameters(self) -> int:
        return 3 * self.n_bins - 1

    def _split(self, θ: Tensor, dim: int) -> tuple[Tensor, Tensor, Tensor]:
        K = self.n_bins
        return θ.narrow(dim, 0, K), θ.narrow(dim, K, K), θ.narrow(dim, 2 * K, K - 1)

    def reflect(self, θ: Tensor) -> Tensor:
        return torch.cat([p.flip(1) for p in self._split(θ, 1)], dim=1)

    def __call__(
        self, x: Tensor, θ: Tensor, active: Tensor, inverse: bool
    ) -> tuple[Tensor, Tensor]:
        # (batch, 3K − 1, L, L) -> (batch, n_active, 3K − 1): one spline per active site.
        spline = MonotonicRQSTransform(
            *self._split(θ[:, :, active].transpose(1, 2), -1), bound=self.bound
        )
        y_active, ladj = (spline.inv if inverse else spline).call_and_ladj(x[:, active])
        y = x.clone()
        y[:, active] = y_active
        return y, ladj.sum(dim=-1)


def build_nsf(
    L: int,
    n_layers: int = 6,
    hidden_channels: Sequence[int] = (8, 8),
    kernel_size: int = 3,
    n_bins: int = 8,
    bound: float = 5.0,
    z2_equivariant: bool = False,
) -> Flow:
    """Spline couplings on alternating checkerboards; the defaults have 14,058 parameters."""
    spline = RationalQuadratic(n_bins, bound)
    return checkerboard_flow(L, n_layers, spline, hidden_channels, kernel_size, z2_equivariant)


class NSF(CheckerboardFamily):
    name = "nsf"

    def build(self, L: int, **hyperparameters: Any) -> Flow:
        return build_nsf(L, **hyperparameters)
