r"""Thermodynamic integration of log Z from the exact Gaussian point, with MCMC.

The path (s₀, 0) → (s₀, λ) → (s, λ) first raises λ at s₀ > 0, then moves s at fixed λ:

    log Z(s, λ) = log Z_Gauss(s₀) − ∫₀^λ dλ' ⟨Σ_x φ_x⁴⟩_{s₀,λ'} − ∫_{s₀}^{s} ds' ⟨Σ_x φ_x²⟩_{s',λ},

each leg by Gauss–Legendre quadrature over independent MCMC ensembles at its nodes. The
action must stay bounded below along the whole path: s₀ > 0, and s > 0 where λ = 0. The
config section ``free_energy`` chooses the points, s₀, the nodes and the sampler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fieldflow.lattice import Point, gaussian_log_z

#: Fewer Gauss–Legendre nodes a leg than this and an integration is flagged unreliable:
#: two nodes missed log Z by 0.1 (3σ) at L = 4, λ = 8; four agreed with sixteen.
MIN_NODES = 4


@dataclass(frozen=True)
class Node:
    """One quadrature node of the integration path: an MCMC point and its weight.

    The leg's contribution to log Z is −Σ ``weight`` · ⟨Σ_x φ_x^``power``⟩ over its nodes,
    with ``power`` 4 on the λ leg and 2 on the s leg.
    """

    leg: str
    index: int
    s: float
    lam: float
    weight: float

    @property
    def power(self) -> int:
        return 4 if self.leg == "lam" else 2

    @property
    def name(self) -> str:
        """``lam0``, ``s3``: the node's name in file paths."""
        return f"{self.leg}{self.index}"


@dataclass(frozen=True)
class IntegrationPath:
    r"""The path (s₀, 0) → (s₀, λ) → (s, λ) of thermodynamic integration on an L×L lattice.

    ``n_nodes`` Gauss–Legendre nodes per leg; a leg of zero length has none. The action
    must stay bounded below along the whole path: s₀ > 0, and s > 0 where λ = 0.
    """

    L: int
    s: float
    lam: float
    s0: float
    n_nodes: int

    def __post_init__(self) -> None:
        for name in ("s", "lam", "s0"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"integration path: {name} must be finite")
        if not self.s0 > 0:
            raise ValueError(
                f"integration path: s0 = {self.s0:g} must be > 0, where the exact Gaussian "
                "log Z starts the path"
            )
        if self.lam < 0 or (self.lam == 0 and not self.s > 0):
            raise ValueError(
                f"integration path to s = {self.s:g}, lam = {self.lam:g} crosses an unbounded "
                "action (lam = 0 needs s > 0 everywhere on the path)"
            )
        if self.n_nodes < 1:
            raise ValueError(f"integration path: n_nodes must be >= 1, got {self.n_nodes}")

    def nodes(self) -> list[Node]:
        r"""The quadrature nodes, the λ leg first.

        On [a, b], ∫ g ≈ Σ_i (b − a)/2 · w_i · g(a + (b − a)(x_i + 1)/2) with the
        Gauss–Legendre nodes x_i and weights w_i on [−1, 1].
        """
        x, w = np.polynomial.legendre.leggauss(self.n_nodes)
        nodes = []
        if self.lam != 0:
            half = self.lam / 2
            nodes += [
                Node("lam", i, self.s0, float(half * (xi + 1)), float(half * wi))
                for i, (xi, wi) in enumerate(zip(x, w, strict=True))
            ]
        if self.s != self.s0:
            half = (self.s - self.s0) / 2
            nodes += [
                Node("s", i, float(self.s0 + half * (xi + 1)), self.lam, float(half * wi))
                for i, (xi, wi) in enumerate(zip(x, w, strict=True))
            ]
        return nodes

    def node(self, name: str) -> Node:
        """The node called ``name`` (``lam0``, ``s3``)."""
        for node in self.nodes():
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r} on this path")


@dataclass(frozen=True)
class IntegratedLogZ:
    """log Z by thermodynamic integration, with the statistical error of the nodes' means."""

    log_Z: float
    error: float
    start: float
    reliable: bool
    reason: str


def integrate(
    path: IntegrationPath,
    means: dict[str, tuple[float, float]],
    unreliable: dict[str, str] | None = None,
) -> IntegratedLogZ:
    r"""log Z(s, λ) = log Z_Gauss(s₀) − Σ_nodes weight · ⟨Σ_x φ_x^p⟩.

    The nodes are independent ensembles, so their errors add in quadrature:
    σ² = Σ weight² σ²(⟨Σ φ^p⟩). The quadrature error is not included: with
    :data:`MIN_NODES` nodes a leg it was below the statistical one at E1, E2 and
    L = 4, λ = 8 (docs/benchmarks.md); with fewer the result is flagged unreliable.

    Args:
        means: per node name, the mean of Σ_x φ_x^p and its (Γ-method) error.
        unreliable: per node name, why its estimate is unreliable; any entry flags the result.
    """
    start = gaussian_log_z(path.L, path.s0)
    value, variance = start, 0.0
    for node in path.nodes():
        if node.name not in means:
            raise KeyError(f"integration path: no estimate for node {node.name}")
        mean, error = means[node.name]
        value -= node.weight * mean
        variance += (node.weight * error) ** 2
    problems = sorted(f"{name}: {why}" for name, why in (unreliable or {}).items() if why)
    if path.nodes() and path.n_nodes < MIN_NODES:
        problems.append(
            f"{path.n_nodes} nodes a leg < {MIN_NODES}: the quadrature error may exceed the "
            "statistical one (docs/benchmarks.md)"
        )
    return IntegratedLogZ(value, math.sqrt(variance), start, not problems, "; ".join(problems))


def path_to(point: Point, section: dict[str, Any]) -> IntegrationPath:
    """The path to ``point`` of a ``free_energy`` config section (keys s0, n_nodes)."""
    return IntegrationPath(point.L, point.s, point.lam, section["s0"], section["n_nodes"])


def selected(points: list[Point], section: dict[str, Any]) -> list[Point]:
    """The points of ``section["points"]`` (names or keys), or all of them where it is null."""
    wanted = section.get("points")
    if wanted is None:
        return list(points)
    return [p for p in points if p.name in wanted or p.key in wanted]


def config_problems(
    points: list[Point], section: dict[str, Any], sampler_keys: set[str]
) -> list[str]:
    """What is wrong with a ``free_energy`` section: unknown points or settings, and paths
    that would cross an unbounded action. ``sampler_keys``: the settings its sampler has."""
    labels = {label for point in points for label in (point.name, point.key) if label}
    problems = [
        f"config key 'free_energy.points': no point named {label!r}"
        for label in section.get("points") or []
        if label not in labels
    ]
    problems += [
        f"config key 'free_energy.settings.{key}': not a setting of {section['sampler']}; "
        f"known: {sorted(sampler_keys)}"
        for key in sorted(set(section.get("settings") or {}) - sampler_keys)
    ]
    for point in selected(points, section):
        try:
            path_to(point, section)
        except ValueError as err:
            problems.append(f"config key 'free_energy': at {point.name or point.key}: {err}")
    return problems


def settings_problems(settings: dict[str, dict[str, Any]], schema: dict) -> list[str]:
    """``{sampler: node settings}`` (its config section updated by ``free_energy.settings``)
    checked against that section's part of the config schema, keys named as in the config."""
    from fieldflow.schema import schema_problems

    [(sampler, merged)] = settings.items()
    section = {
        "$defs": schema.get("$defs", {}),
        "type": "object",
        "properties": {sampler: schema["properties"][sampler]},
    }
    problems, _ = schema_problems({sampler: dict(merged)}, section)
    return [problem.replace(f"'{sampler}.", "'free_energy.settings.", 1) for problem in problems]
