"""What a theory's figures call things: titles, axis labels, and the image of a
configuration, per theory (:data:`LOOKS`), so that the drawing code has no per-theory
branches. These belong with the theory (:class:`fieldflow.theory.Theory`); they live here
until it carries them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from fieldflow.study.roles import theory_of
from fieldflow.u1.lattice import plaquette


@dataclass(frozen=True)
class TheoryLook:
    """What a theory's figures call things, and how a configuration becomes an image.

    Attributes:
        axis: the point column that costs, tunnelling and flow quality are drawn against
            (``L``; ``beta`` for U(1), whose studies vary β at fixed L).
        image: configurations (k, *field_shape) ↦ images (k, L, L): φ itself, U(1)'s
            plaquette angles θ_P(x).
        image_label: the colour bar's label.
        texts: titles and axis labels by name: ``configurations``, ``tunnelling``,
            ``tunnelling_y``, ``histograms``, ``histogram_x``, ``cost``, ``agreement``,
            ``agreement_empty``, ``families``.
    """

    axis: str
    image: Callable[[np.ndarray], np.ndarray]
    image_label: str
    texts: Mapping[str, str]


def _plaquette_angles(links: np.ndarray) -> np.ndarray:
    """θ_P(x), shape (k, L, L), of links (k, 2, L, L) (:func:`fieldflow.u1.lattice.plaquette`)."""
    return plaquette(torch.from_numpy(np.asarray(links, dtype=np.float64))).numpy()


#: Every theory's look by name; these belong with the theory (:mod:`fieldflow.theory`).
LOOKS: Mapping[str, TheoryLook] = {
    "phi4": TheoryLook(
        axis="L",
        image=np.asarray,
        image_label=r"$\phi$",
        texts={
            "configurations": r"Sampled configurations $\phi(x, y)$",
            "tunnelling": r"Tunnelling between the vacua: $\tau_\mathrm{int}$ of "
            r"$\langle M\rangle$",
            "tunnelling_y": r"$\tau_\mathrm{int}(M)$ (updates)",
            "histograms": "Distribution of the magnetization $M/V$",
            "histogram_x": "$M/V$",
            "cost": "Cost of an independent sample of $\\chi_2$",
            "agreement": "Agreement with the Markov-chain baselines (or the exact result at λ = 0)",
            "agreement_empty": "nothing to compare (no Markov chain and no λ = 0 point)",
            "families": "Flow quality against lattice size",
        },
    ),
    "u1": TheoryLook(
        axis="beta",
        image=_plaquette_angles,
        image_label=r"$\theta_P$",
        texts={
            "configurations": r"Sampled configurations: plaquette angles $\theta_P(x, y)$",
            "tunnelling": r"Tunnelling between topological sectors: $\tau_\mathrm{int}$ of $Q$",
            "tunnelling_y": r"$\tau_\mathrm{int}(Q)$ (updates)",
            "histograms": "Distribution of the topological charge $Q$",
            "histogram_x": "$Q$",
            "cost": "Cost of an independent sample of $Q$",
            "agreement": "Agreement with the exact results",
            "agreement_empty": "nothing to compare",
            "families": "Flow quality against the coupling β",
        },
    ),
}


def look_of(table: pd.DataFrame) -> TheoryLook:
    """The :class:`TheoryLook` of the theory of a results table, by its point columns."""
    return LOOKS[theory_of(table).name]
