"""Sampler quality: Metropolis acceptance and effective sample size, per point and per L."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fieldflow.plots.looks import look_of
from fieldflow.plots.style import (
    aligned,
    axis_label,
    note,
    offsets,
    points_of,
    sampler_style,
    samplers_of,
    set_point_ticks,
)
from fieldflow.study.roles import point_columns


def acceptance_ess(samplers: pd.DataFrame) -> Figure:
    """Metropolis acceptance of every sampler and ESS of every flow, per point.

    Args:
        samplers: the samplers table (columns L, s, lam, sampler, acceptance, ess, ...),
            ess NaN for Markov chains.
    Returns:
        Two panels of grouped bars, one group per point and one bar per sampler.
    """
    points = points_of(samplers)
    fig = Figure(figsize=(max(7.0, 1.6 * len(points) + 4.0), 7), layout="constrained")
    ax_acc, ax_ess = fig.subplots(2, 1, squeeze=True)
    fig.suptitle("Acceptance and effective sample size")
    _grouped_bars(ax_acc, samplers, points, "acceptance")
    ax_acc.set_ylabel("Metropolis acceptance")
    ax_acc.set_title("acceptance (HMC: per trajectory; cluster: its local Metropolis steps)")
    flows = samplers[samplers["ess"].notna()] if "ess" in samplers else samplers.iloc[:0]
    ax_ess.set_title("ESS per sample of fresh flow proposals")
    ax_ess.set_ylabel("ESS per sample")
    if flows.empty:
        note(ax_ess, "no flows in this study")
        ax_ess.set_xticks([])
    else:
        _grouped_bars(ax_ess, flows, points, "ess")
    for ax in (ax_acc, ax_ess):
        ax.set_ylim(0.0, 1.05)
    return fig


def families_vs_L(samplers: pd.DataFrame) -> Figure:
    """ESS and Metropolis acceptance of every flow family against the lattice size L (or
    the theory's axis, :class:`~fieldflow.plots.style.TheoryLook`: β for U(1)).

    Args:
        samplers: the samplers table; Markov-chain rows (kind ``mcmc``) are left out.
    Returns:
        Two panels, one line per family; points that share an L are all drawn.
    """
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_ess, ax_acc = fig.subplots(1, 2, squeeze=True)
    look = look_of(samplers)
    x = look.axis
    fig.suptitle(look.texts["families"])
    flows = samplers[samplers["kind"] == "flow"]
    for ax, column, label in (
        (ax_ess, "ess", "ESS per sample"),
        (ax_acc, "acceptance", "Metropolis acceptance"),
    ):
        ax.set_xlabel(axis_label(x))
        ax.set_ylabel(label)
        ax.set_ylim(0.0, 1.05)
        ax.grid(alpha=0.3)
        if flows.empty:
            note(ax, "no flows in this study")
            continue
        names = samplers_of(flows)
        # Markers only, nudged apart per family: several points may share an L.
        for sampler, dx in zip(names, offsets(len(names), width=0.3), strict=True):
            rows = flows[flows["sampler"] == sampler].sort_values(x)
            ax.plot(
                rows[x] + dx,
                rows[column],
                linestyle="none",
                label=sampler,
                **sampler_style(sampler),
            )
        ax.set_xticks(sorted(flows[x].unique()))
    if not flows.empty:
        ax_ess.legend()
    return fig


def _grouped_bars(ax: Axes, table: pd.DataFrame, points: list[tuple], column: str) -> None:
    """One bar group per point, one bar per sampler, NaN bars left out."""
    names = samplers_of(table)
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(points), dtype=float)
    for offset, name in zip(offsets(len(names), 0.8 - width), names, strict=True):
        heights = aligned(table[table["sampler"] == name], points, column)
        keep = np.isfinite(heights)
        bars = ax.bar(
            x[keep] + offset, heights[keep], width, label=name, color=sampler_style(name)["color"]
        )
        ax.bar_label(bars, fmt="%.2f", fontsize="x-small", padding=1)
    set_point_ticks(ax, points, point_columns(table))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="sampler", fontsize="small")
