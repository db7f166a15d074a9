r"""Continuous flow: an equivariant neural ODE with an exact divergence.

Following de Haan et al. (arXiv:2110.02673) and Gerdes et al. (arXiv:2207.00283), the field
flows from noise at t = 0 to the sample at t = 1 along

    dφ_x/dt = v(φ, t)_x = Σ_f Σ_y W_f(x − y, t) H_f(φ_y),
    d(log det)/dt = div v = Σ_x Σ_f W_f(0, t) H_f'(φ_x),

with odd site-wise features H_0(φ) = φ, H_f(φ) = sin(ω_f φ) (learnable ω_f), and kernels
W_f(d, t) = Σ_b c_{f,b,o(d)} T_b(t) that depend on the displacement d only through its
orbit o(d) under the lattice rotations and reflections (D4) and on t through the cosine basis
T_b(t) = cos(π b t). The sum over y is a circular convolution done by FFT, so v is
equivariant under translations, D4 and φ → −φ by construction, and its divergence is exact
because only the y = x term of the convolution depends on φ_x.

The ODE is integrated with fixed-step RK4 (or torchdiffeq's adaptive dopri5). The log-det is
the integrated divergence, which equals log |det| of the discrete map only up to the
integrator's error, O(h⁴) for RK4; likewise the inverse (integrating back from t = 1 to 0).
Training checks that error against a twice-finer integration (``refined``) and may
``refine`` the integrator in place (:mod:`fieldflow.guard`). ``forward_with_kinetic`` also
integrates the kinetic energy ∫‖v‖² dt / V of the paths, a regulariser that keeps them
straight and so cheap to integrate (Finlay et al. arXiv:2002.02798).

With ``zero_mode`` the noise first passes an odd spline of its zero mode and a scale of its
fluctuations (:class:`~fieldflow.flows.zeromode.ZeroModeSpline`), which puts the two vacua
of the ordered phase into the flow in one step; the ODE then shapes the fluctuations about
them. Without it the local vector field must build the bimodal magnetisation itself, and at
s = −4, λ = 3 it learns a disordered field instead (ESS 0.006 at L = 8, 0.000 from L = 12;
docs/decisions.md). With ``spectral_scale`` a learnt scale of every momentum mode
(:class:`~fieldflow.flows.spectral.SpectralScale`) comes before the ODE and gives it the
free field's two-point function. With ``site_spline`` an odd spline of every site
(:class:`~fieldflow.flows.sitewise.SiteSpline`) follows the ODE and reshapes the one-site law.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchdiffeq import odeint

from fieldflow.flows.base import Bijection, Flow
from fieldflow.flows.family import FlowFamily
from fieldflow.flows.sitewise import SiteSpline
from fieldflow.flows.spectral import SpectralScale
from fieldflow.flows.vectorfield import EquivariantVectorField
from fieldflow.flows.zeromode import ZeroModeSpline

__all__ = ["SOLVERS", "ContinuousFlow", "EquivariantVectorField", "build_cnf", "transfer_cnf"]

SOLVERS = ("rk4", "dopri5")


class ContinuousFlow(Bijection):
    """The time-1 map of dφ/dt = v(φ, t), with log |det| = ∫₀¹ div v dt."""

    def __init__(
        self,
        field: EquivariantVectorField,
        n_steps: int = 20,
        solver: str = "rk4",
        rtol: float = 1e-6,
        atol: float = 1e-8,
    ) -> None:
        super().__init__()
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        if n_steps < 1:
            raise ValueError(f"n_steps must be at least 1, got {n_steps}")
        self.field = field
        self.n_steps = n_steps
        self.solver = solver
        self.rtol = rtol
        self.atol = atol

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        phi, log_det, _ = self._integrate(x, reverse=False, kinetic=False)
        return phi, log_det

    def forward_with_kinetic(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        r"""``forward`` and the kinetic energy of the path, K = ∫₀¹ ‖v(φ_t, t)‖² dt / V.

        K is integrated along with φ and log det by the same solver (for RK4 from the same
        stages, h/6 (‖k₁‖² + 2‖k₂‖² + 2‖k₃‖² + ‖k₄‖²)); it is the regulariser of Finlay et
        al. (arXiv:2002.02798), which favours straight paths that few steps integrate well.

        Returns:
            φ, log |det| and K, shapes (batch, L, L), (batch,) and (batch,).
        """
        return self._integrate(x, reverse=False, kinetic=True)

    def refined(self) -> ContinuousFlow:
        """The same vector field, integrated twice as finely (see :meth:`refine`), to measure
        the integration error of log q."""
        finer = ContinuousFlow(self.field, self.n_steps, self.solver, self.rtol, self.atol)
        finer.refine()
        return finer

    def refine(self) -> None:
        """Integrate twice as finely from now on: RK4 2 n_steps, dopri5 tolerances / 100."""
        if self.solver == "rk4":
            self.n_steps *= 2
        else:
            self.rtol, self.atol = self.rtol / 100, self.atol / 100

    @property
    def integration(self) -> dict[str, Any]:
        """The settings :meth:`refine` changes (n_steps, rtol, atol): keyword arguments of
        :func:`build_cnf` that rebuild the refined flow."""
        return {"n_steps": self.n_steps, "rtol": self.rtol, "atol": self.atol}

    @integration.setter
    def integration(self, settings: dict[str, Any]) -> None:
        self.n_steps, self.rtol, self.atol = settings["n_steps"], settings["rtol"], settings["atol"]

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        phi, log_det, _ = self._integrate(y, reverse=True, kinetic=False)
        return phi, log_det

    def _integrate(
        self, phi: Tensor, reverse: bool, kinetic: bool
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """φ, log det and, if ``kinetic``, ∫‖v‖² dt / V (else None) of either direction."""
        if self.solver == "dopri5":
            return self._dopri5(phi, reverse, kinetic)
        return self._rk4(phi, reverse, kinetic)

    def _rk4(
        self, phi: Tensor, reverse: bool, kinetic: bool
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        n = self.n_steps
        # The kernel depends on t alone: transform it once at all 2n+1 stage times.
        t = torch.linspace(0.0, 1.0, 2 * n + 1, dtype=phi.dtype, device=phi.device)
        w_hat, w_0 = self.field.spectral_kernel(t.flip(0) if reverse else t)
        h = -1.0 / n if reverse else 1.0 / n
        log_det = phi.new_zeros(phi.shape[0])
        energy = phi.new_zeros(phi.shape[0]) if kinetic else None
        for i in range(n):
            k1, d1 = self.field.evaluate(phi, w_hat[2 * i], w_0[2 * i])
            k2, d2 = self.field.evaluate(phi + 0.5 * h * k1, w_hat[2 * i + 1], w_0[2 * i + 1])
            k3, d3 = self.field.evaluate(phi + 0.5 * h * k2, w_hat[2 * i + 1], w_0[2 * i + 1])
            k4, d4 = self.field.evaluate(phi + h * k3, w_hat[2 * i + 2], w_0[2 * i + 2])
            phi = phi + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
            log_det = log_det + (h / 6.0) * (d1 + 2.0 * d2 + 2.0 * d3 + d4)
            if kinetic:
                e1, e2, e3, e4 = (k.square().sum(dim=(-2, -1)) for k in (k1, k2, k3, k4))
                energy = energy + (abs(h) / 6.0) * (e1 + 2.0 * e2 + 2.0 * e3 + e4)
        if kinetic:
            energy = energy / (phi.shape[-2] * phi.shape[-1])
        return phi, log_det, energy

    def _dopri5(
        self, phi: Tensor, reverse: bool, kinetic: bool
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        t = torch.tensor([1.0, 0.0] if reverse else [0.0, 1.0], dtype=phi.dtype, device=phi.device)
        volume = phi.shape[-2] * phi.shape[-1]

        def dynamics(t: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
            v, div = self.field(state[0], t)
            if not kinetic:
                return v, div
            # Backwards t runs from 1 to 0: the sign keeps K = ∫₀¹ ‖v‖² dt / V positive.
            sign = -1.0 if reverse else 1.0
            return v, div, sign * v.square().sum(dim=(-2, -1)) / volume

        zero = phi.new_zeros(phi.shape[0])
        state = (phi, zero, zero) if kinetic else (phi, zero)
        final = odeint(dynamics, state, t, method="dopri5", rtol=self.rtol, atol=self.atol)
        return final[0][-1], final[1][-1], final[2][-1] if kinetic else None

    def is_identity(self) -> bool:
        """Whether v ≡ 0 (every kernel coefficient zero), as at initialisation."""
        return not bool(self.field.coefficients.any())

    def at(self, L_new: int) -> ContinuousFlow:
        """The same flow on an L_new×L_new lattice (L_new ≥ L), its kernel padded with zeros.

        Orbits are indexed so that those within a radius come first at every L, so the orbit
        coefficients copy over unchanged and the orbits new at L_new start at zero: the
        kernel keeps its value at every minimal-image displacement |d_x|, |d_y| ≤ ⌊L/2⌋.
        """
        if L_new < self.field.L:
            raise ValueError(f"transfer goes to a larger lattice, got L={self.field.L} -> {L_new}")
        ref = self.field.coefficients
        f = self.field
        field = EquivariantVectorField(L_new, f.n_features, f.kernel_radius, f.n_time_basis)
        field = field.to(dtype=ref.dtype, device=ref.device)
        with torch.no_grad():
            field.coefficients[..., : ref.shape[-1]] = ref
            field.frequencies.copy_(f.frequencies)
        return ContinuousFlow(field, self.n_steps, self.solver, self.rtol, self.atol)

    def hyperparameters(self) -> dict[str, Any]:
        """The keyword arguments of :func:`build_cnf` that rebuild this flow at any L."""
        return {
            "n_features": self.field.n_features,
            "kernel_radius": self.field.kernel_radius,
            "n_time_basis": self.field.n_time_basis,
            "n_steps": self.n_steps,
            "solver": self.solver,
            "rtol": self.rtol,
            "atol": self.atol,
        }


def build_cnf(
    L: int,
    n_features: int = 6,
    kernel_radius: int | None = None,
    n_time_basis: int = 6,
    n_steps: int = 20,
    solver: str = "rk4",
    rtol: float = 1e-6,
    atol: float = 1e-8,
    zero_mode: bool = False,
    zero_mode_bins: int = 8,
    zero_mode_bound: float = 5.0,
    site_spline: bool = False,
    site_spline_bins: int = 8,
    site_spline_bound: float = 3.0,
    spectral_scale: bool = False,
) -> Flow:
    """One equivariant continuous flow, after a zero-mode spline if ``zero_mode`` and a
    learnt scale of every momentum mode if ``spectral_scale``, and before a spline of every
    site if ``site_spline``.

    The identity at initialisation. Parameters: n_features · n_time_basis · n_orbits +
    n_features − 1, with n_orbits = (R+1)(R+2)/2, R = min(kernel_radius, ⌊L/2⌋) (545 at
    L = 8 with the defaults), plus 3 zero_mode_bins + 2 with ``zero_mode`` and
    3 site_spline_bins with ``site_spline`` and n_orbits(⌊L/2⌋) with ``spectral_scale``.
    """
    if L < 2:
        raise ValueError(f"the lattice needs L >= 2, got L={L}")
    field = EquivariantVectorField(L, n_features, kernel_radius, n_time_basis)
    layers: list[Bijection] = [ContinuousFlow(field, n_steps, solver, rtol, atol)]
    if spectral_scale:
        layers.insert(0, SpectralScale(L))
    if zero_mode:
        layers.insert(0, ZeroModeSpline(L, zero_mode_bins, zero_mode_bound))
    if site_spline:
        layers.append(SiteSpline(site_spline_bins, site_spline_bound))
    return Flow(L, layers)


def transfer_cnf(flow: Flow, L_new: int) -> Flow:
    """The same flow on a larger L_new×L_new lattice: every layer's ``at(L_new)``.

    The ODE's kernel is padded with zeros (:meth:`ContinuousFlow.at`); a zero-mode spline
    keeps its vacua at the same magnetisation per site (:meth:`ZeroModeSpline.at`); a
    spectral scale is read off as a function of p̂² (:meth:`SpectralScale.at`); a site
    spline is copied.
    """
    if L_new < flow.L:
        raise ValueError(f"transfer goes to a larger lattice, got L={flow.L} -> {L_new}")
    return Flow(L_new, [layer.at(L_new) for layer in flow.layers])


class CNF(FlowFamily):
    """Any L (no masks); its layers know how to grow with L (their ``at``)."""

    name = "cnf"
    integrates_ode = True

    def build(self, L: int, **hyperparameters: Any) -> Flow:
        return build_cnf(L, **hyperparameters)

    def carry_over(self, flow: Flow, target: Flow) -> Flow:
        return transfer_cnf(flow, target.L)
