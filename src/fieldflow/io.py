"""Ensembles on disk: xarray Datasets in Zarr format 3 (DESIGN.md §3).

A store is written under a temporary name beside its destination and renamed into place
only when complete, so a job killed midway never leaves a store that looks finished;
``read_ensemble`` also checks a ``complete`` attribute written last.
"""

from __future__ import annotations

import json
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

REQUIRED_ATTRS = ("L", "s", "lam", "sampler", "seed", "versions")


class EnsembleError(RuntimeError):
    """An ensemble store that is missing, incomplete or corrupt."""


def versions() -> str:
    """Versions of the packages that produced a result, as JSON."""
    import pyerrors
    import torch
    import zarr

    import fieldflow

    found = {
        "fieldflow": fieldflow.__version__,
        "numpy": np.__version__,
        "torch": torch.__version__,
        "xarray": xr.__version__,
        "zarr": zarr.__version__,
        "pyerrors": pyerrors.__version__,
    }
    return json.dumps(found, sort_keys=True)


def ensemble_dataset(
    phi: np.ndarray,
    per_draw: dict[str, np.ndarray],
    attrs: dict[str, Any],
    per_proposal: dict[str, np.ndarray] | None = None,
) -> xr.Dataset:
    """Dataset with ``phi`` (chain, draw, x, y) float32 and per-draw (chain, draw) fields.

    ``per_proposal`` fields (flows only) describe every raw proposal of each chain, dims
    (chain, proposal[, t]); they are stored as ``proposal_<name>`` for the reweighting
    estimator.
    """
    if phi.ndim != 4:
        raise ValueError(f"phi must have shape (chain, draw, x, y), got {phi.shape}")
    data = {"phi": (("chain", "draw", "x", "y"), np.asarray(phi, dtype=np.float32))}
    for name, values in per_draw.items():
        values = np.asarray(values)
        if values.shape != phi.shape[:2]:
            raise ValueError(f"{name} has shape {values.shape}, expected {phi.shape[:2]}")
        if values.dtype.kind == "f":
            values = values.astype(np.float64)
        data[name] = (("chain", "draw"), values)
    for name, values in (per_proposal or {}).items():
        values = np.asarray(values, dtype=np.float64)
        if values.shape[0] != phi.shape[0]:
            raise ValueError(f"proposal_{name} has {values.shape[0]} chains, not {phi.shape[0]}")
        dims = ("chain", "proposal", "t")[: values.ndim]
        data[f"proposal_{name}"] = (dims, values)
    missing = [key for key in REQUIRED_ATTRS if key not in attrs]
    if missing:
        raise ValueError(f"ensemble attrs lack {missing}")
    return xr.Dataset(data, attrs=dict(attrs))


def write_ensemble(path: str | Path, dataset: xr.Dataset) -> None:
    """Write atomically to ``path`` (a directory ending in .zarr), replacing any old store."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    draws = min(dataset.sizes["draw"], 4096)
    encoding = {
        name: {"chunks": (1, draws) + tuple(var.shape[2:])}
        for name, var in dataset.data_vars.items()
    }
    dataset = dataset.copy()
    dataset.attrs["complete"] = False
    dataset.to_zarr(tmp, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
    # Flag completion only once every array is on disk.
    import zarr

    group = zarr.open_group(tmp, mode="r+")
    group.attrs["complete"] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # consolidated metadata is a zarr-python extension
        zarr.consolidate_metadata(tmp)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)


def read_ensemble(path: str | Path) -> xr.Dataset:
    """Open an ensemble lazily; raise :class:`EnsembleError` naming the file if unusable."""
    path = Path(path)
    if not path.exists():
        raise EnsembleError(f"ensemble {path} does not exist")
    try:
        dataset = xr.open_zarr(path, chunks=None)
    except Exception as err:
        raise EnsembleError(f"ensemble {path} is corrupt or not a Zarr store: {err}") from err
    if not dataset.attrs.get("complete", False):
        raise EnsembleError(f"ensemble {path} is incomplete (its writer did not finish)")
    if "phi" not in dataset or dataset["phi"].dims != ("chain", "draw", "x", "y"):
        raise EnsembleError(f"ensemble {path} has no phi(chain, draw, x, y) array")
    return dataset


def load_phi(path: str | Path) -> np.ndarray:
    """φ of an ensemble as a (chain, draw, L, L) array, with corruption reported by file."""
    dataset = read_ensemble(path)
    try:
        return dataset["phi"].values
    except Exception as err:
        raise EnsembleError(f"ensemble {path}: cannot read phi: {err}") from err
