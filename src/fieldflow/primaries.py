r"""Per-configuration primaries of an ensemble, from which every observable is estimated.

The primaries of a configuration are its theory's measurements
(:attr:`fieldflow.theory.Theory.measurements`), all in float64: for φ⁴ those of
:func:`fieldflow.lattice.primary_observables` (φ², M/V, |M|/V, M²/V, M⁴/V², the Ising
energy, F at the first momentum) and its time-slice correlator C(t)
(:func:`fieldflow.lattice.timeslice_correlator`); for U(1) the plaquette, Q and Q²
(:func:`fieldflow.u1.lattice.primary_observables`). A Markov chain's are computed from its
stored field when read (:func:`stored_primaries`); a flow also stores those of every raw
proposal beside its log weight, at sampling time, for the reweighting estimator
(:func:`stored_proposals`). Their layout is versioned by the theory's
:attr:`~fieldflow.theory.Theory.primaries_version` (φ⁴:
:data:`~fieldflow.lattice.PRIMARIES_VERSION`), recorded in every store.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import xarray as xr

from fieldflow import reader
from fieldflow.lattice import PRIMARIES_VERSION
from fieldflow.theory import PHI4, Theory

__all__ = ["PRIMARIES_VERSION", "ensemble_primaries", "stored_primaries", "stored_proposals"]

log = logging.getLogger(__name__)


def ensemble_primaries(
    phi: np.ndarray, chunk: int = 8192, theory: Theory = PHI4
) -> dict[str, np.ndarray]:
    """Per-configuration primaries (float64) of fields of shape (chain, draw, *field_shape).

    Each is (chain, draw), except a correlator (φ⁴'s ``correlator``, C(t)): (chain, draw, t).
    """
    n_chains, n_draws = phi.shape[:2]
    flat = phi.reshape(n_chains * n_draws, *phi.shape[2:])
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, flat.shape[0], chunk):
        batch = torch.from_numpy(np.asarray(flat[start : start + chunk], dtype=np.float64))
        for name, values in theory.measurements(batch).items():
            parts.setdefault(name, []).append(values.numpy())
    return {
        k: np.concatenate(v).reshape(n_chains, n_draws, *v[0].shape[1:]) for k, v in parts.items()
    }


def stored_primaries(dataset: xr.Dataset) -> dict[str, np.ndarray]:
    """:func:`ensemble_primaries` of the field of an open ensemble, one chunk at a time.

    The field is that of the store's theory (:func:`fieldflow.reader.theory_of`: φ⁴'s
    ``phi``, U(1)'s ``links``). Only a chunk of it (:func:`fieldflow.reader.iter_chunks`)
    is in memory at once, besides the primaries themselves, (chain, draw) each and
    (chain, draw, L) for ``correlator``.
    """
    theory = reader.theory_of(dataset)
    n_chains, n_draws = dataset.sizes["chain"], dataset.sizes["draw"]
    primaries: dict[str, np.ndarray] = {}
    for chain, draws, field in reader.iter_chunks(dataset, theory.field):
        for name, values in ensemble_primaries(field[None], theory=theory).items():
            if name not in primaries:
                primaries[name] = np.empty((n_chains, n_draws, *values.shape[2:]))
            primaries[name][chain, draws] = values[0]
    return primaries


def stored_proposals(dataset: xr.Dataset) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """The log weights (chain, proposal) and primaries of a flow's raw proposals.

    None for an ensemble without raw proposals (a Markov chain). The primaries are those
    stored at sampling time, of the version :func:`fieldflow.reader.read_ensemble` checked.
    """
    if "proposal_log_weight" not in dataset:
        return None
    raw = {
        str(name).removeprefix("proposal_"): reader.load_array(dataset, str(name))
        for name in dataset.data_vars
        if str(name).startswith("proposal_")
    }
    log_w = raw.pop("log_weight")
    order = reader.theory_of(dataset).order_parameter
    if order.primary not in raw:
        store = dataset.encoding.get("source", "(unnamed store)")
        log.info(
            "%s: raw proposals stored without %s: its reweighted estimate is NaN",
            store,
            order.symbol,
        )
    return log_w, raw
