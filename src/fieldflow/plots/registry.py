"""Every figure of the study by name, with the inputs it is drawn from.

The registry drives the workflow: rule figures makes one PNG and PDF per name of
:func:`figure_names`, its script calls each :attr:`FigureSpec.draw` on the inputs the
entry names, and the report captions each figure with ``workflow/report/{name}.rst``. A
new figure is a drawing function, an entry here and its caption.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from matplotlib.figure import Figure

from fieldflow.plots.acceptance import acceptance_ess, families_vs_L
from fieldflow.plots.agreement import pulls
from fieldflow.plots.broken_phase import magnetization_histograms, tunnelling
from fieldflow.plots.costs import cost_per_sample, scaling_tau
from fieldflow.plots.fields import configurations
from fieldflow.plots.free_energy import free_energy
from fieldflow.plots.observables import effective_masses, observables_comparison, tau_int
from fieldflow.plots.training import ess_at_largest_lattice, training_curves, transfer_curves


@dataclass(frozen=True)
class FigureSpec:
    """One figure: the function that draws it and what it is drawn from.

    Attributes:
        draw: the builder, called with the inputs in the order of ``inputs``.
        inputs: names of the inputs of rule figures: a table of results/tables/ by its
            stem (``observables``, ``scaling``, ...), ``histories`` (training history per
            ``"{flow} {point}"``), ``ensembles`` (the last configurations per
            ``"{sampler} {point}"``), ``transfer`` (the runs of the transfer table), or
            ``anchors`` (:func:`fieldflow.plots.load_anchors`).
        optional: drawn only by a study that has every one of its inputs.
    """

    draw: Callable[..., Figure]
    inputs: tuple[str, ...]
    optional: bool = False


#: The figures in the order of the report.
FIGURES: dict[str, FigureSpec] = {
    "training": FigureSpec(training_curves, ("histories",)),
    "acceptance_ess": FigureSpec(acceptance_ess, ("samplers",)),
    "tau_int": FigureSpec(tau_int, ("observables",)),
    "observables": FigureSpec(observables_comparison, ("observables", "anchors")),
    "configurations": FigureSpec(configurations, ("ensembles",)),
    "families_vs_L": FigureSpec(families_vs_L, ("samplers",)),
    "ess_vs_seconds": FigureSpec(ess_at_largest_lattice, ("histories",)),
    "scaling": FigureSpec(scaling_tau, ("scaling", "exponents")),
    "cost": FigureSpec(cost_per_sample, ("scaling", "crossover")),
    "agreement": FigureSpec(pulls, ("agreement",)),
    "correlators": FigureSpec(effective_masses, ("correlators", "observables")),
    "tunnelling": FigureSpec(tunnelling, ("tunnelling",)),
    "magnetization_histograms": FigureSpec(magnetization_histograms, ("magnetization_histograms",)),
    "free_energy": FigureSpec(free_energy, ("free_energy",)),
    # Needs transfer_baseline and a point with init_from.
    "transfer": FigureSpec(transfer_curves, ("transfer",), optional=True),
}


def figure_names(present: Collection[str] = ()) -> list[str]:
    """Names of the figures a study draws, in the order of :data:`FIGURES`.

    Args:
        present: the inputs an optional figure may need that this study has, e.g.
            ``["transfer"]``.
    Returns:
        Every figure, less the optional ones with an input not in ``present``.
    """
    return [
        name
        for name, spec in FIGURES.items()
        if not spec.optional or set(spec.inputs) <= set(present)
    ]
