r"""Odd monotone rational-quadratic splines, the building block of the Z2-odd layers.

A rational-quadratic spline (Durkan et al. arXiv:1906.04032; the algebra of zuko's
:class:`~zuko.transforms.MonotonicRQSTransform`) on [−B, B] with 2K bins is the identity
outside [−B, B]. Reversing the order of its widths, heights and derivatives R gives
g_{Rθ}(x) = −g_θ(−x) (see :mod:`fieldflow.flows.nsf`), so parameters that are palindromes,
Rθ = θ, make it odd: g(−x) = −g(x). :func:`odd_spline` builds them from the positive half:
K widths w, K heights h and K derivatives d — K − 1 interior ones of the half and, last,
the one at x = 0 —

    widths = (w_K … w_1, w_1 … w_K),  heights likewise,
    derivatives = (d_{K−1} … d_1, d_0, d_1 … d_{K−1}),

all unnormalised; zero parameters give equal bins on the diagonal with unit derivatives,
the identity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from zuko.transforms import MonotonicRQSTransform

from fieldflow.flows.base import Bijection


def odd_spline(
    widths: Tensor, heights: Tensor, derivatives: Tensor, bound: float
) -> MonotonicRQSTransform:
    """The odd spline on [−bound, bound] whose positive half has these parameters.

    Args:
        widths, heights: unnormalised, shape (K,).
        derivatives: unnormalised, shape (K,): K − 1 interior knots of the half, then x = 0.
    """
    d_half, d_zero = derivatives[:-1], derivatives[-1:]
    return MonotonicRQSTransform(
        torch.cat([widths.flip(0), widths]),
        torch.cat([heights.flip(0), heights]),
        torch.cat([d_half.flip(0), d_zero, d_half]),
        bound=bound,
    )


class OddSplineLayer(Bijection):
    """A layer built on one odd spline: the parameters of its positive half, zero (the
    identity) at initialisation — K widths, K heights and K derivatives.

    Args:
        what: the layer's name in error messages.
        n_bins: K, bins of the positive half (2K in all).
        bound: the half-width of the spline's domain, > 0.
    """

    def __init__(self, what: str, n_bins: int, bound: float) -> None:
        super().__init__()
        if n_bins < 1:
            raise ValueError(f"the {what} needs n_bins >= 1, got {n_bins}")
        if not bound > 0:
            raise ValueError(f"the {what} needs bound > 0, got {bound}")
        self.n_bins = n_bins
        self.bound = float(bound)
        self.widths = nn.Parameter(torch.zeros(n_bins))
        self.heights = nn.Parameter(torch.zeros(n_bins))
        self.derivatives = nn.Parameter(torch.zeros(n_bins))

    def odd_spline(self, bound: float) -> MonotonicRQSTransform:
        """The odd spline of these parameters on [−bound, bound]."""
        return odd_spline(self.widths, self.heights, self.derivatives, bound)
