"""2D U(1) lattice gauge theory: lattice physics (:mod:`.lattice`) and exact references
(:mod:`.exact`).

``plaquette`` here is the lattice function (plaquette angles of configurations); the exact
⟨cos θ_P⟩ of a point is ``exact.plaquette(L, beta)`` or ``references(L, beta)["plaquette"]``.
"""

from fieldflow.u1 import exact, lattice
from fieldflow.u1.exact import log_z, references, topological_susceptibility
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
    "exact",
    "force",
    "gauge_transform",
    "lattice",
    "log_z",
    "plaquette",
    "primary_observables",
    "references",
    "topological_charge",
    "topological_susceptibility",
    "wrap",
]
