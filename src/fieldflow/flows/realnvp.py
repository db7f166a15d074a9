r"""RealNVP: affine coupling layers with checkerboard masks (Albergo et al. arXiv:2101.08176).

Each layer freezes the sites of one checkerboard parity and updates the others,

    φ'_a = e^{s(φ_f)} ⊙ φ_a + t(φ_f),   log |det| = Σ_{x ∈ a} s_x(φ_f),

where s and t come from a convolutional network with circular padding, so the map is
translation-equivariant (by two sites). With ``z2_equivariant`` the conditioner is
symmetrised, s(−φ) = s(φ) and t(−φ) = −t(φ), which makes every layer odd: f(−φ) = −f(φ).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fieldflow.flows.base import Bijection, Flow


def checkerboard(L: int, parity: int) -> Tensor:
    """Mask of shape (L, L), 1 where (x + y) % 2 == parity."""
    idx = torch.arange(L)
    return ((idx[:, None] + idx[None, :]) % 2 == parity).to(torch.get_default_dtype())


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


class AffineCoupling(Bijection):
    """One checkerboard affine coupling layer acting on (batch, L, L)."""

    def __init__(self, net: nn.Module, mask: Tensor, z2_equivariant: bool = False) -> None:
        super().__init__()
        self.net = net
        self.z2_equivariant = z2_equivariant
        self.register_buffer("frozen", mask)
        self.register_buffer("active", 1.0 - mask)

    def _scale_shift(self, frozen: Tensor) -> tuple[Tensor, Tensor]:
        out = self.net(frozen.unsqueeze(1))
        s, t = out[:, 0], out[:, 1]
        if self.z2_equivariant:
            out_neg = self.net(-frozen.unsqueeze(1))
            s = 0.5 * (s + out_neg[:, 0])
            t = 0.5 * (t - out_neg[:, 1])
        return torch.tanh(s) * self.active, t * self.active

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        frozen = x * self.frozen
        s, t = self._scale_shift(frozen)
        y = frozen + self.active * (x * torch.exp(s) + t)
        return y, s.sum(dim=(-2, -1))

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        frozen = y * self.frozen
        s, t = self._scale_shift(frozen)
        x = frozen + self.active * (y - t) * torch.exp(-s)
        return x, -s.sum(dim=(-2, -1))


def build_realnvp(
    L: int,
    n_layers: int = 16,
    hidden_channels: Sequence[int] = (8, 8),
    kernel_size: int = 3,
    z2_equivariant: bool = False,
) -> Flow:
    """The flow of Albergo et al.'s tutorial with the defaults (12,960 parameters)."""
    if L % 2:
        raise ValueError(f"checkerboard couplings need an even L, got L={L}")
    layers = [
        AffineCoupling(
            conv_net(1, hidden_channels, 2, kernel_size), checkerboard(L, i % 2), z2_equivariant
        )
        for i in range(n_layers)
    ]
    return Flow(L, layers)
