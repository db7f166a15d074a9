r"""An odd, monotone spline of the field's zero mode: where Z2 symmetry breaking lives.

With the unit vector u = (1/√V) (1, …, 1), a configuration splits as φ = a u + φ_⊥, where
a = (1/√V) Σ_x φ_x = M/√V is its zero mode and φ_⊥ the fluctuation about the mean. The map

    φ = a u + φ_⊥  ↦  g(a) u + e^γ φ_⊥,

is a bijection of ℝ^V for every monotone g, with the exact log-det
log g'(a) + (V − 1) γ (in an orthonormal basis that contains u the Jacobian is
diag(g'(a), e^γ, …, e^γ)). It commutes with translations and the lattice rotations and
reflections, which fix u, and with φ → −φ when g is odd. A local flow, whose vector field
sees one site and its neighbours, must coordinate every site to move the mean; this map
moves it in one step and makes the distribution of M bimodal, with the ordered phase's two
vacua at M ≈ ±V v, while e^γ sets the width of the fluctuations about them.

g is an odd rational-quadratic spline (:func:`~fieldflow.flows.splines.odd_spline`, 2K bins)
scaled from [−B_in, B_in] onto [−B_out, B_out] and linear beyond,

    g(a) = B_out ρ(a / B_in),   ρ: [−1, 1] → [−1, 1],  ρ(x) = x for |x| > 1.

The output bound is B_out = B_in e^κ. In the ordered phase the vacua sit at a = ±√V v, so
B_out/√V, a magnetisation per site, is what carries over to a larger lattice:
:meth:`ZeroModeSpline.at` adds log(L_new/L) to κ. At initialisation every parameter is zero
and the map is the identity.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from zuko.transforms import MonotonicRQSTransform

from fieldflow.flows.splines import OddSplineLayer


class ZeroModeSpline(OddSplineLayer):
    """a u + φ_⊥ ↦ g(a) u + e^γ φ_⊥ for (batch, L, L) configurations, a = Σ_x φ_x / √V.

    Args:
        L: lattice size; V = L².
        n_bins: K, bins of the positive half (2K in all).
        bound: B_in, the half-width in a of the spline's domain; beyond it g is linear.

    Parameters, all zero at initialisation: K widths, K heights, K − 1 interior derivatives
    and the derivative at a = 0 (unnormalised, the positive half), κ = log(B_out/B_in) and
    γ = ``log_width``; 3K + 2 in all.
    """

    def __init__(self, L: int, n_bins: int = 8, bound: float = 5.0) -> None:
        super().__init__("zero-mode spline", n_bins, bound)
        self.L = L
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.log_width = nn.Parameter(torch.zeros(()))

    def spline(self) -> MonotonicRQSTransform:
        """ρ on [−1, 1]."""
        return self.odd_spline(1.0)

    def _map(self, phi: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        sqrt_v = float(self.L)
        a = phi.sum(dim=(-2, -1)) / sqrt_v
        κ, γ = self.log_scale.to(phi), self.log_width.to(phi)
        spline = self.spline()
        if inverse:
            x = spline.inv(a / (self.bound * κ.exp()))
            _, ladj = spline.call_and_ladj(x)
            a_new, log_det, γ = self.bound * x, -ladj - κ, -γ
        else:
            ρ, ladj = spline.call_and_ladj(a / self.bound)
            a_new, log_det = self.bound * κ.exp() * ρ, ladj + κ
        fluctuation = phi - (a / sqrt_v)[:, None, None]
        out = γ.exp() * fluctuation + (a_new / sqrt_v)[:, None, None]
        return out, log_det + (self.L * self.L - 1) * γ

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._map(x, inverse=False)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self._map(y, inverse=True)

    def at(self, L_new: int) -> ZeroModeSpline:
        """The same map of the magnetisation M/V = a/√V on an L_new×L_new lattice.

        The spline's shape and γ are kept and its output bound scaled by L_new/L, so that
        the vacua it has learnt stay at the same M/V (the ordered phase's scaling of a).
        """
        new = ZeroModeSpline(L_new, self.n_bins, self.bound).to(self.widths)
        new.load_state_dict(self.state_dict())
        with torch.no_grad():
            new.log_scale.add_(math.log(L_new / self.L))
        return new
