"""The observables stage: Γ-method estimates of one ensemble as contract rows, with the
reweighting estimates, correlator, tunnelling and magnetization histogram beside them."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from fieldflow import analysis, primaries, quality, reader, tunnelling
from fieldflow.lattice import Point

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
    :mod:`fieldflow.tunnelling`. φ is read one chunk at a time
    (:func:`fieldflow.primaries.stored_primaries`): memory grows with the per-configuration
    primaries only, not with the fields.
    """
    dataset = reader.read_ensemble(ensemble_path)
    attrs = dataset.attrs
    L = int(attrs["L"])
    stored = primaries.stored_primaries(dataset)
    keys = {"L": attrs["L"], "s": attrs["s"], "lam": attrs["lam"], "sampler": attrs["sampler"]}
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
        magnetization=stored["m"],  # only its sign is used
    )
    for problem in problems:
        log.warning(
            "%s at %s: unreliable: %s",
            attrs["sampler"],
            Point(L, attrs["s"], attrs["lam"]).key,
            problem,
        )
    estimates = analysis.observables(stored, L, S)
    outputs = {table_path: _rows(keys, estimates, n, problems, thin)}
    if reweighted_path is not None:
        outputs[reweighted_path] = pd.DataFrame(columns=OBSERVABLE_COLUMNS)
        proposals = primaries.stored_proposals(dataset)
        if proposals is not None:
            log_w, raw = proposals
            estimates = analysis.observables(raw, L, S, log_weights=log_w)
            effective_only = quality.chain_problems(log_w.size, effective=effective)
            outputs[reweighted_path] = _rows(keys, estimates, log_w.size, effective_only)
    if correlator_path is not None:
        correlator = pd.DataFrame(analysis.correlator_rows(stored["correlator"], S))
        outputs[correlator_path] = correlator.assign(**keys)[[*keys, *correlator.columns]]
    if tunnelling_path is not None:
        found = tunnelling.tunnelling(
            stored["m"], attrs.get("seconds_per_update", np.nan), thin=thin
        )
        outputs[tunnelling_path] = pd.DataFrame(
            [{**keys, **found.row()}], columns=TUNNELLING_COLUMNS
        )
        log.info(
            "%s: %d crossings of |M/V| > %.3g in %d updates",
            ensemble_path,
            found.crossings,
            found.threshold,
            found.updates,
        )
    if histogram_path is not None:
        edges, density = tunnelling.histogram(stored["m"])
        outputs[histogram_path] = pd.DataFrame(
            {**keys, "bin_low": edges[:-1], "bin_high": edges[1:], "density": density},
            columns=HISTOGRAM_COLUMNS,
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
        columns=OBSERVABLE_COLUMNS,
    )
