r"""RealNVP: affine coupling layers with checkerboard masks (Albergo et al. arXiv:2101.08176).

Each layer freezes the sites of one checkerboard parity and updates the others
(:class:`~fieldflow.flows.coupling.CheckerboardCoupling`),

    φ'_a = e^{s(φ_f)} ⊙ φ_a + t(φ_f),   log |det| = Σ_{x ∈ a} s_x(φ_f),

with s = tanh of the conditioner's first channel and t its second. Reflecting the
parameters as R(s, t) = (s, −t) gives x ↦ −g(−x), so with ``z2_equivariant`` the
symmetrised conditioner has s(−φ) = s(φ) and t(−φ) = −t(φ), and every layer is odd.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from fieldflow.flows.base import Flow
from fieldflow.flows.coupling import CheckerboardFamily, checkerboard_flow


@dataclass(frozen=True)
class Affine:
    """x ↦ e^{tanh s} x + t on the active sites, θ = (s, t) per site."""

    n_parameters: ClassVar[int] = 2

    def reflect(self, θ: Tensor) -> Tensor:
        return torch.cat([θ[:, :1], -θ[:, 1:]], dim=1)

    def __call__(
        self, x: Tensor, θ: Tensor, active: Tensor, inverse: bool
    ) -> tuple[Tensor, Tensor]:
        # Masked rather than gathered: the log-det sums s over every site, zero where frozen.
        s, t = torch.tanh(θ[:, 0]) * active, θ[:, 1] * active
        if inverse:
            return torch.where(active, (x - t) * torch.exp(-s), x), -s.sum(dim=(-2, -1))
        return torch.where(active, x * torch.exp(s) + t, x), s.sum(dim=(-2, -1))


def build_realnvp(
    L: int,
    n_layers: int = 16,
    hidden_channels: Sequence[int] = (8, 8),
    kernel_size: int = 3,
    z2_equivariant: bool = False,
) -> Flow:
    """The flow of Albergo et al.'s tutorial with the defaults (12,960 parameters)."""
    return checkerboard_flow(L, n_layers, Affine(), hidden_channels, kernel_size, z2_equivariant)


class RealNVP(CheckerboardFamily):
    name = "realnvp"

    def build(self, L: int, **hyperparameters: Any) -> Flow:
        return build_realnvp(L, **hyperparameters)
