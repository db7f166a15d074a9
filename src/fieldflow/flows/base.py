r"""The interface every flow family shares.

A :class:`Bijection` maps x ↦ y and returns ``(y, log_det)`` with
log_det = log |det ∂y/∂x| per configuration; ``inverse`` returns ``(x, log_det)`` of the
inverse map. A :class:`Flow` pushes standard-normal noise z through its bijections,
φ = f(z), and knows log q(φ) = log N(z) − log |det ∂f/∂z| exactly (Albergo et al. 2019,
arXiv:1904.12072).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


class Bijection(nn.Module):
    """An invertible map of configurations of shape (batch, L, L)."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError


def normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, 1) summed over sites, shape (batch,)."""
    n_sites = z.shape[-1] * z.shape[-2]
    return -0.5 * (z * z).sum(dim=(-2, -1)) - 0.5 * n_sites * math.log(2.0 * math.pi)


class Flow(nn.Module):
    """A prior followed by a sequence of bijections on an L×L lattice.

    The prior is standard normal on (L, L) here; a subclass with another field or prior
    overrides :meth:`_noise` and :meth:`_prior_log_prob` (the U(1) gauge flow: uniform
    links or independent von Mises plaquettes, :class:`fieldflow.flows.gauge.GaugeFlow`).
    """

    def __init__(self, L: int, layers: Sequence[Bijection]) -> None:
        super().__init__()
        self.L = L
        self.layers = nn.ModuleList(layers)

    @property
    def _reference(self) -> Tensor:
        return next(self.parameters())

    def transform(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """φ = f(z) and log |det ∂f/∂z|, shapes (batch, L, L) and (batch,)."""
        phi, log_det, _ = self._push(z, kinetic=False)
        return phi, log_det

    def _push(self, z: Tensor, kinetic: bool) -> tuple[Tensor, Tensor, Tensor]:
        """φ, log det and the summed kinetic energy of the layers that integrate an ODE
        (their ``forward_with_kinetic``; zero if ``kinetic`` is off or there are none)."""
        log_det = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        energy = torch.zeros_like(log_det)
        for layer in self.layers:
            if kinetic and hasattr(layer, "forward_with_kinetic"):
                z, ld, e = layer.forward_with_kinetic(z)
                energy = energy + e
            else:
                z, ld = layer(z)
            log_det = log_det + ld
        return z, log_det, energy

    def inverse(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        """z = f⁻¹(φ) and log |det ∂f⁻¹/∂φ|."""
        log_det = torch.zeros(phi.shape[0], dtype=phi.dtype, device=phi.device)
        for layer in reversed(self.layers):
            phi, ld = layer.inverse(phi)
            log_det = log_det + ld
        return phi, log_det

    def at_point(self, point: object) -> None:
        """Fit the prior to the point the flow will sample; most flows have nothing to fit.

        Called once the flow is built or transferred, before training. What a flow takes
        from the point (the gauge flow's plaquette prior: κ = β) it keeps in its state, so
        that a saved model samples the same q without the point.
        """

    def _noise(self, n: int, generator: torch.Generator | None) -> Tensor:
        ref = self._reference
        return torch.randn(
            (n, self.L, self.L), generator=generator, dtype=ref.dtype, device=ref.device
        )

    def _prior_log_prob(self, z: Tensor) -> Tensor | float:
        """log of the prior density of the noise z, per configuration."""
        return normal_log_prob(z)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw n configurations with their exact log q, shapes (n, L, L) and (n,)."""
        z = self._noise(n, generator)
        phi, log_det = self.transform(z)
        return phi, self._prior_log_prob(z) - log_det

    def sample_with_kinetic(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        r"""``sample`` and the kinetic energy K = Σ_ODE layers ∫₀¹ ‖v‖² dt / V of each draw.

        K is the regulariser of Finlay et al. (arXiv:2002.02798); it is zero for flows
        without an ODE. Shapes (n, L, L), (n,) and (n,).
        """
        z = self._noise(n, generator)
        phi, log_det, energy = self._push(z, kinetic=True)
        return phi, self._prior_log_prob(z) - log_det, energy

    def log_prob(self, phi: Tensor) -> Tensor:
        """log q(φ) of given configurations, via the inverse; shape (batch,)."""
        z, log_det = self.inverse(phi)
        return self._prior_log_prob(z) + log_det

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @torch.no_grad()
    def discretisation_error(self, n: int, generator: torch.Generator | None = None) -> float:
        """Largest |Δ log q| over n samples between the flow and a finer version of it.

        Zero for flows whose log-det is exact (coupling flows). A continuous flow's log q
        is exact only to its integrator's error; training can learn a stiff vector field
        whose fixed-step integration is far off, and so a fictitious log q. Layers that
        integrate an ODE expose ``refined()``, the same layer with twice the steps.
        """
        refined = [getattr(layer, "refined", None) for layer in self.layers]
        if all(r is None for r in refined):
            return 0.0
        z = self._noise(n, generator)
        coarse, fine = z, z
        ld_coarse = ld_fine = z.new_zeros(n)
        for layer, finer in zip(self.layers, refined, strict=True):
            coarse, ld = layer(coarse)
            ld_coarse = ld_coarse + ld
            fine, ld = (finer() if finer is not None else layer)(fine)
            ld_fine = ld_fine + ld
        return float((ld_coarse - ld_fine).abs().max())
