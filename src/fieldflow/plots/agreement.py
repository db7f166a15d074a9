"""Agreement between samplers: the pulls of results/tables/agreement.csv."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fieldflow.plots.looks import look_of
from fieldflow.plots.style import (
    note,
    offsets,
    point_index,
    points_of,
    sampler_style,
    set_point_ticks,
)
from fieldflow.study.roles import point_columns

#: Marker of the exact Gaussian reference at λ = 0; a baseline reference has its own.
_EXACT_MARKER = "*"


def pulls(agreement: pd.DataFrame, limit: float = 4.0) -> Figure:
    """Every pull of results/tables/agreement.csv, one marker per estimate.

    Pulls are (value − reference) / combined error against each Markov-chain baseline, or
    against the exact value where the theory knows it (φ⁴: Gaussian at λ = 0; U(1):
    everywhere). The colour is the sampler's, the marker
    shape the reference's; the fill tells the estimator (filled: Metropolis chain,
    hollow: reweighting). The grey bands are ±1σ and ±2σ; red lines mark ±``limit``;
    pulls beyond it are drawn at the edge with their value beside them. A grey × marks a
    pull whose estimate or reference is unreliable.
    """
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.subplots()
    texts = look_of(agreement).texts
    ax.set_title(texts["agreement"])
    ax.set_ylabel("pull (σ)")
    ax.axhspan(-2, 2, color="0.9")
    ax.axhspan(-1, 1, color="0.8")
    for sign in (-1, 1):
        ax.axhline(sign * limit, color="red", lw=1)
    ax.set_ylim(-limit - 1.5, limit + 1.5)
    if agreement.empty:
        note(ax, texts["agreement_empty"])
        return fig
    points, names = points_of(agreement), point_columns(agreement)
    keys = ["sampler", "estimator", "reference"]
    groups = list(dict.fromkeys(agreement[keys].itertuples(index=False, name=None)))
    for (sampler, estimator, reference), dx in zip(
        groups, offsets(len(groups), width=0.7), strict=True
    ):
        rows = agreement[
            (agreement["sampler"] == sampler)
            & (agreement["estimator"] == estimator)
            & (agreement["reference"] == reference)
        ]
        x = np.array([point_index(points, p) for p in rows[names].to_numpy()], float)
        y = rows["pull"].to_numpy(dtype=float)
        shown = np.clip(y, -limit - 1.2, limit + 1.2)
        marker = _EXACT_MARKER if reference == "exact" else sampler_style(reference)["marker"]
        ax.plot(
            x + dx,
            shown,
            linestyle="none",
            label=f"{sampler} ({estimator}) vs {reference}",
            color=sampler_style(sampler)["color"],
            marker=marker,
            fillstyle="full" if estimator == "mh" else "none",
        )
        for xi, yi in zip(x + dx, y, strict=True):
            if abs(yi) > limit:
                ax.annotate(
                    f"{yi:+.1f}",
                    (xi, np.clip(yi, -limit - 1.2, limit + 1.2)),
                    fontsize="x-small",
                    color="red",
                )
        if "reliable" in rows:
            doubtful = ~rows["reliable"].astype(bool).to_numpy()
            ax.plot(
                (x + dx)[doubtful],
                shown[doubtful],
                linestyle="none",
                marker="x",
                color="0.3",
                markersize=9,
            )
    if "reliable" in agreement and not agreement["reliable"].astype(bool).all():
        ax.plot(
            [],
            [],
            linestyle="none",
            marker="x",
            color="0.3",
            label="× unreliable estimate or reference",
        )
    set_point_ticks(ax, points, names)
    ax.legend(fontsize="x-small", ncol=3, loc="lower right")
    return fig
