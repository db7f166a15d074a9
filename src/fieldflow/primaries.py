r"""Per-configuration primaries of an ensemble, from which every observable is estimated.

The primaries of a configuration φ are those of :func:`fieldflow.lattice.primary_observables`
(φ², M/V, |M|/V, M²/V, M⁴/V², the Ising energy, F at the first momentum) and its time-slice
correlator C(t) (:func:`fieldflow.lattice.timeslice_correlator`), all in float64. A Markov
chain's are computed from its stored φ when read (:func:`stored_primaries`); a flow also
stores those of every raw proposal beside its log weight, at sampling time, for the
reweighting estimator (:func:`stored_proposals`). Their layout is versioned by
:data:`~fieldflow.lattice.PRIMARIES_VERSION`, recorded in every store.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import xarray as xr

from fieldflow import reader
from fieldflow.lattice import PRIMARIES_VERSION, primary_observables, timeslice_correlator

__all__ = ["PRIMARIES_VERSION", "ensemble_primaries", "stored_primaries", "stored_proposals"]

log = logging.getLogger(__name__)


def ensemble_primaries(phi: np.ndarray, chunk: int = 8192) -> dict[str, np.ndarray]:
    """Per-configuration primaries (float64) of φ with shape (chain, draw, L, L).

    Each is (chain, draw), except ``correlator``, the time-slice correlator (chain, draw, L).
    """
    n_chains, n_draws = phi.shape[:2]
    flat = phi.reshape(n_chains * n_draws, *phi.shape[2:])
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, flat.shape[0], chunk):
        batch = torch.from_numpy(np.asarray(flat[start : start + chunk], dtype=np.float64))
        for name, values in primary_observables(batch).items():
            parts.setdefault(name, []).append(values.numpy())
        parts.setdefault("correlator", []).append(timeslice_correlator(batch).numpy())
    return {
        k: np.concatenate(v).reshape(n_chains, n_draws, *v[0].shape[1:]) for k, v in parts.items()
    }


def stored_primaries(dataset: xr.Dataset) -> dict[str, np.ndarray]:
    """:func:`ensemble_primaries` of the φ of an open ensemble, read one chunk at a time.

    Only a chunk of φ (:func:`fieldflow.reader.iter_chunks`) is in memory at once, besides
    the primaries themselves, (chain, draw) each and (chain, draw, L) for ``correlator``.
    """
    n_chains, n_draws = dataset.sizes["chain"], dataset.sizes["draw"]
    primaries: dict[str, np.ndarray] = {}
    for chain, draws, phi in reader.iter_chunks(dataset, "phi"):
        for name, values in ensemble_primaries(phi[None]).items():
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
    if "m" not in raw:
        store = dataset.encoding.get("source", "(unnamed store)")
        log.info("%s: raw proposals stored without M: reweighted magnetization is NaN", store)
    return log_w, raw
