"""The broken phase: tunnelling between the vacua and the distribution of M/V."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fieldflow.plots.looks import look_of
from fieldflow.plots.style import (
    at_point,
    axis_label,
    lines_in_L,
    note,
    offsets,
    point_grid,
    sampler_style,
    samplers_of,
)
from fieldflow.study.roles import point_columns, roles_of


def tunnelling(table: pd.DataFrame) -> Figure:
    """τ_int of the magnetization against L, per sampler: how fast M changes sign.

    For another theory, of its order parameter against its axis
    (:class:`~fieldflow.plots.style.TheoryLook`): for U(1), τ_int(Q) against β, how fast
    the topological charge changes sector.

    Args:
        table: results/tables/tunnelling.csv (:func:`fieldflow.study.tunnelling`).
    Returns:
        One log-scale panel. Estimates have Γ-method error bars and are hollow where
        unreliable; a sampler's points are joined when they form one line in L (else per
        (s, λ)). A row without any crossing (``bound`` = ``lower``) is an upward triangle
        at τ = nN/6, a 95% lower bound, never joined to the estimates.
    """
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.subplots()
    look, roles = look_of(table), roles_of(table)
    x, tau, tau_error = look.axis, roles.column("tau_m"), roles.column("tau_m_error")
    ax.set_title(look.texts["tunnelling"])
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(look.texts["tunnelling_y"])
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.axhline(0.5, color="0.4", ls="--", lw=1.0, label="uncorrelated (τ = ½)")
    if table.empty:
        note(ax, "no samplers")
        return fig
    names = samplers_of(table)
    for sampler, dx in zip(names, offsets(len(names), width=0.4), strict=True):
        style = sampler_style(sampler)
        others = [name for name in point_columns(table) if name != x]
        rows = table[table["sampler"] == sampler].sort_values([*others, x])
        bounded = rows["bound"] == "lower"
        numbers = rows[~bounded & (rows[tau] > 0)]
        for line in lines_in_L(numbers, x):
            if len(line) > 1:
                ax.plot(line[x] + dx, line[tau], color=style["color"], lw=1)
        trusted = numbers["reliable"].astype(bool)
        series = (
            (numbers[trusted], "full", sampler),
            (numbers[~trusted], "none", f"{sampler} (unreliable)"),
        )
        for subset, fill, label in series:
            if subset.empty:
                continue
            y, dy = subset[tau], subset[tau_error].fillna(0.0)
            ax.errorbar(
                subset[x] + dx,
                y,
                yerr=[np.minimum(dy, 0.9 * y), dy],
                linestyle="none",
                capsize=2,
                fillstyle=fill,
                label=label,
                **style,
            )
        if bounded.any():
            ax.plot(
                rows.loc[bounded, x] + dx,
                rows.loc[bounded, tau],
                linestyle="none",
                marker=10,
                markersize=12,
                color=style["color"],
                label=f"{sampler}: no crossing, lower bound",
            )
    ax.set_xticks(sorted(table[x].unique()))
    ax.legend(fontsize="x-small", ncol=2)
    return fig


def magnetization_histograms(histograms: pd.DataFrame) -> Figure:
    """The distribution of M/V (U(1): of Q, one bin per integer), one panel per point, one
    step line per sampler, drawn on the bins of the table.

    Args:
        histograms: results/tables/magnetization_histograms.csv (columns L, s, lam,
            sampler, bin_low, bin_high, density).
    Returns:
        A grid of panels. Z2 makes every histogram symmetric about 0; a sampler whose
        chains all stuck in one vacuum shows one peak where the others show two. Chains
        stuck in different vacua still draw two peaks between them: their weights are
        then off by chance, and tunnelling.csv, not this figure, tells them apart.
    """
    texts = look_of(histograms).texts
    fig, panels = point_grid(histograms, texts["histograms"], "no histograms")
    for point, ax in panels:
        ax.set_xlabel(texts["histogram_x"])
        ax.set_ylabel("density")
        ax.grid(alpha=0.3)
        here = at_point(histograms, point)
        for sampler in samplers_of(here):
            rows = here[here["sampler"] == sampler].sort_values("bin_low")
            edges = np.append(rows["bin_low"].to_numpy(), rows["bin_high"].iloc[-1])
            ax.stairs(
                rows["density"].to_numpy(),
                edges,
                label=sampler,
                lw=1.3,
                color=sampler_style(sampler)["color"],
            )
        ax.axvline(0.0, color="0.4", lw=0.8)
        ax.legend(fontsize="x-small")
    return fig
