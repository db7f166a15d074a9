r"""Gauge-equivariant coupling flow for 2D U(1) links (Kanwar et al. arXiv:2003.06413).

The prior is uniform on the links, θ_μ(x) ∈ (−π, π], log q₀ = −2V log 2π (V = L²), which
is the Haar measure and so gauge invariant. Each coupling layer updates the links θ_μ(x) of
one direction μ on the stripe x_ν ≡ o (mod 4), ν ≠ μ (the stride-4 masks of Albergo et al.
arXiv:2101.08176, §U(1)). With θ_P(x) = θ_1(x) + θ_2(x+1̂) − θ_1(x+2̂) − θ_2(x), the
plaquettes of that stripe are *active*: each holds exactly one updated link, θ_μ(x), with
sign σ_1 = +1, σ_2 = −1. The plaquettes on the stripes o + 1 and o + 2 hold none and are
*frozen*; those on o + 3 (passive) change with the links and are not used. A circular spline
h (:mod:`fieldflow.flows.circular`), its parameters from a circular-padded CNN on
(cos θ_P, sin θ_P) of the frozen plaquettes, moves every active plaquette and the link with
it:

    θ'_P(x) = h_x(θ_P(x)),   θ'_μ(x) = θ_μ(x) + σ_μ [θ'_P(x) − θ_P(x)]   (mod 2π),

so the Jacobian is triangular with log |det| = Σ_{x active} log h'_x(θ_P(x)). Plaquettes are
gauge invariant and the update of a link depends on plaquettes alone, so every layer
commutes with gauge transformations α: f(θ^α) = f(θ)^α, and log q(θ^α) = log q(θ).

The masks need L divisible by 4. Eight layers (μ alternating, o stepping through 0..3 every
two layers) update every link once; the conditioners do not depend on L.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fieldflow.flows.base import Flow
from fieldflow.flows.circular import CircularSpline, n_spline_parameters
from fieldflow.flows.coupling import conv_net
from fieldflow.flows.plaquette_prior import PlaquettePrior
from fieldflow.u1.lattice import plaquette, wrap

#: The gauge flow's priors: uniform links, or independent von Mises plaquettes.
PRIORS = ("haar", "plaquette")
#: The sign σ_μ of θ_μ(x) in its plaquette θ_P(x), for μ = 1̂, 2̂ (index 0, 1).
_SIGN = (1.0, -1.0)


def stripes(L: int, mu: int, offsets: Sequence[int]) -> Tensor:
    """Boolean (L, L) mask of the sites x with x_ν mod 4 in ``offsets``, ν ≠ μ.

    μ ∈ {0, 1} indexes the directions 1̂ (tensor dim −2) and 2̂ (dim −1).
    """
    if L % 4:
        raise ValueError(f"the gauge flow's stride-4 masks need L divisible by 4, got L={L}")
    along_nu = torch.zeros(L, dtype=torch.bool)
    for offset in offsets:
        along_nu[offset % 4 :: 4] = True
    if mu == 0:
        return along_nu[None, :].expand(L, L).clone()
    return along_nu[:, None].expand(L, L).clone()


class GaugeCoupling(nn.Module):
    """One gauge-equivariant coupling on links of shape (batch, 2, L, L).

    Args:
        net: conditioner mapping (batch, 2, L, L) — cos θ_P and sin θ_P of the frozen
            plaquettes, zero elsewhere — to (batch, 3K, L, L) spline parameters.
        L: lattice size, divisible by 4.
        mu: direction of the updated links, 0 (1̂) or 1 (2̂).
        offset: the stripe x_ν ≡ offset (mod 4) of updated links and active plaquettes.
    """

    def __init__(self, net: nn.Module, L: int, mu: int, offset: int) -> None:
        super().__init__()
        if mu not in (0, 1):
            raise ValueError(f"mu must be 0 or 1, got {mu}")
        self.net = net
        self.mu = mu
        self.sign = _SIGN[mu]
        # Rebuilt from L with the layer, so not saved: a model file holds parameters only.
        self.register_buffer("active", stripes(L, mu, [offset]), persistent=False)
        self.register_buffer("frozen", stripes(L, mu, [offset + 1, offset + 2]), persistent=False)

    def spline(self, θ_P: Tensor) -> CircularSpline:
        """The splines of the active plaquettes, batch shape (batch, n_active)."""
        features = torch.stack([θ_P.cos(), θ_P.sin()], dim=1) * self.frozen
        return CircularSpline.from_parameters(self.net(features).movedim(1, -1)[:, self.active])

    def _couple(self, links: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        θ_P = plaquette(links)  # wrapped to (−π, π], the domain of the spline
        spline = self.spline(θ_P)
        old = θ_P[:, self.active]
        new, log_det = spline.inverse(old) if inverse else spline.forward(old)
        δ = torch.zeros_like(θ_P).masked_scatter(self.active, self.sign * (new - old))
        shift = torch.zeros_like(links)
        shift[:, self.mu] = δ
        return wrap(links + shift), log_det.sum(dim=-1)

    def forward(self, links: Tensor) -> tuple[Tensor, Tensor]:
        """The updated links, (batch, 2, L, L), and log |det|, (batch,)."""
        return self._couple(links, inverse=False)

    def inverse(self, links: Tensor) -> tuple[Tensor, Tensor]:
        """The layer's inverse and its log |det|, shapes as :meth:`forward`."""
        return self._couple(links, inverse=True)


class GaugeFlow(Flow):
    """A gauge-invariant prior on (−π, π]^{2V} followed by gauge-equivariant couplings.

    A :class:`fieldflow.flows.base.Flow` on links of shape (batch, 2, L, L), wrapped to
    (−π, π]. The prior is ``haar``, uniform on the links with the constant density
    −2V log 2π, or ``plaquette``, independent von Mises plaquettes at κ = β
    (:mod:`fieldflow.flows.plaquette_prior`), whose κ :meth:`at_point` sets and the model's
    state keeps. No layer integrates an ODE (zero kinetic energy, exact log q).
    """

    def __init__(self, L: int, layers: Sequence[nn.Module], prior: str = "haar") -> None:
        super().__init__(L, layers)
        if prior not in PRIORS:
            raise ValueError(f"the gauge flow's prior must be one of {PRIORS}, got {prior!r}")
        self.prior = prior
        if prior == "plaquette":
            # Persistent: a saved model samples the q it was trained as. NaN until at_point.
            self.register_buffer("prior_kappa", torch.tensor(math.nan, dtype=torch.float64))

    def at_point(self, point: object) -> None:
        """With the plaquette prior, κ = the point's β (a U(1) point).

        The buffer follows the flow's dtype (float32 sampling keeps κ to 7 digits); q stays
        the density the samples are drawn from, so the Metropolis chain stays exact.
        """
        if self.prior != "plaquette":
            return
        beta = getattr(point, "beta", None)
        if beta is None:
            raise ValueError(f"the gauge flow's plaquette prior needs a U(1) point, got {point!r}")
        self.prior_kappa.fill_(float(beta))

    def _plaquette_prior(self) -> PlaquettePrior:
        kappa = float(self.prior_kappa)
        if not math.isfinite(kappa):
            raise ValueError("the gauge flow's plaquette prior has no κ: call at_point(point)")
        return PlaquettePrior(self.L, kappa)

    def prior_log_prob(self) -> float:
        """log q₀ = −2V log 2π of every configuration under the Haar prior."""
        return -2 * self.L * self.L * math.log(2.0 * math.pi)

    def _prior_log_prob(self, z: Tensor) -> Tensor | float:
        if self.prior == "plaquette":
            return self._plaquette_prior().log_prob(z)
        return self.prior_log_prob()

    def _noise(self, n: int, generator: torch.Generator | None) -> Tensor:
        ref = self._reference
        if self.prior == "plaquette":
            return self._plaquette_prior().sample(n, ref, generator)
        u = torch.rand(
            (n, 2, self.L, self.L), generator=generator, dtype=ref.dtype, device=ref.device
        )
        return math.pi - 2.0 * math.pi * u  # u ∈ [0, 1) gives (−π, π]


def build_gauge_flow(
    L: int,
    n_layers: int = 16,
    hidden_channels: Sequence[int] = (8,),
    kernel_size: int = 3,
    n_bins: int = 4,
    prior: str = "haar",
) -> GaugeFlow:
    """An untrained gauge flow on an L×L lattice (L divisible by 4); the identity at first.

    Layer i updates direction μ = i mod 2 on the stripe o = ⌊i/2⌋ mod 4, so every eight
    layers update each link once; the default sixteen update it twice, which at L = 8,
    β = 2 trains to a far smaller KL per CPU second than eight. Each conditioner is a
    circular-padded CNN, 2 → hidden → 3K channels, with a zero-initialised last layer.
    ``prior``: ``haar`` (uniform links) or ``plaquette`` (:class:`GaugeFlow`).
    """
    if L < 4 or L % 4:
        raise ValueError(f"the gauge flow's stride-4 masks need L divisible by 4, got L={L}")
    if n_layers < 1:
        raise ValueError(f"the gauge flow needs n_layers >= 1, got {n_layers}")
    if n_bins < 1:
        raise ValueError(f"the gauge flow needs n_bins >= 1, got {n_bins}")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
    out = n_spline_parameters(n_bins)
    layers = [
        GaugeCoupling(conv_net(2, hidden_channels, out, kernel_size), L, i % 2, (i // 2) % 4)
        for i in range(n_layers)
    ]
    return GaugeFlow(L, layers, prior)
