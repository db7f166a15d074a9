"""The free energy: each flow's log Z against thermodynamic integration."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fieldflow.analysis import pull
from fieldflow.lattice import gaussian_log_z
from fieldflow.plots import style
from fieldflow.study import PULL_LIMIT, point_columns


def free_energy(table: pd.DataFrame, limit: float = PULL_LIMIT) -> Figure:
    """results/tables/free_energy.csv: f = −log Z / V per point, and each flow's pull.

    Left, f with its error for every estimate (filled: a flow's raw proposals, black bars:
    thermodynamic integration with MCMC; a black star: the exact value at λ = 0). Right,
    the pull (log Z_flow − log Z_int) / σ of each flow against the integration at the same
    point, with ±``limit`` in red. Hollow markers are estimates flagged unreliable (see
    :func:`fieldflow.free_energy.flow_log_z` and :func:`fieldflow.integration.integrate`).
    """
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.set_title("free-energy density $f = -\\log Z / V$")
    left.set_ylabel("$f$")
    right.set_title("flow against thermodynamic integration")
    right.set_ylabel("pull of $\\log Z$ (σ)")
    right.axhspan(-2, 2, color="0.9")
    for sign in (-1, 1):
        right.axhline(sign * limit, color="red", lw=1)
    if table.empty:
        style.note(left, "no free-energy estimates")
        style.note(right, "nothing to compare")
        return fig
    points, names = style.points_of(table), point_columns(table)
    groups = list(dict.fromkeys(table[["sampler", "method"]].itertuples(index=False, name=None)))
    for (sampler, method), dx in zip(groups, style.offsets(len(groups)), strict=True):
        rows = table[(table["sampler"] == sampler) & (table["method"] == method)]
        x = np.array([style.point_index(points, p) for p in rows[names].to_numpy()], float)
        look = style.sampler_style(sampler)
        color = "black" if method == "integration" else look["color"]
        for xi, r in zip(x + dx, rows.itertuples(), strict=True):
            left.errorbar(
                xi,
                r.f,
                yerr=r.f_error,
                color=color,
                marker=look["marker"],
                fillstyle="full" if bool(r.reliable) else "none",
                capsize=2,
            )
        left.plot(
            [],
            [],
            color=color,
            marker=look["marker"],
            linestyle="none",
            label=f"{sampler} ({method})",
        )
    for L, s, lam in points:  # the exact value where the theory is free
        if lam == 0 and s > 0:
            x = style.point_index(points, (L, s, lam))
            left.plot(x, -gaussian_log_z(L, s) / L**2, marker="*", color="black", ms=12, ls="none")
    left.plot([], [], marker="*", color="black", ms=12, ls="none", label="exact (λ = 0)")
    style.set_point_ticks(left, points, names)
    left.legend(fontsize="small")
    _pulls(right, table, points, limit)
    return fig


def _pulls(ax, table: pd.DataFrame, points: list, limit: float) -> None:
    reference = table[table["method"] == "integration"]
    flows = table[table["method"] == "flow"]
    if reference.empty or flows.empty:
        style.note(ax, "no integration path in this study" if reference.empty else "no flow")
        return
    samplers = list(dict.fromkeys(flows["sampler"]))
    for sampler, dx in zip(samplers, style.offsets(len(samplers)), strict=True):
        look = style.sampler_style(sampler)
        for r in flows[flows["sampler"] == sampler].itertuples():
            ref = reference[
                (reference["L"] == r.L) & (reference["s"] == r.s) & (reference["lam"] == r.lam)
            ]
            if ref.empty:
                continue
            value = pull(r.log_Z, r.error, ref["log_Z"].iloc[0], ref["error"].iloc[0])
            reliable = bool(r.reliable) and bool(ref["reliable"].iloc[0])
            x = style.point_index(points, (r.L, r.s, r.lam)) + dx
            ax.plot(
                x,
                np.clip(value, -limit - 1.2, limit + 1.2),
                color=look["color"],
                marker=look["marker"],
                fillstyle="full" if reliable else "none",
            )
        ax.plot([], [], color=look["color"], marker=look["marker"], linestyle="none", label=sampler)
    ax.set_ylim(-limit - 1.5, limit + 1.5)
    style.set_point_ticks(ax, points, point_columns(table))
    ax.legend(fontsize="small")
