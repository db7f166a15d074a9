r"""Neural spline flow: rational-quadratic spline couplings with checkerboard masks.

Durkan et al. arXiv:1906.04032, as used for φ⁴ by Del Debbio, Marsh Rossney & Wilson
arXiv:2105.12481. Each layer freezes the sites of one checkerboard parity and moves every
other site through its own monotone spline g_θ on [−B, B], with K bins and knots
(x_k, y_k), k = 0..K, x_0 = y_0 = −B, x_K = y_K = B, and derivatives d_k at the knots:

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

import torch
from torch import Tensor, nn
from zuko.transforms import MonotonicRQSTransform

from fieldflow.flows.base import Bijection, Flow
from fieldflow.flows.realnvp import checkerboard, conv_net


class SplineCoupling(Bijection):
    """One checkerboard rational-quadratic spline coupling acting on (batch, L, L).

    Args:
        net: conditioner mapping (batch, 1, L, L) to (batch, 3K − 1, L, L): per site K
            widths, K heights and K − 1 interior derivatives, all unnormalised.
        mask: (L, L), 1 on the frozen sites.
        n_bins: K.
        bound: B, the half-width of the spline's domain and codomain.
        z2_equivariant: symmetrise the conditioner so that the layer is odd.
    """

    def __init__(
        self,
        net: nn.Module,
        mask: Tensor,
        n_bins: int,
        bound: float,
        z2_equivariant: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.n_bins = n_bins
        self.bound = bound
        self.z2_equivariant = z2_equivariant
        self.register_buffer("active", mask == 0)

    def _spline(self, x: Tensor) -> MonotonicRQSTransform:
        """The splines of the active sites, parameters of shape (batch, n_active, ·)."""
        frozen = x.masked_fill(self.active, 0.0).unsqueeze(1)
        if self.z2_equivariant:
            both = self.net(torch.cat([frozen, -frozen]))
            θ, θ_neg = self._active_params(both).chunk(2)
            w, h, d = self._split(θ)
            w_neg, h_neg, d_neg = (p.flip(-1) for p in self._split(θ_neg))
            w, h, d = 0.5 * (w + w_neg), 0.5 * (h + h_neg), 0.5 * (d + d_neg)
        else:
            w, h, d = self._split(self._active_params(self.net(frozen)))
        return MonotonicRQSTransform(w, h, d, bound=self.bound)

    def _active_params(self, out: Tensor) -> Tensor:
        # (batch, 3K − 1, L, L) -> (batch, n_active, 3K − 1)
        return out[:, :, self.active].transpose(1, 2)

    def _split(self, θ: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        K = self.n_bins
        return θ[..., :K], θ[..., K : 2 * K], θ[..., 2 * K :]

    def _couple(self, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        spline = self._spline(x)
        transform = spline.inv if inverse else spline
        y_active, ladj = transform.call_and_ladj(x[:, self.active])
        y = x.clone()
        y[:, self.active] = y_active
        return y, ladj.sum(dim=-1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._couple(x, inverse=False)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self._couple(y, inverse=True)


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
    if L % 2:
        raise ValueError(f"checkerboard couplings need an even L, got L={L}")
    if n_bins < 2:
        raise ValueError(f"a spline needs at least two bins, got n_bins={n_bins}")
    layers = [
        SplineCoupling(
            conv_net(1, hidden_channels, 3 * n_bins - 1, kernel_size),
            checkerboard(L, i % 2),
            n_bins,
            bound,
            z2_equivariant,
        )
        for i in range(n_layers)
    ]
    return Flow(L, layers)
