"""The observables stage: Γ-method estimates of one ensemble as contract rows, with the
reweighting estimates, correlator, tunnelling and magnetization histogram beside them.

Any theory's ensemble (the store's ``theory`` attr, :func:`fieldflow.reader.theory_of`):
the rows start with the point's columns (φ⁴: L, s, lam; U(1): L, beta,
:func:`point_columns`), the observables are the theory's, and tunnelling and the histogram
are of its order parameter (φ⁴: M/V; U(1): Q).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from fieldflow import analysis, primaries, quality, reader, tunnelling
from fieldflow.theory import Theory

log = logging.getLogger(__name__)

OBSERVABLE_COLUMNS = [
    "L",
    "s",
    "lam",
    "sampler",
    "observable",
    "value",
    "error",
    "tau_int",
    "tau_int_error",
    "n_samples",
    "reliable",
    "reason",
]
TUNNELLING_COLUMNS = [
    "L",
    "s",
    "lam",
    "sampler",
    "n_chains",
    "n_draws",
    "threshold",
    "crossings",
    "per_1000_updates",
    "per_second",
    "tunnel_updates",
    "bound",
    "thin",
]
HISTOGRAM_COLUMNS = ["L", "s", "lam", "sampler", "bin_low", "bin_high", "density"]
#: The columns of :func:`fieldflow.analysis.correlator_rows` after the point and sampler.
CORRELATOR_COLUMNS = ["t", "correlator", "correlator_error", "m_eff", "m_eff_error"]
#: φ⁴'s point columns, which the ``*_COLUMNS`` above start with.
_PHI4_POINT = ["L", "s", "lam"]


def point_columns(theory: Theory) -> list[str]:
    """A point's columns in the theory's tables: ``L`` and its parameters."""
    return ["L", *theory.parameters]


def columns_for(columns: list[str], theory: Theory) -> list[str]:
    """``columns`` (φ⁴'s, e.g. :data:`OBSERVABLE_COLUMNS`) with the theory's point columns
    in place of L, s, lam: ``L, beta, sampler, …`` for U(1)."""
    if columns[:3] != _PHI4_POINT:
        raise ValueError(f"columns {columns} do not start with {_PHI4_POINT}")
    return [*point_columns(theory), *columns[3:]]


def observables_stage(
    ensemble_path: str | Path,
    table_path: str | Path,
    S: float = 2.0,
    reweighted_path: str | Path | None = None,
    correlator_path: str | Path | None = None,
    tunnelling_path: str | Path | None = None,
    histogram_path: str | Path | None = None,
) -> None:
    """Γ-method estimates of every observable of one ensemble, as contract rows.

    Each row carries the verdict of :mod:`fieldflow.quality` (``reliable``, ``reason``),
    judged from this ensemble alone. Optionally also the self-normalised reweighting
    estimates from a flow ensemble's raw proposals (``reweighted_path``; header only for a
    Markov chain), C(t), m_eff(t) of the chain (``correlator_path``), its crossings between
    the vacua (``tunnelling_path``, one row of :data:`TUNNELLING_COLUMNS`) and the
    distribution of M/V (``histogram_path``, :data:`HISTOGRAM_COLUMNS`), both from
    :mod:`fieldflow.tunnelling`. The field is read one chunk at a time
    (:func:`fieldflow.primaries.stored_primaries`): memory grows with the per-configuration
    primaries only, not with the fields.

    For U(1) (any theory) the same files, in its columns (:func:`columns_for`): its
    observables, the crossings and distribution of its order parameter Q, and a correlator
    file with the header only (it measures no C(t)).
    """
    dataset = reader.read_ensemble(ensemble_path)
    attrs = dataset.attrs
    theory = reader.theory_of(dataset)
    order = theory.order_parameter
    L = int(attrs["L"])
    stored = primaries.stored_primaries(dataset)
    keys = {name: attrs[name] for name in point_columns(theory)}
    keys["sampler"] = attrs["sampler"]
    point = theory.point_of(attrs)
    # τ_int counts updates (DESIGN.md): a chain thinned by `thin` stores every thin-th one.
    thin = int(attrs.get("thin", 1))
    n = dataset.sizes["chain"] * dataset.sizes["draw"]
    # A flow's effective number of raw proposals limits both of its estimators.
    effective = attrs["ess"] * attrs["n_proposals"] if attrs.get("kind") == "flow" else None
    accepted = int(reader.load_array(dataset, "accepted").sum()) if "accepted" in dataset else None
    problems = quality.chain_problems(
        n,
        accepted=accepted,
        effective=effective,
        magnetization=stored[order.primary],  # only its sector is used
        order=order,
    )
    for problem in problems:
        log.warning("%s at %s: unreliable: %s", attrs["sampler"], point.key, problem)
    estimates = analysis.observables(stored, L, S, theory=theory)
    estimates = analysis.with_slow_mode(stored, L, S, theory, estimates)
    outputs = {table_path: _rows(keys, estimates, n, problems, thin)}
    if reweighted_path is not None:
        outputs[reweighted_path] = pd.DataFrame(columns=columns_for(OBSERVABLE_COLUMNS, theory))
        proposals = primaries.stored_proposals(dataset)
        if proposals is not None:
            log_w, raw = proposals
            estimates = analysis.observables(raw, L, S, log_weights=log_w, theory=theory)
            effective_only = quality.chain_problems(log_w.size, effective=effective)
            outputs[reweighted_path] = _rows(keys, estimates, log_w.size, effective_only)
    if correlator_path is not None:
        columns = [*keys, *CORRELATOR_COLUMNS]
        if "correlator" in stored:
            correlator = pd.DataFrame(analysis.correlator_rows(stored["correlator"], S))
            outputs[correlator_path] = correlator.assign(**keys)[[*keys, *correlator.columns]]
        else:
            outputs[correlator_path] = pd.DataFrame(columns=columns)
    if tunnelling_path is not None:
        found = tunnelling.tunnelling(
            stored[order.primary],
            attrs.get("seconds_per_update", np.nan),
            thin=thin,
            count=order.count,
        )
        outputs[tunnelling_path] = pd.DataFrame(
            [{**keys, **found.row()}], columns=columns_for(TUNNELLING_COLUMNS, theory)
        )
        log.info(
            "%s: %d crossings of |%s| > %.3g in %d updates",
            ensemble_path,
            found.crossings,
            order.symbol,
            found.threshold,
            found.updates,
        )
    if histogram_path is not None:
        edges, density = tunnelling.histogram(stored[order.primary], integer=order.integer)
        outputs[histogram_path] = pd.DataFrame(
            {**keys, "bin_low": edges[:-1], "bin_high": edges[1:], "density": density},
            columns=columns_for(HISTOGRAM_COLUMNS, theory),
        )
    for path, frame in outputs.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)


def _rows(
    keys: dict[str, object],
    estimates: dict[str, analysis.Estimate],
    n: int,
    problems: list[str],
    thin: int = 1,
) -> pd.DataFrame:
    """Contract rows of ``estimates`` from ``n`` stored draws of a chain thinned by ``thin``.

    τ_int per update (:func:`fieldflow.analysis.in_updates`), so that seconds_per_update ·
    2τ_int is the cost of an independent sample; each estimate judged on its ``n · thin``
    updates and the chain's ``problems`` (:func:`fieldflow.quality.judge`).
    """
    estimates = {name: analysis.in_updates(e, thin) for name, e in estimates.items()}
    verdicts = {name: quality.judge(e, n * thin, problems) for name, e in estimates.items()}
    return pd.DataFrame(
        [
            {
                **keys,
                "observable": name,
                "value": e.value,
                "error": e.error,
                "tau_int": e.tau_int,
                "tau_int_error": e.tau_int_error,
                "n_samples": n,
                "reliable": verdicts[name].reliable,
                "reason": verdicts[name].reason,
            }
            for name, e in estimates.items()
        ],
        columns=[*keys, *OBSERVABLE_COLUMNS[4:]],
    )
