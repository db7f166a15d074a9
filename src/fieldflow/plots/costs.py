"""Costs and scaling: critical slowing down and seconds per independent sample against L."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from fieldflow.plots.looks import look_of
from fieldflow.plots.style import axis_label, note, sampler_style, samplers_of

#: The cost columns of the scaling table, each with its line style, marker fill and legend.
_COSTS = (
    ("seconds_per_independent", "-", "full", "sampling"),
    ("cost_1e4", "--", "bottom", "+ training / 10⁴"),
    ("cost_1e6", ":", "none", "+ training / 10⁶"),
)


def scaling_tau(scaling: pd.DataFrame, exponents: pd.DataFrame) -> Figure:
    """τ_int of χ₂ and |M| against L and against ξ₂, per sampler, with the fit τ ∝ ξ^z.

    Args:
        scaling: results/tables/scaling.csv (fieldflow.study.scaling).
        exponents: results/tables/exponents.csv (fieldflow.study.dynamic_exponents).
    Returns:
        A 2×2 log-log figure: rows χ₂ and |M|; columns against L and against ξ₂. The
        lines are the fitted power laws; z is in the legend.
    """
    fig = Figure(figsize=(10, 7.5), layout="constrained")
    axes = fig.subplots(2, 2)
    fig.suptitle(
        r"Critical slowing down: $\tau_\mathrm{int}$ per update (trajectory, cluster "
        "update or flow proposal)"
    )
    rows = (("susceptibility", "tau_chi2", r"$\chi_2$"), ("abs_magnetization", "tau_absm", "$|M|$"))
    for (observable, column, label), (ax_L, ax_xi) in zip(rows, axes, strict=True):
        for ax, xlabel in ((ax_L, "L"), (ax_xi, r"$\xi_2$")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(ScalarFormatter())
            ax.set_xlabel(xlabel)
            ax.set_ylabel(rf"$\tau_\mathrm{{int}}$({label})")
            ax.grid(alpha=0.3, which="both")
            ax.axhline(0.5, color="0.4", ls="--", lw=1.0)
        if scaling.empty:
            note(ax_L, "no samplers")
            continue
        for sampler in samplers_of(scaling):
            rows_ = scaling[scaling["sampler"] == sampler].sort_values("L")
            fit = exponents[
                (exponents["sampler"] == sampler) & (exponents["observable"] == observable)
            ]
            name = sampler
            if not fit.empty:
                f = fit.iloc[0]
                name = rf"{sampler}: $z = {f.z:.2f} \pm {f.z_error:.2f}$"
                xi = np.linspace(rows_["xi2"].min(), rows_["xi2"].max(), 50)
                ax_xi.plot(xi, f.amplitude * xi**f.z, color=sampler_style(sampler)["color"], lw=1)
            for ax, x, xerr in ((ax_L, "L", None), (ax_xi, "xi2", "xi2_error")):
                ax.errorbar(
                    rows_[x],
                    rows_[column],
                    yerr=rows_[f"{column}_error"],
                    xerr=None if xerr is None else rows_[xerr],
                    linestyle="none",
                    capsize=2,
                    label=name,
                    **sampler_style(sampler),
                )
        ax_xi.legend(fontsize="small")
    return fig


def cost_per_sample(scaling: pd.DataFrame, crossover: pd.DataFrame) -> Figure:
    """Wall-clock seconds per effectively independent χ₂ sample against L, per sampler
    (of the theory's cost observable against its axis,
    :class:`~fieldflow.plots.style.TheoryLook`: Q against β for U(1)).

    Solid, filled: sampling only (seconds per configuration × 2 τ_int(χ₂)); dashed and
    half-filled, dotted and hollow: with the flow's training time amortised over 10⁴ and
    10⁶ independent samples. Error bars: ``seconds_per_independent_error`` (τ_int and
    timing), on every line (training time adds no error). A star marks the L from which a
    flow (sampling only) is decidedly cheaper than every Markov-chain baseline of the study
    (verdict ``crossover`` against each, :func:`fieldflow.study.crossovers`); where the
    verdicts are per point of a scan (U(1)'s β), a star at each point where it is.
    """
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.subplots()
    look = look_of(scaling)
    x = look.axis
    ax.set_title(look.texts["cost"])
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel("wall-clock seconds per independent sample")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    if scaling.empty:
        note(ax, "no samplers")
        return fig
    for sampler in samplers_of(scaling):
        rows = scaling[scaling["sampler"] == sampler].sort_values(x)
        for column, linestyle, fill, what in _COSTS:
            if (rows["kind"] == "mcmc").all() and column != "seconds_per_independent":
                continue
            # Lines join a line of points, one per L; a study with several points at one L
            # gets markers only, told apart by their fill.
            ax.errorbar(
                rows[x],
                rows[column],
                yerr=rows["seconds_per_independent_error"],
                label=f"{sampler}: {what}",
                capsize=2,
                linestyle=linestyle if rows[x].is_unique else "none",
                fillstyle=fill,
                **sampler_style(sampler),
            )
        mine = (crossover["sampler"] == sampler) & (crossover["cost"] == "seconds_per_independent")
        for at in _crossed(rows, crossover[mine]):
            ax.plot(
                at[x],
                at["seconds_per_independent"],
                marker="*",
                markersize=16,
                color=sampler_style(sampler)["color"],
                linestyle="none",
            )
    ax.set_xticks(sorted(scaling[x].unique()))
    ax.legend(fontsize="x-small", ncol=2)
    return fig


def _crossed(rows: pd.DataFrame, verdicts: pd.DataFrame) -> list[pd.DataFrame]:
    """The rows of one flow's scaling ``rows`` to star: per group of its sampling-cost
    ``verdicts`` (the whole study, or one value of the columns before ``sampler``) that
    has a crossover against every baseline, its points at the latest ``first_L``."""
    along = list(verdicts.columns[: list(verdicts.columns).index("sampler")])
    groups = verdicts.groupby(along, sort=False) if along else [((), verdicts)]
    starred = []
    for _, group in groups:
        first = group["first_L"]
        if first.empty or not np.isfinite(first).all():
            continue
        at = rows[rows["L"] == first.max()]
        for name in along:
            at = at[at[name] == group[name].iloc[0]]
        starred.append(at)
    return starred
