"""A study's points: the point of each config entry, made by its theory, and the checks
of the points, and of the samplers listed for them, that the schema cannot see.

A point names its theory (``theory: u1``; φ⁴ when absent), which builds it
(:meth:`fieldflow.theory.Theory.point`). Every sampler listed in ``flows`` and ``mcmc``
must sample the theory of every point (:func:`fieldflow.samplers.supports`): a study is
every sampler at every point, so a config that lists one for a theory it cannot sample
is refused, never trimmed. A study is of one theory: its tables have one set of point
columns (L, s, lam or L, beta). Each problem is one line naming its key.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fieldflow import samplers
from fieldflow.flows import FAMILIES
from fieldflow.lattice import Point
from fieldflow.theory import PHI4, PointLike, get_theory

#: The theory of a point that names none.
DEFAULT_THEORY = PHI4.name


def point_from_entry(entry: dict[str, Any]) -> PointLike:
    """The point of one ``points`` entry, made by its theory (``theory``, φ⁴ if absent)
    from L and the theory's parameters: a φ⁴ :class:`~fieldflow.lattice.Point` (also from
    the hopping form kappa, lam_K) or a :class:`~fieldflow.u1.point.U1Point`."""
    name = entry.get("name", "")
    if "kappa" in entry:  # φ⁴'s second parameterisation (DESIGN.md §1)
        return Point.from_hopping(entry["L"], entry["kappa"], entry["lam_K"], name)
    theory = get_theory(entry.get("theory", DEFAULT_THEORY))
    point = theory.point(entry["L"], **{key: float(entry[key]) for key in theory.parameters})
    return dataclasses.replace(point, name=name)


def points(config: dict[str, Any]) -> list[PointLike]:
    """The study's points, in config order."""
    return [point_from_entry(entry) for entry in config["points"]]


def point_problems(config: dict[str, Any], skip: set[int], broken: set) -> list[str]:
    """Problems of the points the schema cannot see, and of the samplers listed for their
    theories; entries listed in ``skip`` already failed the schema."""
    problems = []
    flows = config.get("flows") if ("flows",) not in broken else []
    listed = [name for name in flows if name in FAMILIES] if isinstance(flows, list) else []
    keys: dict[str, int] = {}
    names: dict[str, int] = {}
    theories: dict[str, int] = {}  # theory name → its first point
    for i, entry in enumerate(config["points"]):
        if i in skip:
            continue
        if entry.get("name") in names:
            problems.append(
                f"config key 'points[{i}].name': {entry['name']!r} already names "
                f"points[{names[entry['name']]}]"
            )
        elif entry.get("name"):
            names[entry["name"]] = i
        theory = entry.get("theory", DEFAULT_THEORY)
        entry_problems = _ENTRY_CHECKS.get(theory, _no_problems)(i, entry)
        if entry_problems:
            problems += entry_problems
            continue
        theories.setdefault(theory, i)
        if theories.keys() != {theory}:
            first = next(iter(theories))
            problems.append(
                f"config key 'points[{i}].theory': {theory}, but points[{theories[first]}] is "
                f"{first}; a study is of one theory (its tables have one set of point columns)"
            )
            continue
        own = [family for family in listed if samplers.supports(family, theory)]
        problems += _lattice_problems(i, entry["L"], own)
        point = point_from_entry(entry)
        if "init_from" in entry:
            problems += _init_problems(i, entry, point, config["points"])
        problems += _POINT_CHECKS.get(theory, _no_problems)(i, point)
        if point.key in keys:
            j = keys[point.key]
            same = point_from_entry(config["points"][j])
            if same.columns() == point.columns():
                problems.append(f"config key 'points[{i}]': same point as points[{j}]")
            else:
                problems.append(
                    f"config key 'points[{i}]': differs from points[{j}] only "
                    f"beyond the 6 digits of the point key {point.key}"
                )
        keys[point.key] = i
    return problems + _sampler_problems(config, theories, broken)


def _no_problems(i: int, item: Any) -> list[str]:
    return []


def _phi4_entry_problems(i: int, entry: dict[str, Any]) -> list[str]:
    """A φ⁴ entry gives either s, lam or the hopping form kappa, lam_K, completely."""
    direct, hopping = {"s", "lam"} & entry.keys(), {"kappa", "lam_K"} & entry.keys()
    if direct and hopping:
        return [f"config key 'points[{i}]': give either s, lam or kappa, lam_K"]
    need = ("kappa", "lam_K") if hopping else ("s", "lam")
    return [
        f"config key 'points[{i}].{key}': required but missing" for key in need if key not in entry
    ]


def _phi4_point_problems(i: int, point: Point) -> list[str]:
    """A φ⁴ action bounded below: λ ≥ 0, and s > 0 where λ = 0."""
    if point.lam < 0:
        return [f"config key 'points[{i}]': lam={point.lam:g} < 0, S unbounded"]
    if point.lam == 0 and point.s <= 0:
        return [f"config key 'points[{i}].s': at lam = 0 the theory needs s > 0, got {point.s:g}"]
    return []


#: Per theory, the checks of a points entry before its point is built (its keys; a u1
#: entry's are the schema's), and of the point (the parameters' physics).
_ENTRY_CHECKS = {PHI4.name: _phi4_entry_problems}
_POINT_CHECKS = {PHI4.name: _phi4_point_problems}


def _lattice_problems(i: int, L: int, families: list[str]) -> list[str]:
    """The listed flow families of the point's theory must take its L (masks tile the
    torus only for multiples of their stride)."""
    problems = []
    multiples = sorted({FAMILIES[name].L_multiple for name in families} - {1})
    for m in multiples:
        need = sorted(name for name in families if FAMILIES[name].L_multiple == m)
        if L % m == 0:
            continue
        if m == 2:
            problems.append(
                f"config key 'points[{i}].L': L={L} is odd, but the checkerboard "
                f"flows {need} need an even L"
            )
        else:
            problems.append(
                f"config key 'points[{i}].L': L={L} is not divisible by {m}, but the "
                f"flows {need} need it"
            )
    return problems


def _sampler_problems(config: dict[str, Any], theories: dict[str, int], broken: set) -> list[str]:
    """Every listed flow family and Markov chain must sample the theory of every point;
    a Markov chain's settings must suit it (``trajectory_length: auto`` is φ⁴'s)."""
    problems = []
    for section in ("flows", "mcmc"):
        listed = config.get(section) if (section,) not in broken else None
        for k, name in enumerate(listed if isinstance(listed, list) else []):
            if name not in samplers.names():
                continue  # the schema has named it
            for theory, i in theories.items():
                if not samplers.supports(name, theory):
                    pool = FAMILIES if section == "flows" else samplers.MCMC
                    able = [n for n in pool if samplers.supports(n, theory)]
                    problems.append(
                        f"config key '{section}[{k}]': {name} does not sample {theory} points "
                        f"(points[{i}]); for {theory}: {able}"
                    )
                elif section == "mcmc" and (name,) not in broken:
                    for key, problem in samplers.settings_problems(name, config[name], theory):
                        problems.append(
                            f"config key '{name}.{key}': {problem}, but points[{i}] is {theory}"
                        )
    return problems


def _init_problems(i: int, entry: dict, point: PointLike, entries: list[dict]) -> list[str]:
    """``init_from`` must name another point of the same theory, by name or key, on a
    smaller lattice."""
    if entry["init_from"] in (point.name, point.key):
        return [f"config key 'points[{i}].init_from': a point cannot start from its own flow"]
    for other in entries:
        try:
            candidate = point_from_entry(other)
        except (KeyError, TypeError, ValueError):
            continue
        if entry["init_from"] in (candidate.name, candidate.key) and candidate != point:
            if candidate.L >= point.L:
                return [
                    f"config key 'points[{i}].init_from': {entry['init_from']} has "
                    f"L={candidate.L}, not smaller than L={point.L}"
                ]
            return []
    return [f"config key 'points[{i}].init_from': no point named {entry['init_from']!r}"]
