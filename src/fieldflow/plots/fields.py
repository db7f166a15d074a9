"""Field configurations φ(x, y) as images."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from fieldflow.plots.looks import LOOKS
from fieldflow.plots.style import note, split_label
from fieldflow.theory import PHI4, point_from_key


def configurations(samples: dict[str, np.ndarray], n: int = 4) -> Figure:
    """Sampled field configurations, one row per ensemble.

    Args:
        samples: label (e.g. ``"hmc L8_s-4_lam8"``) to configurations of shape (k, L, L),
            or of its theory's field shape, drawn as the theory's image
            (:class:`~fieldflow.plots.style.TheoryLook`: U(1)'s plaquette angles).
        n: columns, i.e. configurations shown per row (the first ``n``).
    Returns:
        A grid of images with a symmetric diverging colour scale shared within each row.
    """
    rows = max(len(samples), 1)
    fig = Figure(figsize=(2.2 * n + 1.5, 2.2 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, n, squeeze=False)
    looks = {label: LOOKS[_theory_name(label)] for label in samples}
    first = next(iter(looks.values()), LOOKS[PHI4.name])
    fig.suptitle(first.texts["configurations"])
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if not samples:
        note(axes[0, 0], "no ensembles")
        return fig
    for row, (label, field) in enumerate(samples.items()):
        phi = looks[label].image(np.asarray(field)[:n])
        vmax = float(np.nanmax(np.abs(phi))) if phi.size else 1.0
        vmax = vmax if math.isfinite(vmax) and vmax > 0 else 1.0
        image = None
        for col, ax in enumerate(axes[row]):
            if col >= len(phi):
                ax.set_axis_off()
                continue
            image = ax.imshow(phi[col], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        axes[row, 0].set_title(
            ", ".join(filter(None, split_label(label))), loc="left", fontsize="medium"
        )
        if image is not None:
            fig.colorbar(image, ax=list(axes[row]), shrink=0.9, label=looks[label].image_label)
    return fig


def _theory_name(label: str) -> str:
    """The theory of an ensemble label ``"{sampler} {point key}"``; φ⁴ without a key."""
    try:
        return point_from_key(label.partition(" ")[2]).theory.name
    except ValueError:
        return PHI4.name
