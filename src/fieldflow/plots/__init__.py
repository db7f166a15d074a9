"""Figures of the study, built from the contract tables of DESIGN.md §3.

Every builder takes DataFrames or arrays and returns a :class:`matplotlib.figure.Figure`
made without pyplot, so no global state or backend is touched; :func:`save_figure` writes
it as PNG and PDF. Builders cope with a single point, a single sampler and absent samplers
(e.g. a study with only Markov-chain baselines). :data:`FIGURES` names every figure of
the workflow with the inputs it is drawn from.

Modules by topic: :mod:`~fieldflow.plots.training` (flow training and transfer),
:mod:`~fieldflow.plots.acceptance` (acceptance and ESS), :mod:`~fieldflow.plots.costs`
(critical slowing down and cost), :mod:`~fieldflow.plots.observables` (estimates, τ_int,
effective masses), :mod:`~fieldflow.plots.agreement` (pulls),
:mod:`~fieldflow.plots.broken_phase` (tunnelling, M/V histograms),
:mod:`~fieldflow.plots.fields` (configurations), :mod:`~fieldflow.plots.free_energy`
(log Z), and the shared look in
:mod:`~fieldflow.plots.style`; what differs between theories (labels, axes, the image of a
configuration) in :mod:`~fieldflow.plots.looks`, and which figures apply to which theory in
:mod:`~fieldflow.plots.registry`. A study's theory is read off its tables' point columns
(:func:`fieldflow.study.theory_of`).
"""

from fieldflow.plots.acceptance import acceptance_ess, families_vs_L
from fieldflow.plots.agreement import pulls
from fieldflow.plots.broken_phase import magnetization_histograms, tunnelling
from fieldflow.plots.costs import cost_per_sample, scaling_tau
from fieldflow.plots.fields import configurations
from fieldflow.plots.free_energy import free_energy
from fieldflow.plots.observables import (
    effective_masses,
    exact_comparison,
    load_anchors,
    observables_comparison,
    tau_int,
)
from fieldflow.plots.registry import FIGURES, FigureSpec, draw, figure_names
from fieldflow.plots.style import (
    OBSERVABLE_LABELS,
    OBSERVABLE_SYMBOLS,
    SAMPLER_ORDER,
    point_label,
    save_figure,
)
from fieldflow.plots.training import (
    ess_at_largest_lattice,
    ess_vs_seconds,
    training_curves,
    transfer_curves,
)

__all__ = [
    "FIGURES",
    "OBSERVABLE_LABELS",
    "OBSERVABLE_SYMBOLS",
    "SAMPLER_ORDER",
    "FigureSpec",
    "acceptance_ess",
    "configurations",
    "cost_per_sample",
    "draw",
    "effective_masses",
    "ess_at_largest_lattice",
    "ess_vs_seconds",
    "exact_comparison",
    "families_vs_L",
    "free_energy",
    "figure_names",
    "load_anchors",
    "magnetization_histograms",
    "observables_comparison",
    "point_label",
    "pulls",
    "save_figure",
    "scaling_tau",
    "tau_int",
    "training_curves",
    "transfer_curves",
    "tunnelling",
]
