r"""Importance weights of a flow's proposals: the effective sample size.

A flow proposes φ ~ q with weight w = e^{−S(φ)}/q(φ) relative to p ∝ e^{−S}. Apart from
the Γ-method statistics of :mod:`fieldflow.analysis`, and without pyerrors, so that
training and sampling jobs need not load it.
"""

from __future__ import annotations

import numpy as np


def ess(log_weights: np.ndarray) -> float:
    r"""Effective sample size per sample, (Σ w)² / (N Σ w²), from log weights, in float64."""
    lw = np.asarray(log_weights, dtype=np.float64).ravel()
    lw = lw - lw.max()
    w = np.exp(lw)
    return float(w.sum() ** 2 / (lw.size * (w * w).sum()))
