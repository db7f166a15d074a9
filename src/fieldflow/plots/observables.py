"""Observables per point: estimates with Γ-method errors, their τ_int, effective masses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import yaml
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fieldflow.plots.style import (
    OBSERVABLE_LABELS,
    OBSERVABLE_SYMBOLS,
    aligned,
    at_point,
    note,
    offsets,
    point_grid,
    point_index,
    points_of,
    sampler_style,
    samplers_of,
    set_point_ticks,
)
from fieldflow.study.roles import exact_values, point_columns, theory_of

_ANCHOR_LABEL = "Albergo et al. 2021 (HMC)"


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
    points = points_of(observables)
    for name, ax in panels.items():
        _point_series(ax, observables, name, "value", "error", clip_log=False)
        ax.set_ylabel(OBSERVABLE_SYMBOLS.get(name, name))
        for anchor in anchors:
            if anchor["observable"] == name:
                _draw_anchor(ax, anchor, points, point_columns(observables))
    _first_legend(panels)
    return fig


def exact_comparison(observables: pd.DataFrame) -> Figure:
    """Estimates ± Γ-method errors against the theory's exact values, per observable.

    Args:
        observables: the observables table, as for :func:`tau_int`.
    Returns:
        One panel per observable with an exact value at some point of the study
        (:attr:`fieldflow.theory.Theory.exact`: φ⁴'s Gaussian values at λ = 0, s > 0;
        U(1)'s character expansion at every β), the exact value a black bar across its
        point's slot; one panel that says so where the study has none.
    """
    theory = theory_of(observables)
    exact = {point: exact_values(theory, point) for point in points_of(observables)}
    exact = {point: values for point, values in exact.items() if values}
    known = {name for values in exact.values() for name in values}
    rows = [at_point(observables, point) for point in exact]
    table = pd.concat(rows) if rows else observables.iloc[:0]
    table = table[table["observable"].isin(known)]
    points = points_of(table)  # the slots of _point_series
    empty = f"no exact values at the points of this {theory.name} study"
    fig, panels = _observable_panels(table, "Observables against the exact values", empty)
    for name, ax in panels.items():
        _point_series(ax, table, name, "value", "error", clip_log=False)
        ax.set_ylabel(OBSERVABLE_SYMBOLS.get(name, name))
        for i, point in enumerate(points):
            if name in exact[point]:
                ax.hlines(exact[point][name], i - 0.4, i + 0.4, color="k", lw=2, label="exact")
    _first_legend(panels)
    return fig


def effective_masses(correlators: pd.DataFrame, observables: pd.DataFrame) -> Figure:
    """m_eff(t) of the zero-momentum time-slice correlator, one panel per point.

    The band is each sampler's pole mass (the average of m_eff over the plateau range,
    from the observables table), ± its error.
    """
    fig, panels = point_grid(
        correlators, "Effective mass of the zero-momentum correlator", "no correlators"
    )
    for point, ax in panels:
        ax.set_xlabel("t")
        ax.set_ylabel(r"$m_\mathrm{eff}(t)$")
        ax.grid(alpha=0.3)
        here = at_point(correlators, point)
        poles = at_point(observables, point)
        poles = poles[poles["observable"] == "pole_mass"]
        names = samplers_of(here)
        for sampler, dx in zip(names, offsets(len(names), width=0.3), strict=True):
            rows = here[(here["sampler"] == sampler) & here["m_eff"].notna()]
            ax.errorbar(
                rows["t"] + dx,
                rows["m_eff"],
                yerr=rows["m_eff_error"],
                linestyle="none",
                capsize=2,
                label=sampler,
                **sampler_style(sampler),
            )
            pole = poles[poles["sampler"] == sampler]
            if not pole.empty and np.isfinite(pole.iloc[0]["value"]):
                v, e = pole.iloc[0]["value"], pole.iloc[0]["error"]
                ax.axhspan(v - e, v + e, color=sampler_style(sampler)["color"], alpha=0.15)
        if names:
            ax.legend(fontsize="x-small")
    return fig


def _observable_panels(
    observables: pd.DataFrame, title: str, empty: str = "no observables"
) -> tuple[Figure, dict[str, Axes]]:
    """A figure with one panel per observable present, contract observables first; one
    that says ``empty`` where there are none."""
    present = list(dict.fromkeys(observables["observable"]))
    names = [name for name in OBSERVABLE_LABELS if name in present]
    names += [name for name in present if name not in OBSERVABLE_LABELS]
    count = max(len(names), 1)
    ncols = min(3, count)
    nrows = math.ceil(count / ncols)
    width = max(4.0, 1.3 * len(points_of(observables)) + 2.0)
    fig = Figure(figsize=(width * ncols, 3.4 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    fig.suptitle(title)
    for ax in axes.flat[len(names) :]:
        ax.set_axis_off()
    if not names:
        note(axes[0, 0], empty)
    for name, ax in zip(names, axes.flat, strict=False):
        ax.set_title(OBSERVABLE_LABELS.get(name, name))
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
    points = points_of(observables)
    names = samplers_of(table)
    x = np.arange(len(points), dtype=float)
    drawn = False
    for offset, sampler in zip(offsets(len(names), 0.4), names, strict=True):
        rows = table[table["sampler"] == sampler]
        y, dy = aligned(rows, points, column), aligned(rows, points, error)
        keep = np.isfinite(y) & (y > 0) if clip_log else np.isfinite(y)
        if not keep.any():
            continue
        drawn = True
        dy = np.where(np.isfinite(dy), dy, 0.0)
        lower = np.minimum(dy, 0.9 * y) if clip_log else dy
        trusted = aligned(rows, points, "reliable") != 0.0 if "reliable" in rows else keep
        series = (
            (keep & trusted, "full", sampler),
            (keep & ~trusted, "none", f"{sampler} (unreliable)"),
        )
        for subset, fill, label in series:
            if subset.any():
                ax.errorbar(
                    x[subset] + offset,
                    y[subset],
                    yerr=[lower[subset], dy[subset]],
                    ls="none",
                    capsize=3,
                    fillstyle=fill,
                    label=label,
                    **sampler_style(sampler),
                )
    if not drawn:
        note(ax, f"no finite {column}")
    set_point_ticks(ax, points, point_columns(observables))
    ax.grid(alpha=0.3)


def _draw_anchor(ax: Axes, anchor: dict[str, Any], points: list[tuple], names: list[str]) -> None:
    """A published value ± error as a shaded band and star over its point's slot (none
    where the anchor is not a point of the table's theory, columns ``names``)."""
    if not all(name in anchor for name in names):
        return
    i = point_index(points, [anchor[name] for name in names])
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
