"""Every figure of the study by name, with the inputs it is drawn from.

The registry drives the workflow: rule figures makes one PNG and PDF per name of
:func:`figure_names`, its script calls each :attr:`FigureSpec.draw` on the inputs the
entry names, and the report captions each figure with ``workflow/report/{name}.rst``. A
new figure is a drawing function, an entry here and its caption.

A figure that does not apply to a study's theory (the correlators and ξ₂ of φ⁴ in a U(1)
study) names the theories it does apply to: :func:`draw` gives it an honest panel that
says so, and :func:`figure_names` leaves it out where asked to.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from fieldflow.plots import style
from fieldflow.plots.acceptance import acceptance_ess, families_vs_L
from fieldflow.plots.agreement import pulls
from fieldflow.plots.broken_phase import magnetization_histograms, tunnelling
from fieldflow.plots.costs import cost_per_sample, scaling_tau
from fieldflow.plots.fields import configurations
from fieldflow.plots.free_energy import free_energy
from fieldflow.plots.observables import (
    effective_masses,
    exact_comparison,
    observables_comparison,
    tau_int,
)
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
        theories: the names of the theories it applies to; None for every theory.
    """

    draw: Callable[..., Figure]
    inputs: tuple[str, ...]
    optional: bool = False
    theories: tuple[str, ...] | None = None

    def applies(self, theory: str) -> bool:
        """Whether the figure applies to a study of ``theory`` (a theory name)."""
        return self.theories is None or theory in self.theories


#: The figures in the order of the report.
FIGURES: dict[str, FigureSpec] = {
    "training": FigureSpec(training_curves, ("histories",)),
    "acceptance_ess": FigureSpec(acceptance_ess, ("samplers",)),
    "tau_int": FigureSpec(tau_int, ("observables",)),
    "observables": FigureSpec(observables_comparison, ("observables", "anchors")),
    "exact": FigureSpec(exact_comparison, ("observables",)),
    "configurations": FigureSpec(configurations, ("ensembles",)),
    "families_vs_L": FigureSpec(families_vs_L, ("samplers",)),
    "ess_vs_seconds": FigureSpec(ess_at_largest_lattice, ("histories",)),
    # Against ξ₂, which only φ⁴ measures; U(1)'s τ_int(Q) against β is in "tunnelling".
    "scaling": FigureSpec(scaling_tau, ("scaling", "exponents"), theories=("phi4",)),
    "cost": FigureSpec(cost_per_sample, ("scaling", "crossover")),
    "agreement": FigureSpec(pulls, ("agreement",)),
    "correlators": FigureSpec(effective_masses, ("correlators", "observables"), theories=("phi4",)),
    "tunnelling": FigureSpec(tunnelling, ("tunnelling",)),
    "magnetization_histograms": FigureSpec(magnetization_histograms, ("magnetization_histograms",)),
    "free_energy": FigureSpec(free_energy, ("free_energy",), theories=("phi4",)),
    # Needs transfer_baseline and a point with init_from.
    "transfer": FigureSpec(transfer_curves, ("transfer",), optional=True),
}


def figure_names(present: Collection[str] = (), theory: str | None = None) -> list[str]:
    """Names of the figures a study draws, in the order of :data:`FIGURES`.

    Args:
        present: the inputs an optional figure may need that this study has, e.g.
            ``["transfer"]``.
        theory: the study's theory; if given, the figures that do not apply to it are
            left out (else :func:`draw` draws them as "not applicable").
    Returns:
        Every figure, less the optional ones with an input not in ``present``.
    """
    return [
        name
        for name, spec in FIGURES.items()
        if (not spec.optional or set(spec.inputs) <= set(present))
        and (theory is None or spec.applies(theory))
    ]


def draw(name: str, inputs: Mapping[str, Any], theory: str) -> Figure:
    """The figure ``name`` of a study of ``theory`` from its inputs by name: drawn by its
    entry where it applies, else one panel that says it does not."""
    spec = FIGURES[name]
    if spec.applies(theory):
        return spec.draw(*(inputs[key] for key in spec.inputs))
    fig = Figure(figsize=(6, 2.5), layout="constrained")
    ax = fig.subplots()
    ax.set_axis_off()
    style.note(ax, f"{name}: not applicable to the theory {theory}")
    return fig
