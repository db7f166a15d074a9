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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from fieldflow import lattice
from fieldflow.u1 import exact as u1_exact
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
        symmetries: the symmetries of the action, in words.
    """

    name: str
    parameters: tuple[str, ...]
    point_type: type
    field_shape: Callable[[int], tuple[int, ...]]
    canonical: Callable[[Tensor], Tensor]
    primaries: Callable[[Tensor], dict[str, Tensor]]
    exact: Callable[[Any], dict[str, float] | None]
    symmetries: tuple[str, ...]

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


def _u1_exact(point: U1Point) -> dict[str, float]:
    return u1_exact.references(point.L, point.beta)


PHI4 = Theory(
    name="phi4",
    parameters=("s", "lam"),
    point_type=lattice.Point,
    field_shape=lambda L: (L, L),
    canonical=_identity,
    primaries=lattice.primary_observables,
    exact=_phi4_exact,
    symmetries=("Z2: φ → −φ", "translations", "lattice rotations and reflections"),
)

U1 = Theory(
    name="u1",
    parameters=("beta",),
    point_type=U1Point,
    field_shape=lambda L: (2, L, L),
    canonical=u1_lattice.wrap,
    primaries=u1_lattice.primary_observables,
    exact=_u1_exact,
    symmetries=(
        "gauge: θ_μ(x) → α(x) + θ_μ(x) − α(x+μ̂)",
        "θ → θ + 2π on any link",
        "charge conjugation: θ → −θ",
        "translations",
    ),
)

#: Every theory by its config name; φ⁴ is the default.
THEORIES: Mapping[str, Theory] = {theory.name: theory for theory in (PHI4, U1)}


def get_theory(name: str) -> Theory:
    """The theory called ``name``; a ValueError naming the known ones otherwise."""
    if name not in THEORIES:
        raise ValueError(f"unknown theory {name!r}; known: {sorted(THEORIES)}")
    return THEORIES[name]


def point_from_key(key: str) -> PointLike:
    """The point of whichever theory's key ``key`` is (their key forms do not overlap)."""
    reasons = []
    for theory in THEORIES.values():
        try:
            return theory.point_type.from_key(key)
        except ValueError as error:
            reasons.append(f"{theory.name}: {error}")
    raise ValueError(f"{key!r} is not the key of a point of any theory ({'; '.join(reasons)})")
