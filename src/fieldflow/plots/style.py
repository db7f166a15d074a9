"""The look shared by every figure: symbols, colours, markers, point slots and saving.

A sampler keeps one colour and marker in every figure (:func:`sampler_style`); a line that
a figure draws per sampler *and* per point takes the sampler's colour and the point's
marker and line style (:func:`point_style`), so no two lines of a figure look alike.

A point is a tuple (L, *parameters) in the point columns of its table, those of the
study's theory (φ⁴: L, s, lam; U(1): L, beta; :func:`fieldflow.study.point_columns`);
what a theory's figures call things is its :class:`fieldflow.plots.looks.TheoryLook`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fieldflow import samplers as sampler_registry
from fieldflow.study.roles import point_columns
from fieldflow.theory import point_from_key

#: Symbols of the observables of DESIGN.md §1, for axis labels.
OBSERVABLE_SYMBOLS = {
    "phi2": r"$\langle\phi^2\rangle$",
    "abs_magnetization": r"$\langle|M|\rangle/V$",
    "susceptibility": r"$\chi_2$",
    "ising_energy": r"$E$",
    "binder": r"$U_4$",
    "correlation_length": r"$\xi_2$",
    "magnetization": r"$\langle M\rangle/V$",
    "pole_mass": r"$m_p$",
    "plaquette": r"$\langle\cos\theta_P\rangle$",
    "topological_susceptibility": r"$\chi_t$",
    "topological_charge": r"$\langle Q\rangle$",
}

#: Observables in the order of DESIGN.md §1, for panel titles: the symbol, named in words
#: where the symbol alone is not common usage.
OBSERVABLE_LABELS = {
    "phi2": r"$\langle\phi^2\rangle$",
    "abs_magnetization": r"$\langle|M|\rangle/V$",
    "susceptibility": r"susceptibility $\chi_2$",
    "ising_energy": r"Ising energy $E$",
    "binder": r"Binder cumulant $U_4$",
    "correlation_length": r"correlation length $\xi_2$",
    "magnetization": r"$\langle M\rangle/V$",
    "pole_mass": r"pole mass $m_p$",
    "plaquette": r"plaquette $\langle\cos\theta_P\rangle$",
    "topological_susceptibility": r"topological susceptibility $\chi_t$",
    "topological_charge": r"topological charge $\langle Q\rangle$",
}

#: Symbols of the point columns in labels.
PARAMETER_SYMBOLS = {"L": "L", "s": "s", "lam": "λ", "beta": "β"}

#: Samplers in a fixed order (the registry's: baselines, then flows) so each keeps its
#: colour and marker across figures.
SAMPLER_ORDER = (*sampler_registry.MCMC, *sampler_registry.FAMILIES)
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_LINESTYLES = ("-", "--", ":", "-.")


def axis_label(name: str) -> str:
    """The axis label of a point column (``L``, ``β``)."""
    return PARAMETER_SYMBOLS.get(name, name)


def save_figure(fig: Figure, stem: str | Path) -> tuple[Path, Path]:
    """Write ``stem.png`` (150 dpi) and ``stem.pdf``, creating the directory.

    Args:
        fig: the figure.
        stem: output path without extension, e.g. ``results/figures/tau_int``.
    Returns:
        The PNG and PDF paths.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    # Not with_suffix: a stem may hold a dot, as in L8_s-4_lam6.008.
    png, pdf = stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.pdf"
    fig.savefig(png, dpi=150)
    fig.savefig(pdf)
    return png, pdf


def point_label(columns: Mapping[str, float]) -> str:
    """Readable label of a point from its columns, e.g. ``L=8 s=-4 λ=8`` or ``L=8 β=2``."""
    return " ".join(
        f"L={int(value)}" if name == "L" else f"{PARAMETER_SYMBOLS.get(name, name)}={value:g}"
        for name, value in columns.items()
    )


def split_label(label: str) -> tuple[str, str]:
    """``(sampler, point)`` of an ensemble label ``"{sampler} {point key}"``.

    The point comes back readable (:func:`point_label`) when it is the key of a point of
    any theory, as is otherwise; a label without a point gives an empty one.
    """
    sampler, _, key = label.partition(" ")
    try:
        point = point_from_key(key)
    except ValueError:
        return sampler, key
    return sampler, point_label(point.columns())


def sampler_style(sampler: str) -> dict[str, str]:
    """Colour and marker of a sampler, stable across figures."""
    order = list(SAMPLER_ORDER)
    # A checksum, not hash(): str hashes change between interpreter runs.
    index = order.index(sampler) if sampler in order else len(order) + sum(map(ord, sampler))
    return {"color": f"C{index % 10}", "marker": _MARKERS[index % len(_MARKERS)]}


def point_style(index: int) -> dict[str, str]:
    """Marker and line style of the ``index``-th point of a figure: every pair differs
    for up to 32 points."""
    return {
        "marker": _MARKERS[index % len(_MARKERS)],
        "linestyle": _LINESTYLES[index // len(_MARKERS) % len(_LINESTYLES)],
    }


def note(ax: Axes, text: str) -> None:
    """Centred grey text on ``ax``, for a panel with nothing to show."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def points_of(table: pd.DataFrame) -> list[tuple]:
    """Distinct points (L, *parameters) of a table, in its point columns, sorted."""
    if table.empty:
        return []
    names = point_columns(table)
    unique = table[names].drop_duplicates().sort_values(names)
    return [(int(L), *map(float, rest)) for L, *rest in unique.itertuples(index=False)]


def at_point(table: pd.DataFrame, point: Sequence[float]) -> pd.DataFrame:
    """The rows of ``table`` at ``point`` (L, *parameters), matching floats with tolerance."""
    L, *parameters = point
    mask = table["L"] == L
    for name, value in zip(point_columns(table)[1:], parameters, strict=True):
        mask &= np.isclose(table[name], value)
    return table[mask]


def samplers_of(table: pd.DataFrame) -> list[str]:
    """Samplers of a table, known ones first in :data:`SAMPLER_ORDER`."""
    present = list(dict.fromkeys(table["sampler"]))
    known = [name for name in SAMPLER_ORDER if name in present]
    return known + sorted(name for name in present if name not in SAMPLER_ORDER)


def lines_in_L(rows: pd.DataFrame, axis: str = "L") -> list[pd.DataFrame]:
    """A sampler's rows as lines against ``axis`` (a point column): one if each value of it
    occurs once, else one per value of the other point columns."""
    if rows[axis].is_unique:
        return [rows.sort_values(axis)]
    others = [name for name in point_columns(rows) if name != axis]
    return [line.sort_values(axis) for _, line in rows.groupby(others, sort=True)]


def point_index(points: list[tuple], point: Sequence[float]) -> int | None:
    """Position of ``point`` (L, *parameters) in ``points``, matching floats with tolerance."""
    L, *parameters = point
    for i, (pL, *known) in enumerate(points):
        if int(L) == pL and all(
            math.isclose(value, p, abs_tol=1e-9) for value, p in zip(parameters, known, strict=True)
        ):
            return i
    return None


def offsets(count: int, width: float = 0.6) -> np.ndarray:
    """x offsets, shape (count,), spreading ``count`` series across ``width`` of a slot."""
    if count <= 1:
        return np.zeros(1)
    return np.linspace(-width / 2, width / 2, count)


def set_point_ticks(ax: Axes, points: list[tuple], names: Sequence[str]) -> None:
    """Label the x slots with the points (in the point columns ``names``), tilted when
    there are many."""
    ax.set_xticks(range(len(points)))
    labels = [point_label(dict(zip(names, p, strict=True))) for p in points]
    ax.set_xticklabels(labels, rotation=25 if len(points) > 3 else 0)
    ax.set_xlim(-0.6, len(points) - 0.4)


def aligned(table: pd.DataFrame, points: list[tuple], column: str) -> np.ndarray:
    """``column`` of a single-sampler table laid out on the points, shape (len(points),)."""
    out = np.full(len(points), np.nan)
    names = point_columns(table)
    for row in table.itertuples(index=False):
        i = point_index(points, [getattr(row, name) for name in names])
        if i is not None:
            out[i] = float(getattr(row, column))
    return out


def point_grid(
    table: pd.DataFrame, title: str, empty: str
) -> tuple[Figure, list[tuple[tuple, Axes]]]:
    """A figure with one titled panel per point of ``table``, at most three to a row.

    Panels beyond the points are hidden; a table without points gets one panel that
    says ``empty``.
    Returns:
        The figure and its (point, panel) pairs.
    """
    points = points_of(table)
    count = max(len(points), 1)
    cols = min(count, 3)
    fig = Figure(figsize=(4.2 * cols, 3.5 * math.ceil(count / cols)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(math.ceil(count / cols), cols)).ravel()
    fig.suptitle(title)
    if not points:
        note(axes[0], empty)
    for ax in axes[count:]:
        ax.set_visible(False)
    names = point_columns(table)
    for ax, point in zip(axes, points, strict=False):
        ax.set_title(point_label(dict(zip(names, point, strict=True))), fontsize="small")
    return fig, list(zip(points, axes, strict=False))
