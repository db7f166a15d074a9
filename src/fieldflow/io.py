"""Ensembles on disk: xarray Datasets in Zarr format 3 (DESIGN.md §3).

A store is written under a temporary name beside its destination and renamed into place
only when complete, so a job killed midway never leaves a store that looks finished;
``read_ensemble`` also checks a ``complete`` attribute written last.

Integrity: every chunk is written (even one equal to the fill value) and carries a CRC32C
of its compressed bytes, so a lost chunk or a flipped bit is an :class:`EnsembleError`
naming the store and the array, never fill values or wrong numbers. Partial stores and
files left by killed writers are removed by the next writer of the same output.

Memory: arrays are chunked per chain along ``draw`` (and ``proposal``), a chunk holding at
most :data:`MAX_CHUNK_DRAWS` draws and :data:`MAX_CHUNK_VALUES` values, so that
:class:`EnsembleWriter` (:mod:`fieldflow.writer`: a store written chunk by chunk as a
sampler produces it) and :func:`iter_chunks` (which reads one back chunk by chunk) hold
one chunk, not the ensemble.

The field is the theory's (the ``theory`` attr, φ⁴ where absent;
:attr:`fieldflow.theory.Theory.field`): φ⁴'s ``phi`` (chain, draw, x, y) or U(1)'s ``links``
(chain, draw, mu, x, y), float32; the point's parameters are attrs (φ⁴: L, s, lam; U(1):
L, beta).

This module writes; reading back is :mod:`fieldflow.reader` (re-exported here, as are the
helpers for partial files of :mod:`fieldflow.files`), so ``fieldflow.io`` is the one place
to import storage from.
"""

from __future__ import annotations

import glob
import logging
import shutil
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fieldflow.files import discard, remove_stale_partials, versions
from fieldflow.reader import (
    EnsembleError,
    check_chunks,
    check_primaries_version,
    iter_chunks,
    load_array,
    load_phi,
    read_ensemble,
    theory_of,
)
from fieldflow.theory import stored_theory

__all__ = [
    "MAX_CHUNK_DRAWS",
    "MAX_CHUNK_VALUES",
    "REQUIRED_ATTRS",
    "EnsembleError",
    "check_chunks",
    "check_primaries_version",
    "chunk_compressors",
    "chunk_draws",
    "discard",
    "ensemble_dataset",
    "iter_chunks",
    "load_array",
    "load_phi",
    "read_ensemble",
    "remove_stale_partials",
    "theory_of",
    "versions",
    "write_ensemble",
]

log = logging.getLogger(__name__)

#: The attrs every φ⁴ store has (:attr:`fieldflow.theory.Theory.required_attrs`).
REQUIRED_ATTRS = ("L", "s", "lam", "sampler", "seed", "versions")
#: Most draws (or proposals) of one chain in one chunk.
MAX_CHUNK_DRAWS = 4096
#: Most values in one chunk: 1 MiB of float32 φ, 256 draws at L = 32.
MAX_CHUNK_VALUES = 2**18


def ensemble_dataset(
    phi: np.ndarray,
    per_draw: dict[str, np.ndarray],
    attrs: dict[str, Any],
    per_proposal: dict[str, np.ndarray] | None = None,
) -> xr.Dataset:
    """Dataset with the field (chain, draw, *field dims) float32 and per-draw (chain, draw)
    fields.

    The field is that of the theory ``attrs["theory"]`` names (φ⁴ without it): ``phi``
    (chain, draw, x, y) or U(1)'s ``links`` (chain, draw, mu, x, y). ``per_proposal`` fields
    (flows only) describe every raw proposal of each chain, dims (chain, proposal[, t]);
    they are stored as ``proposal_<name>`` for the reweighting estimator.
    """
    theory = stored_theory(attrs)
    dims = ("chain", "draw", *theory.field_dims)
    if phi.ndim != len(dims):
        raise ValueError(f"{theory.field} must have shape ({', '.join(dims)}), got {phi.shape}")
    data = {theory.field: (dims, np.asarray(phi, dtype=np.float32))}
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
    missing = [key for key in theory.required_attrs if key not in attrs]
    if missing:
        raise ValueError(f"ensemble attrs lack {missing}")
    return xr.Dataset(data, attrs=dict(attrs))


def chunk_compressors() -> tuple[Any, ...]:
    """Zstd, then a CRC32C of the compressed bytes: a flipped bit fails the read loudly."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return (ZstdCodec(), Crc32cCodec())


def chunk_draws(n_draws: int, values_per_draw: int = 1) -> int:
    """Draws of one chain in a chunk of an array with ``values_per_draw`` values per draw.

    At most ``n_draws``, :data:`MAX_CHUNK_DRAWS` and :data:`MAX_CHUNK_VALUES` /
    ``values_per_draw``; at least one.
    """
    return max(1, min(n_draws, MAX_CHUNK_DRAWS, MAX_CHUNK_VALUES // max(1, values_per_draw)))


def _encoding(dataset: xr.Dataset, n_draws: int) -> dict[str, dict[str, Any]]:
    """Codecs (:func:`chunk_compressors`) and chunks (1, :func:`chunk_draws`, ...) per array.

    Every array, per-proposal ones included, is chunked by the number of draws ``n_draws``.
    """
    encoding: dict[str, dict[str, Any]] = {
        name: {"compressors": chunk_compressors()} for name in dataset.variables
    }
    for name, var in dataset.data_vars.items():
        trailing = tuple(var.shape[2:])
        draws = chunk_draws(n_draws, int(np.prod(trailing, dtype=np.int64)))
        encoding[name]["chunks"] = (1, draws) + trailing
    return encoding


def _partial_name(path: Path) -> Path:
    """A fresh temporary name beside ``path``, after removing those of dead writers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path.parent, f".{glob.escape(path.name)}.*.partial")
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")


def _create(tmp: Path, dataset: xr.Dataset, n_draws: int) -> None:
    """Write ``dataset`` to ``tmp``, flagged incomplete, every chunk written.

    Unless its attrs say otherwise, the store records the version of the primaries this
    fieldflow computes for its theory (``primaries_version``,
    :attr:`fieldflow.theory.Theory.primaries_version`; φ⁴:
    :data:`fieldflow.lattice.PRIMARIES_VERSION`), which :func:`read_ensemble` checks where
    primaries are stored.
    """
    dataset = dataset.copy()
    dataset.attrs.update(complete=False, all_chunks=True)
    dataset.attrs.setdefault("primaries_version", stored_theory(dataset.attrs).primaries_version)
    dataset.to_zarr(
        tmp,
        mode="w",
        zarr_format=3,
        consolidated=False,
        encoding=_encoding(dataset, n_draws),
        write_empty_chunks=True,
    )


def _finish(tmp: Path, path: Path, attrs: Mapping[str, Any] | None = None) -> None:
    """Set ``attrs``, then ``complete``, consolidate and rename ``tmp`` to ``path``."""
    import zarr

    group = zarr.open_group(tmp, mode="r+")
    if attrs:
        group.attrs.update(attrs)
    # Flag completion only once every array is on disk.
    group.attrs["complete"] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # consolidated metadata is a zarr-python extension
        zarr.consolidate_metadata(tmp)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)


def write_ensemble(path: str | Path, dataset: xr.Dataset) -> None:
    """Write atomically to ``path`` (a directory ending in .zarr), replacing any old store.

    Every array's chunks carry a CRC32C (:func:`chunk_compressors`), and every chunk is
    written even where it equals the fill value, which ``attrs["all_chunks"]`` records so
    that :func:`read_ensemble` can tell a lost chunk from a skipped one. Partial stores of
    writers killed before this process started are removed first.
    """
    path = Path(path)
    tmp = _partial_name(path)
    _create(tmp, dataset, dataset.sizes["draw"])
    _finish(tmp, path)


def __getattr__(name: str) -> Any:
    # The streaming writer lives in fieldflow.writer, which builds on this module's
    # helpers; it is re-exported here on first use, so that io stays the one import.
    if name == "EnsembleWriter":
        from fieldflow.writer import EnsembleWriter

        return EnsembleWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
