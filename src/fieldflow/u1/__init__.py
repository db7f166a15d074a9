"""2D U(1) lattice gauge theory: lattice physics (:mod:`.lattice`) and exact references
(:mod:`.exact`).

``plaquette`` here is the lattice function (plaquette angles of configurations); the exact
⟨cos θ_P⟩ of a point is ``fieldflow.u1.exact.plaquette(L, beta)``. The package does not
import :mod:`.exact` (scipy.special) itself, so that sampling jobs need not load it.
"""

from fieldflow.u1 import lattice
from fieldflow.u1.lattice import (
    action,
    force,
    gauge_transform,
    plaquette,
    primary_observables,
    topological_charge,
    wrap,
)

__all__ = [
    "action",
    "force",
    "gauge_transform",
    "lattice",
    "plaquette",
    "primary_observables",
    "topological_charge",
    "wrap",
]
