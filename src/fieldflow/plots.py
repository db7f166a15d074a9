"""Figures of the study, built from the contract tables of DESIGN.md §3.

Every builder takes DataFrames or arrays and returns a :class:`matplotlib.figure.Figure`
made without pyplot, so no global state or backend is touched; :func:`save_figure` writes
it as PNG and PDF. Builders cope with a single point, a single sampler and absent samplers
(e.g. a study with only Markov-chain baselines).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from fieldflow import samplers as registry

#: Observables in the order of DESIGN.md §1, with axis labels.
OBSERVABLE_LABELS = {
    "phi2": r"$\langle\phi^2\rangle$",
    "abs_magnetization": r"$\langle|M|\rangle/V$",
    "susceptibility": r"$\chi_2$",
    "ising_energy": r"Ising energy $E$",
    "binder": r"Binder cumulant $U$",
    "correlation_length": r"$\xi_2$",
    "magnetization": r"$\langle M\rangle/V$",
    "pole_mass": r"pole mass $m_p$",
}

#: Samplers in a fixed order (the registry's: baselines, then flows) so each keeps its
#: colour and marker across figures.
SAMPLER_ORDER = (*registry.MCMC, *registry.FAMILIES)
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_POINT_COLUMNS = ["L", "s", "lam"]
_ANCHOR_LABEL = "Albergo et al. 2021 (HMC)"


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


def load_anchors() -> list[dict[str, Any]]:
    """Published reference values from the packaged ``data/anchors.yaml``.

    Returns:
        One dict per anchor with keys observable, L, s, lam, value, error, label; at present
        the χ₂ of the Albergo et al. 2021 tutorial (arXiv:2101.08176), measured by HMC.
    """
    text = resources.files("fieldflow").joinpath("data/anchors.yaml").read_text("utf-8")
    tutorial = yaml.safe_load(text)["tutorial"]
    point, chi = tutorial["point"], tutorial["susceptibility"]
    return [
        {
            "observable": "susceptibility",
            "L": int(point["L"]),
            "s": float(point["s"]),
            "lam": float(point["lam"]),
            "value": float(chi["value"]),
            "error": float(chi["error"]),
            "label": _ANCHOR_LABEL,
        }
    ]


def point_label(L: int, s: float, lam: float) -> str:
    """Readable label of a point, e.g. ``L=8 s=-4 λ=8``."""
    return f"L={int(L)} s={s:g} λ={lam:g}"


def training_curves(histories: dict[str, pd.DataFrame]) -> Figure:
    """Loss and ESS of flow training against optimiser step and wall time.

    Args:
        histories: label (e.g. ``"realnvp L8_s-4_lam8"``) to a table with columns
            step, seconds, loss, ess.
    Returns:
        A 2×2 figure: loss vs step, loss vs seconds, ESS vs step, ESS vs seconds.
    """
    if not histories:
        fig = Figure(figsize=(6, 3), layout="constrained")
        fig.suptitle("Flow training")
        fig.text(0.5, 0.5, "no flows in this study", ha="center", va="center", color="0.4")
        return fig
    fig = Figure(figsize=(10, 7), layout="constrained")
    axes = fig.subplots(2, 2, sharex="col", squeeze=False)
    fig.suptitle("Flow training")
    for label, history in histories.items():
        for row, column in enumerate(("loss", "ess")):
            for col, x in enumerate(("step", "seconds")):
                axes[row, col].plot(
                    history[x], history[column], lw=1.2, marker=".", ms=3, label=label
                )
    for col, xlabel in enumerate(("optimiser step", "wall time (seconds)")):
        axes[1, col].set_xlabel(xlabel)
        axes[0, col].set_ylabel(r"loss $\langle\log q + S\rangle_q$ = KL − log Z")
        axes[1, col].set_ylabel("ESS per sample")
        axes[1, col].set_ylim(0.0, 1.0)
    axes[0, 0].set_title("against step")
    axes[0, 1].set_title("against wall time")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    # Outside the panels: a study has up to (flows × points) curves.
    fig.legend(
        *axes[0, 0].get_legend_handles_labels(),
        loc="outside right upper",
        fontsize="small",
        title="flow, point",
    )
    return fig


def acceptance_ess(samplers: pd.DataFrame) -> Figure:
    """Metropolis acceptance of every sampler and ESS of every flow, per point.

    Args:
        samplers: the samplers table (columns L, s, lam, sampler, acceptance, ess, ...),
            ess NaN for Markov chains.
    Returns:
        Two panels of grouped bars, one group per point and one bar per sampler.
    """
    points = _points(samplers)
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
        _note(ax_ess, "no flows in this study")
        ax_ess.set_xticks([])
    else:
        _grouped_bars(ax_ess, flows, points, "ess")
    for ax in (ax_acc, ax_ess):
        ax.set_ylim(0.0, 1.05)
    return fig


def families_vs_L(samplers: pd.DataFrame) -> Figure:
    """ESS and Metropolis acceptance of every flow family against the lattice size L.

    Args:
        samplers: the samplers table; Markov-chain rows (kind ``mcmc``) are left out.
    Returns:
        Two panels, one line per family; points that share an L are all drawn.
    """
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_ess, ax_acc = fig.subplots(1, 2, squeeze=True)
    fig.suptitle("Flow quality against lattice size")
    flows = samplers[samplers["kind"] == "flow"]
    for ax, column, label in ((ax_ess, "ess", "ESS per sample"),
                              (ax_acc, "acceptance", "Metropolis acceptance")):  # fmt: skip
        ax.set_xlabel("L")
        ax.set_ylabel(label)
        ax.set_ylim(0.0, 1.05)
        ax.grid(alpha=0.3)
        if flows.empty:
            _note(ax, "no flows in this study")
            continue
        names = _samplers(flows)
        # Markers only, nudged apart per family: several points may share an L.
        for sampler, dx in zip(names, _offsets(len(names), width=0.3), strict=True):
            rows = flows[flows["sampler"] == sampler].sort_values("L")
            ax.plot(rows["L"] + dx, rows[column], linestyle="none", label=sampler,
                    **_style(sampler))  # fmt: skip
        ax.set_xticks(sorted(flows["L"].unique()))
    if not flows.empty:
        ax_ess.legend()
    return fig


def ess_vs_seconds(histories: dict[str, pd.DataFrame], title: str) -> Figure:
    """ESS during training against wall-clock seconds, one line per flow family.

    Args:
        histories: training history (step, seconds, loss, ess) per family label.
        title: what the curves share, e.g. the point.
    """
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    ax.set_title(f"ESS against training time, {title}")
    ax.set_xlabel("training wall-clock time (seconds)")
    ax.set_ylabel("ESS per sample")
    ax.set_ylim(0.0, 1.05)
    ax.grid(alpha=0.3)
    if not histories:
        _note(ax, "no flows in this study")
        return fig
    for label, history in histories.items():
        ax.plot(history["seconds"], history["ess"], label=label, **_style(label.split()[0]))
    ax.legend()
    return fig


def transfer_curves(runs: list[dict[str, Any]]) -> Figure:
    """ESS against training seconds with and without ``init_from``, one panel per family.

    Args:
        runs: one dict per (flow, transferred point): ``flow``, ``label`` (the point),
            ``transferred`` and ``scratch`` training histories, ``source_seconds`` (the
            smaller lattice's training time) and ``target_ess`` (the level both are timed to).
    """
    flows = list(dict.fromkeys(run["flow"] for run in runs)) or ["none"]
    fig = Figure(figsize=(4.5 * len(flows), 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(flows), sharey=True))
    fig.suptitle("Transfer from a smaller lattice: ESS against training time")
    for ax, flow in zip(axes, flows, strict=True):
        ax.set_title(flow)
        ax.set_xlabel("training wall-clock time (seconds)")
        ax.set_ylim(0.0, 1.05)
        ax.grid(alpha=0.3)
        mine = [run for run in runs if run["flow"] == flow]
        if not mine:
            _note(ax, "no point has init_from and a scratch baseline")
        for i, run in enumerate(mine):
            color = f"C{i % 10}"
            t, s = run["transferred"], run["scratch"]
            ax.plot(s["seconds"], s["ess"], color=color, linestyle="--",
                    label=f"{run['label']}: from scratch")  # fmt: skip
            ax.plot(t["seconds"], t["ess"], color=color, label=f"{run['label']}: transferred")
            ax.plot(t["seconds"] + run["source_seconds"], t["ess"], color=color, linestyle=":",
                    label="  + source training")  # fmt: skip
            ax.axhline(run["target_ess"], color=color, linewidth=0.8, alpha=0.5)
        if mine:
            ax.legend(fontsize="small")
    axes[0].set_ylabel("ESS per sample (1024 fresh samples)")
    return fig


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
    rows = (("susceptibility", "tau_chi2", r"$\chi_2$"), ("abs_magnetization", "tau_absm", "|M|"))
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
            _note(ax_L, "no samplers")
            continue
        for sampler in _samplers(scaling):
            rows_ = scaling[scaling["sampler"] == sampler].sort_values("L")
            fit = exponents[(exponents["sampler"] == sampler)
                            & (exponents["observable"] == observable)]  # fmt: skip
            name = sampler
            if not fit.empty:
                f = fit.iloc[0]
                name = rf"{sampler}: $z = {f.z:.2f} \pm {f.z_error:.2f}$"
                xi = np.linspace(rows_["xi2"].min(), rows_["xi2"].max(), 50)
                ax_xi.plot(xi, f.amplitude * xi**f.z, color=_style(sampler)["color"], lw=1)
            for ax, x, xerr in ((ax_L, "L", None), (ax_xi, "xi2", "xi2_error")):
                ax.errorbar(rows_[x], rows_[column], yerr=rows_[f"{column}_error"],
                            xerr=None if xerr is None else rows_[xerr], linestyle="none",
                            capsize=2, label=name, **_style(sampler))  # fmt: skip
        ax_xi.legend(fontsize="small")
    return fig


def cost_per_sample(scaling: pd.DataFrame, crossover: pd.DataFrame) -> Figure:
    """Wall-clock seconds per effectively independent χ₂ sample against L, per sampler.

    Solid: sampling only (seconds per configuration × 2 τ_int(χ₂)); dashed and dotted:
    with the flow's training time amortised over 10⁴ and 10⁶ independent samples. Error
    bars: ``seconds_per_independent_error`` (τ_int and timing), on every line (training
    time adds no error). A star marks the L from which a flow (sampling only) is
    decidedly cheaper than every Markov-chain baseline of the study (verdict
    ``crossover`` against each, :func:`fieldflow.study.crossovers`).
    """
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.subplots()
    ax.set_title("Cost of an independent sample of $\\chi_2$")
    ax.set_xlabel("L")
    ax.set_ylabel("wall-clock seconds per independent sample")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    if scaling.empty:
        _note(ax, "no samplers")
        return fig
    styles = (
        ("seconds_per_independent", "-", "sampling"),
        ("cost_1e4", "--", "+ training / 10⁴"),
        ("cost_1e6", ":", "+ training / 10⁶"),
    )
    for sampler in _samplers(scaling):
        rows = scaling[scaling["sampler"] == sampler].sort_values("L")
        for column, linestyle, what in styles:
            if (rows["kind"] == "mcmc").all() and column != "seconds_per_independent":
                continue
            # Lines join a line of points, one per L; a study with several points at one L
            # gets markers only.
            ax.errorbar(rows["L"], rows[column], yerr=rows["seconds_per_independent_error"],
                        label=f"{sampler}: {what}", capsize=2,
                        linestyle=linestyle if rows["L"].is_unique else "none",
                        fillstyle="full" if column == "seconds_per_independent" else "none",
                        **_style(sampler))  # fmt: skip
        mine = (crossover["sampler"] == sampler) & (crossover["cost"] == "seconds_per_independent")
        first = crossover.loc[mine, "first_L"]
        if not first.empty and np.isfinite(first).all():
            at = rows[rows["L"] == first.max()]
            ax.plot(at["L"], at["seconds_per_independent"], marker="*", markersize=16,
                    color=_style(sampler)["color"], linestyle="none")  # fmt: skip
    ax.set_xticks(sorted(scaling["L"].unique()))
    ax.legend(fontsize="x-small", ncol=2)
    return fig


def pulls(agreement: pd.DataFrame, limit: float = 4.0) -> Figure:
    """Every pull of results/tables/agreement.csv, one marker per estimate.

    Pulls are (value − reference) / combined error against each Markov-chain baseline, or
    against the exact Gaussian value at λ = 0. The grey bands are ±1σ and ±2σ; red lines
    mark ±``limit``; pulls beyond it are drawn at the edge with their value beside them.
    A grey × marks a pull whose estimate or reference is unreliable.
    """
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.set_title("Agreement with the Markov-chain baselines (or the exact result at λ = 0)")
    ax.set_ylabel("pull (σ)")
    ax.axhspan(-2, 2, color="0.9")
    ax.axhspan(-1, 1, color="0.8")
    for sign in (-1, 1):
        ax.axhline(sign * limit, color="red", lw=1)
    ax.set_ylim(-limit - 1.5, limit + 1.5)
    if agreement.empty:
        _note(ax, "nothing to compare (no Markov chain and no λ = 0 point)")
        return fig
    points = _points(agreement)
    keys = ["sampler", "estimator", "reference"]
    groups = list(dict.fromkeys(agreement[keys].itertuples(index=False, name=None)))
    offsets = _offsets(len(groups), width=0.7)
    for (sampler, estimator, reference), dx in zip(groups, offsets, strict=True):
        rows = agreement[(agreement["sampler"] == sampler) & (agreement["estimator"] == estimator)
                         & (agreement["reference"] == reference)]  # fmt: skip
        x = np.array([_point_index(points, r.L, r.s, r.lam) for r in rows.itertuples()], float)
        y = rows["pull"].to_numpy(dtype=float)
        shown = np.clip(y, -limit - 1.2, limit + 1.2)
        style = _style(sampler)
        ax.plot(x + dx, shown, linestyle="none", label=f"{sampler} ({estimator}) vs {reference}",
                color=style["color"], marker=style["marker"],
                fillstyle="full" if estimator == "mh" else "none")  # fmt: skip
        for xi, yi in zip(x + dx, y, strict=True):
            if abs(yi) > limit:
                ax.annotate(f"{yi:+.1f}", (xi, np.clip(yi, -limit - 1.2, limit + 1.2)),
                            fontsize="x-small", color="red")  # fmt: skip
        if "reliable" in rows:
            doubtful = ~rows["reliable"].astype(bool).to_numpy()
            ax.plot((x + dx)[doubtful], shown[doubtful], linestyle="none", marker="x",
                    color="0.3", markersize=9)  # fmt: skip
    if "reliable" in agreement and not agreement["reliable"].astype(bool).all():
        ax.plot([], [], linestyle="none", marker="x", color="0.3",
                label="× unreliable estimate or reference")  # fmt: skip
    _set_point_ticks(ax, points)
    ax.legend(fontsize="x-small", ncol=3, loc="lower right")
    return fig


def effective_masses(correlators: pd.DataFrame, observables: pd.DataFrame) -> Figure:
    """m_eff(t) of the zero-momentum time-slice correlator, one panel per point.

    The band is each sampler's pole mass (the average of m_eff over the plateau range,
    from the observables table), ± its error.
    """
    points = _points(correlators) if not correlators.empty else []
    count = max(len(points), 1)
    cols = min(count, 3)
    fig = Figure(figsize=(4.2 * cols, 3.5 * math.ceil(count / cols)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(math.ceil(count / cols), cols)).ravel()
    fig.suptitle("Effective mass of the zero-momentum correlator")
    if not points:
        _note(axes[0], "no correlators")
    for ax in axes[len(points) :]:
        ax.set_visible(not points)
    for ax, (L, s, lam) in zip(axes, points, strict=False):
        ax.set_title(point_label(L, s, lam), fontsize="small")
        ax.set_xlabel("t")
        ax.set_ylabel(r"$m_\mathrm{eff}(t)$")
        ax.grid(alpha=0.3)
        here = correlators[(correlators["L"] == L) & np.isclose(correlators["s"], s)
                           & np.isclose(correlators["lam"], lam)]  # fmt: skip
        names = _samplers(here)
        for sampler, dx in zip(names, _offsets(len(names), width=0.3), strict=True):
            rows = here[(here["sampler"] == sampler) & here["m_eff"].notna()]
            ax.errorbar(rows["t"] + dx, rows["m_eff"], yerr=rows["m_eff_error"],
                        linestyle="none", capsize=2, label=sampler, **_style(sampler))  # fmt: skip
            pole = observables[(observables["L"] == L) & np.isclose(observables["s"], s)
                               & np.isclose(observables["lam"], lam)
                               & (observables["sampler"] == sampler)
                               & (observables["observable"] == "pole_mass")]  # fmt: skip
            if not pole.empty and np.isfinite(pole.iloc[0]["value"]):
                v, e = pole.iloc[0]["value"], pole.iloc[0]["error"]
                ax.axhspan(v - e, v + e, color=_style(sampler)["color"], alpha=0.15)
        if names:
            ax.legend(fontsize="x-small")
    return fig


def tunnelling(table: pd.DataFrame) -> Figure:
    """τ_int of the magnetization against L, per sampler: how fast M changes sign.

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
    ax.set_title(r"Tunnelling between the vacua: $\tau_\mathrm{int}$ of $\langle M\rangle$")
    ax.set_xlabel("L")
    ax.set_ylabel(r"$\tau_\mathrm{int}(M)$ (updates)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.axhline(0.5, color="0.4", ls="--", lw=1.0, label="uncorrelated (τ = ½)")
    if table.empty:
        _note(ax, "no samplers")
        return fig
    names = _samplers(table)
    for sampler, dx in zip(names, _offsets(len(names), width=0.4), strict=True):
        style = _style(sampler)
        rows = table[table["sampler"] == sampler].sort_values(["s", "lam", "L"])
        bounded = rows["bound"] == "lower"
        numbers = rows[~bounded & (rows["tau_m"] > 0)]
        for line in _lines_in_L(numbers):
            if len(line) > 1:
                ax.plot(line["L"] + dx, line["tau_m"], color=style["color"], lw=1)
        trusted = numbers["reliable"].astype(bool)
        series = ((numbers[trusted], "full", sampler),
                  (numbers[~trusted], "none", f"{sampler} (unreliable)"))  # fmt: skip
        for subset, fill, label in series:
            if subset.empty:
                continue
            y, dy = subset["tau_m"], subset["tau_m_error"].fillna(0.0)
            ax.errorbar(subset["L"] + dx, y, yerr=[np.minimum(dy, 0.9 * y), dy],
                        linestyle="none", capsize=2, fillstyle=fill, label=label,
                        **style)  # fmt: skip
        if bounded.any():
            ax.plot(rows.loc[bounded, "L"] + dx, rows.loc[bounded, "tau_m"], linestyle="none",
                    marker=10, markersize=12, color=style["color"],
                    label=f"{sampler}: no crossing, lower bound")  # fmt: skip
    ax.set_xticks(sorted(table["L"].unique()))
    ax.legend(fontsize="x-small", ncol=2)
    return fig


def magnetization_histograms(histograms: pd.DataFrame) -> Figure:
    """The distribution of M/V, one panel per point, one step line per sampler.

    Args:
        histograms: results/tables/magnetization_histograms.csv (columns L, s, lam,
            sampler, bin_low, bin_high, density).
    Returns:
        A grid of panels. Z2 makes every histogram symmetric about 0; a sampler whose
        chains all stuck in one vacuum shows one peak where the others show two. Chains
        stuck in different vacua still draw two peaks between them: their weights are
        then off by chance, and tunnelling.csv, not this figure, tells them apart.
    """
    points = _points(histograms)
    count = max(len(points), 1)
    cols = min(count, 3)
    fig = Figure(figsize=(4.2 * cols, 3.5 * math.ceil(count / cols)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(math.ceil(count / cols), cols)).ravel()
    fig.suptitle("Distribution of the magnetization $M/V$")
    if not points:
        _note(axes[0], "no histograms")
    for ax, (L, s, lam) in zip(axes, points, strict=False):
        ax.set_title(point_label(L, s, lam), fontsize="small")
        ax.set_xlabel("$M/V$")
        ax.set_ylabel("density")
        ax.grid(alpha=0.3)
        here = histograms[(histograms["L"] == L) & np.isclose(histograms["s"], s)
                          & np.isclose(histograms["lam"], lam)]  # fmt: skip
        for sampler in _samplers(here):
            rows = here[here["sampler"] == sampler].sort_values("bin_low")
            edges = np.append(rows["bin_low"].to_numpy(), rows["bin_high"].iloc[-1])
            ax.stairs(rows["density"].to_numpy(), edges, label=sampler, lw=1.3,
                      color=_style(sampler)["color"])  # fmt: skip
        ax.axvline(0.0, color="0.4", lw=0.8)
        ax.legend(fontsize="x-small")
    for ax in axes[max(len(points), 1) :]:
        ax.set_visible(False)
    return fig


def tau_int(observables: pd.DataFrame) -> Figure:
    """Integrated autocorrelation time of every observable, per point and sampler.

    Args:
        observables: the observables table (columns L, s, lam, sampler, observable,
            value, error, tau_int, tau_int_error, n_samples).
    Returns:
        One log-scale panel per observable; the dashed line τ_int = ½ marks uncorrelated
        data (Wolff, hep-lat/0306017).
    """
    fig, panels = _observable_panels(observables, "Integrated autocorrelation time")
    for name, ax in panels.items():
        _point_series(ax, observables, name, "tau_int", "tau_int_error", clip_log=True)
        ax.axhline(0.5, color="0.4", ls="--", lw=1.0, label="uncorrelated (τ = ½)")
        ax.set_yscale("log")
        ax.set_ylabel(r"$\tau_\mathrm{int}$ (Markov-chain steps)")
    _first_legend(panels)
    return fig


def observables_comparison(
    observables: pd.DataFrame, anchors: Sequence[dict[str, Any]] = ()
) -> Figure:
    """Estimates ± Γ-method errors of every observable, samplers side by side.

    Args:
        observables: the observables table, as for :func:`tau_int`.
        anchors: published values as returned by :func:`load_anchors`; each whose point
            is in the table is drawn as a band and star on its observable's panel.
    Returns:
        One panel per observable.
    """
    fig, panels = _observable_panels(observables, "Observables")
    points = _points(observables)
    for name, ax in panels.items():
        _point_series(ax, observables, name, "value", "error", clip_log=False)
        ax.set_ylabel(OBSERVABLE_LABELS.get(name, name))
        for anchor in anchors:
            if anchor["observable"] == name:
                _draw_anchor(ax, anchor, points)
    _first_legend(panels)
    return fig


def configurations(samples: dict[str, np.ndarray], n: int = 4) -> Figure:
    """Sampled field configurations, one row per ensemble.

    Args:
        samples: label (e.g. ``"hmc L8_s-4_lam8"``) to configurations of shape (k, L, L).
        n: columns, i.e. configurations shown per row (the first ``n``).
    Returns:
        A grid of images with a symmetric diverging colour scale shared within each row.
    """
    rows = max(len(samples), 1)
    fig = Figure(figsize=(2.2 * n + 1.5, 2.2 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, n, squeeze=False)
    fig.suptitle(r"Sampled configurations $\phi(x, y)$")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if not samples:
        _note(axes[0, 0], "no ensembles")
        return fig
    for row, (label, phi) in enumerate(samples.items()):
        phi = np.asarray(phi)[:n]
        vmax = float(np.nanmax(np.abs(phi))) if phi.size else 1.0
        vmax = vmax if math.isfinite(vmax) and vmax > 0 else 1.0
        image = None
        for col, ax in enumerate(axes[row]):
            if col >= len(phi):
                ax.set_axis_off()
                continue
            image = ax.imshow(phi[col], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        axes[row, 0].set_title(label, loc="left", fontsize="medium")
        if image is not None:
            fig.colorbar(image, ax=list(axes[row]), shrink=0.9, label=r"$\phi$")
    return fig


# --- helpers -------------------------------------------------------------------------


def _note(ax: Axes, text: str) -> None:
    """Centred grey text on ``ax``, for a panel with nothing to show."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def _points(table: pd.DataFrame) -> list[tuple[int, float, float]]:
    """Distinct (L, s, lam) of a table, sorted."""
    if table.empty:
        return []
    unique = table[_POINT_COLUMNS].drop_duplicates().sort_values(_POINT_COLUMNS)
    return [(int(L), float(s), float(lam)) for L, s, lam in unique.itertuples(index=False)]


def _samplers(table: pd.DataFrame) -> list[str]:
    """Samplers of a table, known ones first in :data:`SAMPLER_ORDER`."""
    present = list(dict.fromkeys(table["sampler"]))
    known = [name for name in SAMPLER_ORDER if name in present]
    return known + sorted(name for name in present if name not in SAMPLER_ORDER)


def _style(sampler: str) -> dict[str, str]:
    """Colour and marker of a sampler, stable across figures."""
    order = list(SAMPLER_ORDER)
    # A checksum, not hash(): str hashes change between interpreter runs.
    index = order.index(sampler) if sampler in order else len(order) + sum(map(ord, sampler))
    return {"color": f"C{index % 10}", "marker": _MARKERS[index % len(_MARKERS)]}


def _lines_in_L(rows: pd.DataFrame) -> list[pd.DataFrame]:
    """A sampler's rows as lines against L: one if each L occurs once, else one per (s, λ)."""
    if rows["L"].is_unique:
        return [rows.sort_values("L")]
    return [line.sort_values("L") for _, line in rows.groupby(["s", "lam"], sort=True)]


def _point_index(
    points: list[tuple[int, float, float]], L: float, s: float, lam: float
) -> int | None:
    """Position of (L, s, lam) in ``points``, matching floats with tolerance."""
    for i, (pL, ps, plam) in enumerate(points):
        if int(L) == pL and math.isclose(s, ps, abs_tol=1e-9) and math.isclose(lam, plam):
            return i
    return None


def _offsets(count: int, width: float = 0.6) -> np.ndarray:
    """x offsets, shape (count,), spreading ``count`` series across ``width`` of a slot."""
    if count <= 1:
        return np.zeros(1)
    return np.linspace(-width / 2, width / 2, count)


def _set_point_ticks(ax: Axes, points: list[tuple[int, float, float]]) -> None:
    """Label the x slots with the points, tilted when there are many."""
    ax.set_xticks(range(len(points)))
    ax.set_xticklabels([point_label(*p) for p in points], rotation=25 if len(points) > 3 else 0)
    ax.set_xlim(-0.6, len(points) - 0.4)


def _aligned(
    table: pd.DataFrame, points: list[tuple[int, float, float]], column: str
) -> np.ndarray:
    """``column`` of a single-sampler table laid out on the points, shape (len(points),)."""
    out = np.full(len(points), np.nan)
    for row in table.itertuples(index=False):
        i = _point_index(points, row.L, row.s, row.lam)
        if i is not None:
            out[i] = float(getattr(row, column))
    return out


def _grouped_bars(
    ax: Axes, table: pd.DataFrame, points: list[tuple[int, float, float]], column: str
) -> None:
    """One bar group per point, one bar per sampler, NaN bars left out."""
    names = _samplers(table)
    width = 0.8 / max(len(names), 1)
    offsets = _offsets(len(names), 0.8 - width)
    x = np.arange(len(points), dtype=float)
    for offset, name in zip(offsets, names, strict=True):
        heights = _aligned(table[table["sampler"] == name], points, column)
        keep = np.isfinite(heights)
        bars = ax.bar(
            x[keep] + offset, heights[keep], width, label=name, color=_style(name)["color"]
        )
        ax.bar_label(bars, fmt="%.2f", fontsize="x-small", padding=1)
    _set_point_ticks(ax, points)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="sampler", fontsize="small")


def _observable_panels(observables: pd.DataFrame, title: str) -> tuple[Figure, dict[str, Axes]]:
    """A figure with one panel per observable present, contract observables first."""
    present = list(dict.fromkeys(observables["observable"]))
    names = [name for name in OBSERVABLE_LABELS if name in present]
    names += [name for name in present if name not in OBSERVABLE_LABELS]
    count = max(len(names), 1)
    ncols = min(3, count)
    nrows = math.ceil(count / ncols)
    width = max(4.0, 1.3 * len(_points(observables)) + 2.0)
    fig = Figure(figsize=(width * ncols, 3.4 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    fig.suptitle(title)
    for ax in axes.flat[len(names) :]:
        ax.set_axis_off()
    if not names:
        _note(axes[0, 0], "no observables")
    return fig, dict(zip(names, axes.flat, strict=False))


def _point_series(
    ax: Axes, observables: pd.DataFrame, name: str, column: str, error: str, clip_log: bool
) -> None:
    """Error-bar markers of ``column`` ± ``error`` per point, one series per sampler.

    With ``clip_log`` the lower bar stops short of zero so a log axis can show it. Estimates
    whose ``reliable`` flag is false are drawn hollow. A panel without any finite value
    says so.
    """
    table = observables[observables["observable"] == name]
    points = _points(observables)
    names = _samplers(table)
    x = np.arange(len(points), dtype=float)
    drawn = False
    for offset, sampler in zip(_offsets(len(names), 0.4), names, strict=True):
        rows = table[table["sampler"] == sampler]
        y, dy = _aligned(rows, points, column), _aligned(rows, points, error)
        keep = np.isfinite(y) & (y > 0) if clip_log else np.isfinite(y)
        if not keep.any():
            continue
        drawn = True
        dy = np.where(np.isfinite(dy), dy, 0.0)
        lower = np.minimum(dy, 0.9 * y) if clip_log else dy
        trusted = _aligned(rows, points, "reliable") != 0.0 if "reliable" in rows else keep
        series = ((keep & trusted, "full", sampler),
                  (keep & ~trusted, "none", f"{sampler} (unreliable)"))  # fmt: skip
        for subset, fill, label in series:
            if subset.any():
                ax.errorbar(x[subset] + offset, y[subset], yerr=[lower[subset], dy[subset]],
                            ls="none", capsize=3, fillstyle=fill, label=label,
                            **_style(sampler))  # fmt: skip
    if not drawn:
        _note(ax, f"no finite {column}")
    _set_point_ticks(ax, points)
    ax.set_title(name)
    ax.grid(alpha=0.3)


def _draw_anchor(ax: Axes, anchor: dict[str, Any], points: list[tuple[int, float, float]]) -> None:
    """A published value ± error as a shaded band and star over its point's slot."""
    i = _point_index(points, anchor["L"], anchor["s"], anchor["lam"])
    if i is None:
        return
    value, err = float(anchor["value"]), float(anchor["error"])
    label = anchor.get("label", "published")
    ax.fill_between(
        [i - 0.4, i + 0.4],
        value - err,
        value + err,
        color="gold",
        alpha=0.4,
        lw=0,
        label=f"{label}: {value:g} ± {err:g}",
    )
    # Beside the series (offsets within ±0.2) so the star never hides a measurement.
    ax.plot([i + 0.3], [value], marker="*", ms=12, color="goldenrod", mec="k", mew=0.5, ls="none")


def _first_legend(panels: dict[str, Axes]) -> None:
    """One legend, on the first panel, merging entries of every panel (anchors included)."""
    if not panels:
        return
    handles: dict[str, Any] = {}
    for ax in panels.values():
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        next(iter(panels.values())).legend(handles.values(), handles.keys(), fontsize="small")
