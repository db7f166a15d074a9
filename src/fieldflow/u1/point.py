r"""A point of a U(1) study: the lattice size L and the coupling β (DESIGN.md §2b).

Its action and force are those of :mod:`fieldflow.u1.lattice`, S = −β Σ_P cos θ_P on links
θ_μ(x) of shape (batch, 2, L, L) (Kanwar et al. 2020, arXiv:2003.06413), so the samplers
treat it like a φ⁴ :class:`fieldflow.lattice.Point` (the protocol
:class:`fieldflow.theory.PointLike`).
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import Tensor

from fieldflow.u1 import lattice

if TYPE_CHECKING:
    from fieldflow.theory import Theory

_KEY = re.compile(r"L(\d+)_beta([^_/]+)")


def _number(x: float) -> str:
    """``x`` in the shortest form that reads back as the same float: ``2``, ``2.25``."""
    short = f"{x:g}"
    return short if float(short) == x else repr(float(x))


@dataclass(frozen=True)
class U1Point:
    """A U(1) point: lattice size ``L`` ≥ 2 and inverse coupling ``beta`` > 0, finite.

    Raises:
        ValueError: a bad ``L`` or ``beta``, naming the point's key.
    """

    L: int
    beta: float
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.L, numbers.Integral) or isinstance(self.L, bool) or self.L < 2:
            raise ValueError(f"U(1) point L{self.L}_beta{self.beta}: L must be an integer >= 2")
        ok = isinstance(self.beta, numbers.Real) and not isinstance(self.beta, bool)
        if not (ok and math.isfinite(self.beta) and self.beta > 0):
            raise ValueError(
                f"U(1) point L{self.L}_beta{self.beta}: beta must be finite and > 0, "
                f"got {self.beta!r}"
            )

    @property
    def key(self) -> str:
        """Filesystem-safe key that :meth:`from_key` reads back exactly, e.g. ``L8_beta2``."""
        return f"L{self.L}_beta{_number(self.beta)}"

    @property
    def volume(self) -> int:
        """Number of sites (and of plaquettes) V = L²."""
        return self.L * self.L

    @property
    def theory(self) -> Theory:
        """The ``u1`` theory (:data:`fieldflow.theory.U1`)."""
        from fieldflow.theory import U1  # the theory module imports this one

        return U1

    @classmethod
    def from_key(cls, key: str) -> U1Point:
        """The point of a :attr:`key`; a ValueError for another form or bad values."""
        match = _KEY.fullmatch(key)
        if match is None:
            raise ValueError(f"not a U(1) point key of the form L8_beta2: {key!r}")
        try:
            beta = float(match[2])
        except ValueError:
            raise ValueError(f"not a U(1) point key of the form L8_beta2: {key!r}") from None
        return cls(int(match[1]), beta)

    def action(self, links: Tensor) -> Tensor:
        r"""S = −β Σ_P cos θ_P of links (batch, 2, L, L), shape (batch,)."""
        return lattice.action(links, self.beta)

    def force(self, links: Tensor) -> Tensor:
        r"""F = −∂S/∂θ_μ(x), same shape as ``links``."""
        return lattice.force(links, self.beta)

    def columns(self) -> dict[str, float]:
        """``{"L": L, "beta": β}``, the point's columns in a results table."""
        return {"L": self.L, "beta": self.beta}
