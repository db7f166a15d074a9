"""Flow training: loss and ESS against steps and seconds, and what transfer saves."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fieldflow.plots.style import note, point_label, point_style, sampler_style, split_label
from fieldflow.theory import point_from_key


def training_curves(histories: dict[str, pd.DataFrame]) -> Figure:
    """Loss and ESS of flow training against optimiser step and wall time.

    Each line has its flow's colour and its point's marker and line style.

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
    labels = {label: split_label(label) for label in histories}
    points = list(dict.fromkeys(point for _, point in labels.values()))
    for label, history in histories.items():
        flow, point = labels[label]
        style = {**point_style(points.index(point)), "color": sampler_style(flow)["color"]}
        for row, column in enumerate(("loss", "ess")):
            for col, x in enumerate(("step", "seconds")):
                axes[row, col].plot(
                    history[x], history[column], lw=1.2, ms=4, label=f"{flow}, {point}", **style
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
        note(ax, "no flows in this study")
        return fig
    for label, history in histories.items():
        flow = label.split()[0]
        ax.plot(history["seconds"], history["ess"], label=flow, **sampler_style(flow))
    ax.legend()
    return fig


def ess_at_largest_lattice(histories: dict[str, pd.DataFrame]) -> Figure:
    """:func:`ess_vs_seconds` of every family at the study's largest lattice.

    Args:
        histories: label ``"{flow} {point key}"`` to training history, as for
            :func:`training_curves`. Of several points with the largest L, the first is
            drawn.
    """
    keys = [label.split()[1] for label in histories]
    largest = max(keys, default=None, key=lambda key: point_from_key(key).L)
    if largest is None:
        return ess_vs_seconds({}, "no flows")
    mine = {label: h for label, h in histories.items() if label.split()[1] == largest}
    return ess_vs_seconds(mine, point_label(point_from_key(largest).columns()))


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
            note(ax, "no point has init_from and a scratch baseline")
        for i, run in enumerate(mine):
            color = f"C{i % 10}"
            t, s = run["transferred"], run["scratch"]
            ax.plot(
                s["seconds"],
                s["ess"],
                color=color,
                linestyle="--",
                label=f"{run['label']}: from scratch",
            )
            ax.plot(t["seconds"], t["ess"], color=color, label=f"{run['label']}: transferred")
            ax.plot(
                t["seconds"] + run["source_seconds"],
                t["ess"],
                color=color,
                linestyle=":",
                label="  + source training",
            )
            ax.axhline(run["target_ess"], color=color, linewidth=0.8, alpha=0.5)
        if mine:
            ax.legend(fontsize="small")
    axes[0].set_ylabel("ESS per sample (1024 fresh samples)")
    return fig
