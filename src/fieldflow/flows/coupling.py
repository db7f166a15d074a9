r"""Checkerboard couplings: one parity of sites frozen, the other moved site by site.

A layer splits the lattice by the parity of x + y into frozen sites f and active sites a
and maps every active site through an element-wise bijection g whose parameters θ_x come
from a circular-padded CNN on the frozen sites (Dinh et al. arXiv:1605.08803; Albergo et
al. arXiv:1904.12072):

    φ'_f = φ_f,   φ'_a = g_{θ_a(φ_f)}(φ_a),   log |det| = Σ_{x ∈ a} log g'_{θ_x}(φ_x).

The Jacobian is triangular, so the log-det is exact and the inverse is g⁻¹ site by site.
The CNN makes the map translation-equivariant (by two sites). Each element-wise transform
names a reflection R of its parameters with g_{Rθ}(x) = −g_θ(−x); with ``z2_equivariant``
the conditioner is symmetrised as θ(φ_f) = ½ [c(φ_f) + R c(−φ_f)], hence
θ(−φ_f) = R θ(φ_f) and every layer is odd, f(−φ) = −f(φ), with an even log-det.
The element-wise transforms are :class:`~fieldflow.flows.realnvp.Affine` and
:class:`~fieldflow.flows.nsf.RationalQuadratic`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from fieldflow.flows.base import Bijection, Flow
from fieldflow.flows.family import FlowFamily


def checkerboard(L: int, parity: int) -> Tensor:
    """Boolean mask of shape (L, L), True where (x + y) % 2 == parity."""
    idx = torch.arange(L)
    return (idx[:, None] + idx[None, :]) % 2 == parity


def conv_net(
    in_channels: int, hidden: Sequence[int], out_channels: int, kernel_size: int
) -> nn.Sequential:
    """Circular-padded CNN, LeakyReLU between layers; the last layer starts at zero."""
    sizes = [in_channels, *hidden, out_channels]
    layers: list[nn.Module] = []
    for i, (c_in, c_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Conv2d(c_in, c_out, kernel_size, padding="same", padding_mode="circular"))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU())
    # Zero output weights make every coupling the identity at initialisation.
    nn.init.zeros_(layers[-1].weight)
    nn.init.zeros_(layers[-1].bias)
    return nn.Sequential(*layers)


class ElementwiseTransform(Protocol):
    """A bijection g_θ of every active site, its parameters θ given per site."""

    #: Channels of θ the conditioner produces per site.
    n_parameters: int

    def reflect(self, θ: Tensor) -> Tensor:
        """Rθ with g_{Rθ}(x) = −g_θ(−x); θ of shape (batch, n_parameters, L, L)."""
        ...

    def __call__(
        self, x: Tensor, θ: Tensor, active: Tensor, inverse: bool
    ) -> tuple[Tensor, Tensor]:
        """g_θ (or g_θ⁻¹) on the active sites of x, (batch, L, L); the others unchanged.

        Returns:
            the image, shape (batch, L, L), and its log |det|, shape (batch,).
        """
        ...


class CheckerboardCoupling(Bijection):
    """One checkerboard coupling acting on (batch, L, L).

    Args:
        net: conditioner mapping (batch, 1, L, L) to (batch, n_parameters, L, L).
        elementwise: the transform of the active sites.
        frozen: (L, L) boolean mask of the frozen sites.
        z2_equivariant: symmetrise the conditioner so that the layer is odd.
    """

    def __init__(
        self,
        net: nn.Module,
        elementwise: ElementwiseTransform,
        frozen: Tensor,
        z2_equivariant: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.elementwise = elementwise
        self.z2_equivariant = z2_equivariant
        # Rebuilt from L with the layer, so not saved: a model file holds parameters only.
        self.register_buffer("active", ~frozen, persistent=False)

    def conditioner(self, x: Tensor) -> Tensor:
        """θ(φ_f) of every site, shape (batch, n_parameters, L, L); x shape (batch, L, L)."""
        frozen = x.masked_fill(self.active, 0.0).unsqueeze(1)
        if not self.z2_equivariant:
            return self.net(frozen)
        c, c_neg = self.net(torch.cat([frozen, -frozen])).chunk(2)
        return 0.5 * (c + self.elementwise.reflect(c_neg))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.elementwise(x, self.conditioner(x), self.active, inverse=False)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self.elementwise(y, self.conditioner(y), self.active, inverse=True)


def checkerboard_flow(
    L: int,
    n_layers: int,
    elementwise: ElementwiseTransform,
    hidden_channels: Sequence[int],
    kernel_size: int,
    z2_equivariant: bool,
) -> Flow:
    """``n_layers`` couplings on alternating parities, each with its own conditioner."""
    if L % 2:
        raise ValueError(f"checkerboard couplings need an even L, got L={L}")
    layers = [
        CheckerboardCoupling(
            conv_net(1, hidden_channels, elementwise.n_parameters, kernel_size),
            elementwise,
            checkerboard(L, i % 2),
            z2_equivariant,
        )
        for i in range(n_layers)
    ]
    return Flow(L, layers)


class CheckerboardFamily(FlowFamily):
    """Coupling flows: masks that tile the torus only for an even L, and convolutions that
    do not depend on L, so a trained flow's parameters carry over to any larger lattice."""

    requires_even_L: ClassVar[bool] = True

    def section_problems(self, section: dict[str, Any]) -> list[tuple[str, str]]:
        kernel = section.get("kernel_size", 3)
        if isinstance(kernel, int) and kernel % 2 == 0:
            return [("kernel_size", "must be odd for 'same' padding")]
        return []
