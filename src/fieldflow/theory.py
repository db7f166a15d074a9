r"""Theories as a concept of the library: what a sampler needs to know of a field theory.

A :class:`Theory` ties together the physics of one theory, which lives in its own module:
the shape of a configuration, its canonical representative, its per-configuration
primaries, its symmetries and its exact references where known. A *point* of a study
(:class:`PointLike`) is a theory at given parameters: it knows its action and force, so HMC,
flow training and independence Metropolis run on any theory through the point alone.

- ``phi4``: real scalar φ(x) of shape (L, L), S(φ) = Σ_x [Σ_μ (φ(x+μ̂) − φ(x))² + s φ² + λ φ⁴]
  (:mod:`fieldflow.lattice`, points :class:`fieldflow.lattice.Point`; Albergo, Kanwar &
  Shanahan 2019, arXiv:1904.12072).
- ``u1``: link angles θ_μ(x) of shape (2, L, L) in (−π, π], S = −β Σ_P cos θ_P
  (:mod:`fieldflow.u1`, points :class:`fieldflow.u1.point.U1Point`; Kanwar et al. 2020,
  arXiv:2003.06413).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from fieldflow import lattice, tunnelling
from fieldflow.u1 import lattice as u1_lattice
from fieldflow.u1.point import U1Point


class PointLike(Protocol):
    """A point of a study: a theory at given parameters on an L×L lattice.

    Implemented by :class:`fieldflow.lattice.Point` (φ⁴) and
    :class:`fieldflow.u1.point.U1Point` (U(1)).
    """

    @property
    def L(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def key(self) -> str:
        """Filesystem-safe key, parsed back by the point type's ``from_key``."""

    @property
    def volume(self) -> int:
        """Number of sites V = L²."""

    @property
    def theory(self) -> Theory:
        """The theory the point belongs to."""

    def action(self, field: Tensor) -> Tensor:
        """S per configuration, shape (batch,), of fields (batch, *field_shape(L))."""

    def force(self, field: Tensor) -> Tensor:
        """F = −∂S/∂field, same shape as ``field``."""

    def columns(self) -> dict[str, float]:
        """The point's parameters by name, ``L`` first: the columns of a results table."""


@dataclass(frozen=True)
class OrderParameter:
    """The primary whose sectors an ergodic chain visits, and how to count its moves.

    φ⁴: the magnetization M, whose sign the Z2 symmetry makes ±1 with equal weight; U(1):
    the topological charge Q, an integer whose sectors a chain at large β leaves rarely.
    A chain that never changes sector has not sampled the distribution
    (:mod:`fieldflow.quality`); the changes are its tunnelling (:mod:`fieldflow.tunnelling`).

    Attributes:
        primary: its name among the theory's primaries (``m``, ``charge``).
        symbol: its symbol in messages (``M``, ``Q``).
        change: what moving means, in words: "never changed {change}" (``sign``,
            ``topological sector``).
        stuck: a chain that does not move, in words (``stuck in one vacuum``).
        sector: values (chain, draw) ↦ sector labels of the same shape (sign M, round Q);
            the sign of either is odd under the theory's symmetry, so ⟨sign⟩ = 0 exactly.
        count: values (chain, draw) ↦ (threshold, crossings per chain (chain,)): φ⁴'s
            band crossings with hysteresis, U(1)'s changes of the nearest integer.
        integer: whether its values are integers (U(1)'s Q, rounded in the primaries; φ⁴'s
            M/V is not): its histogram then has one bin per integer
            (:func:`fieldflow.tunnelling.histogram`).
        observable: the observable whose τ_int is the order parameter's (``magnetization``,
            ``topological_charge``).
        sectors_differ: whether the sectors differ in what they weigh: U(1)'s |Q| = 0, 1,
            … have different actions, so every observable moves with Q's slow mode
            (:func:`fieldflow.analysis.with_slow_mode` attaches its tail to their errors);
            φ⁴'s two signs of M are images under φ → −φ, which leave every even
            observable of the tables unchanged.
    """

    primary: str
    symbol: str
    change: str
    stuck: str
    sector: Callable[[np.ndarray], np.ndarray]
    count: Callable[[np.ndarray], tuple[float, np.ndarray]]
    observable: str
    integer: bool = False
    sectors_differ: bool = False


@dataclass(frozen=True)
class Theory:
    """What the library knows of a field theory, as plain functions.

    Attributes:
        name: the name a config uses (``phi4``, ``u1``).
        parameters: the names of a point's parameters besides ``L``, in key order.
        point_type: the class of its points; ``point_type(L, *parameters)`` makes one and
            ``point_type.from_key`` parses a key.
        field_shape: L ↦ the shape of one configuration, without the batch dimension.
        canonical: fields (batch, *field_shape) ↦ the canonical representative of each (the
            identity for φ⁴; links wrapped to (−π, π] for U(1)).
        primaries: fields (batch, *field_shape) ↦ per-configuration primaries, each (batch,).
        exact: point ↦ exact expectation values by observable name, None where unknown.
        log_z: point ↦ the exact log Z = log ∫ dφ e^{−S} over the field with Lebesgue
            measure (the measure of a flow's density q), None where unknown.
        symmetries: the symmetries of the action, in words.
        field: the name of the field's array in an ensemble store (``phi``, ``links``).
        field_dims: its dimensions after (chain, draw): (x, y) for φ⁴, (mu, x, y) for U(1).
        measurements: fields (batch, *field_shape) ↦ every per-configuration quantity the
            analysis estimates from, float64, each (batch,) or (batch, t): the
            :attr:`primaries`, and for φ⁴ also the time-slice correlator C(t). A flow stores
            them for every raw proposal, for reweighting.
        primaries_version: the version of :attr:`measurements`, recorded in every store.
        observables: the names of its observables, in table order.
        derive: (Γ-method means of the measurements by name, as pyerrors Obs (a list over t
            for a correlator), L) ↦ the observables by name, in table order; None for one
            undefined at these means (a NaN row); a name left out has no row.
        order_parameter: the primary whose sectors a chain must visit.
    """

    name: str
    parameters: tuple[str, ...]
    point_type: type
    field_shape: Callable[[int], tuple[int, ...]]
    canonical: Callable[[Tensor], Tensor]
    primaries: Callable[[Tensor], dict[str, Tensor]]
    exact: Callable[[Any], dict[str, float] | None]
    log_z: Callable[[Any], float | None]
    symmetries: tuple[str, ...]
    field: str
    field_dims: tuple[str, ...]
    measurements: Callable[[Tensor], dict[str, Tensor]]
    primaries_version: int
    observables: tuple[str, ...]
    derive: Callable[[Mapping[str, Any], int], dict[str, Any]]
    order_parameter: OrderParameter

    def point(self, L: int, **parameters: float) -> PointLike:
        """A point of this theory, e.g. ``THEORIES["u1"].point(8, beta=2.0)``.

        Raises:
            ValueError: the parameters are not exactly :attr:`parameters`.
        """
        if set(parameters) != set(self.parameters):
            raise ValueError(
                f"a {self.name} point takes the parameters {list(self.parameters)}, "
                f"got {sorted(parameters)}"
            )
        return self.point_type(L, *(parameters[p] for p in self.parameters))

    def point_of(self, values: Mapping[str, Any]) -> PointLike:
        """The point whose columns (``L`` and :attr:`parameters`) are in ``values``: a store's
        attrs or a table row."""
        return self.point(int(values["L"]), **{p: values[p] for p in self.parameters})

    @property
    def required_attrs(self) -> tuple[str, ...]:
        """The attrs every ensemble store of the theory has: ``L``, :attr:`parameters`,
        ``sampler``, ``seed``, ``versions``."""
        return ("L", *self.parameters, "sampler", "seed", "versions")

    def primary_names(self, L: int) -> tuple[str, ...]:
        """The names of :attr:`primaries`, from one zero configuration of size L."""
        probe = torch.zeros((1, *self.field_shape(L)), dtype=torch.float64)
        return tuple(self.primaries(probe))


def _identity(field: Tensor) -> Tensor:
    return field


def _phi4_exact(point: lattice.Point) -> dict[str, float] | None:
    """The free theory's exact observables where λ = 0 and s > 0; None elsewhere."""
    if point.lam == 0 and point.s > 0:
        return lattice.gaussian_observables(point.L, point.s)
    return None


def _phi4_log_z(point: lattice.Point) -> float | None:
    """The free theory's log Z (λ = 0, s > 0); unknown elsewhere."""
    if point.lam == 0 and point.s > 0:
        return lattice.gaussian_log_z(point.L, point.s)
    return None


def _u1_log_z(point: U1Point) -> float:
    """log Z over dθ on (−π, π]^{2V}: the Haar-normalised Z of the character expansion
    times (2π)^{2V}, since a flow's q (uniform prior (2π)^{−2V}) is a density in dθ."""
    from fieldflow.u1 import exact  # scipy.special: loaded by the jobs that need it only

    return exact.log_z(point.L, point.beta) + 2 * point.volume * math.log(2.0 * math.pi)


def _u1_exact(point: U1Point) -> dict[str, float]:
    # ⟨Q⟩ = 0 exactly: θ → −θ maps Q → −Q and leaves S unchanged (as φ → −φ does M).
    from fieldflow.u1 import exact  # scipy.special: loaded by the jobs that need it only

    return {**exact.references(point.L, point.beta), "topological_charge": 0.0}


def _phi4_measurements(phi: Tensor) -> dict[str, Tensor]:
    """φ⁴'s primaries (:func:`fieldflow.lattice.primary_observables`) and C(t), (batch, L)."""
    return {**lattice.primary_observables(phi), "correlator": lattice.timeslice_correlator(phi)}


def _phi4_derive(means: Mapping[str, Any], L: int) -> dict[str, Any]:
    """:func:`fieldflow.analysis.phi4_observables`, imported on first use (pyerrors is heavy
    and jobs that only sample never need it)."""
    from fieldflow.analysis import phi4_observables

    return phi4_observables(means, L)


def _u1_derive(means: Mapping[str, Any], L: int) -> dict[str, Any]:
    r"""U(1)'s observables from the means of its primaries, V = L² plaquettes.

    ``plaquette`` = ⟨cos θ_P⟩, ``topological_susceptibility`` χ_t = ⟨Q²⟩/V, and
    ``topological_charge`` ⟨Q⟩, 0 exactly by charge conjugation θ → −θ (the check that a
    sampler visits the sectors ±Q alike, as φ⁴'s ``magnetization``).
    """
    return {
        "plaquette": means["plaquette"],
        "topological_susceptibility": means["charge2"] / (L * L),
        "topological_charge": means["charge"],
    }


def _band_crossings(m: np.ndarray) -> tuple[float, np.ndarray]:
    return tunnelling.band_crossings(m, tunnelling.BAND)


#: φ⁴ observables in table order (DESIGN.md §1); ``pole_mass`` where C(t) is measured.
PHI4_OBSERVABLES = (
    "phi2",
    "abs_magnetization",
    "susceptibility",
    "ising_energy",
    "binder",
    "correlation_length",
    "magnetization",
    "pole_mass",
)

PHI4 = Theory(
    name="phi4",
    parameters=("s", "lam"),
    point_type=lattice.Point,
    field_shape=lambda L: (L, L),
    canonical=_identity,
    primaries=lattice.primary_observables,
    exact=_phi4_exact,
    log_z=_phi4_log_z,
    symmetries=("Z2: φ → −φ", "translations", "lattice rotations and reflections"),
    field="phi",
    field_dims=("x", "y"),
    measurements=_phi4_measurements,
    primaries_version=lattice.PRIMARIES_VERSION,
    observables=PHI4_OBSERVABLES,
    derive=_phi4_derive,
    order_parameter=OrderParameter(
        primary="m",
        symbol="M",
        change="sign",
        stuck="stuck in one vacuum",
        sector=np.sign,
        count=_band_crossings,
        observable="magnetization",
    ),
)

U1 = Theory(
    name="u1",
    parameters=("beta",),
    point_type=U1Point,
    field_shape=lambda L: (2, L, L),
    canonical=u1_lattice.wrap,
    primaries=u1_lattice.primary_observables,
    exact=_u1_exact,
    log_z=_u1_log_z,
    symmetries=(
        "gauge: θ_μ(x) → α(x) + θ_μ(x) − α(x+μ̂)",
        "θ → θ + 2π on any link",
        "charge conjugation: θ → −θ",
        "translations",
    ),
    field="links",
    field_dims=("mu", "x", "y"),
    measurements=u1_lattice.primary_observables,
    # 2: Q rounded to the nearest integer (1: the geometric Q, an integer to ~1e-15).
    primaries_version=2,
    observables=("plaquette", "topological_susceptibility", "topological_charge"),
    derive=_u1_derive,
    order_parameter=OrderParameter(
        primary="charge",
        symbol="Q",
        change="topological sector",
        stuck="stuck in one topological sector",
        sector=np.rint,
        count=tunnelling.sector_changes,
        integer=True,
        observable="topological_charge",
        sectors_differ=True,
    ),
)

#: Every theory by its config name; φ⁴ is the default.
THEORIES: Mapping[str, Theory] = {theory.name: theory for theory in (PHI4, U1)}


def get_theory(name: str) -> Theory:
    """The theory called ``name``; a ValueError naming the known ones otherwise."""
    if name not in THEORIES:
        raise ValueError(f"unknown theory {name!r}; known: {sorted(THEORIES)}")
    return THEORIES[name]


def stored_theory(attrs: Mapping[str, Any]) -> Theory:
    """The theory an ensemble's attrs name by ``theory``: φ⁴ where absent (every store
    written before there were theories); a ValueError naming an unknown one."""
    return get_theory(attrs.get("theory", PHI4.name))


def point_from_key(key: str) -> PointLike:
    """The point of whichever theory's key ``key`` is (their key forms do not overlap)."""
    reasons = []
    for theory in THEORIES.values():
        try:
            return theory.point_type.from_key(key)
        except ValueError as error:
            reasons.append(f"{theory.name}: {error}")
    raise ValueError(f"{key!r} is not the key of a point of any theory ({'; '.join(reasons)})")
