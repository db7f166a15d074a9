"""Reading results back: ensembles checked whole, intact and current; model files' records.

An ensemble (written by :mod:`fieldflow.io`) is usable only if its writer finished, every
chunk of every array is on disk and passes its CRC32C, and the primaries stored beside a
flow's raw proposals are of this fieldflow's version for the store's theory
(:attr:`~fieldflow.theory.Theory.primaries_version`). A store's ``theory`` attr names its
theory (:func:`theory_of`; φ⁴ where absent, as in stores written before there were
theories), and with it the name and dims of its field: φ⁴'s ``phi`` (chain, draw, x, y),
U(1)'s ``links`` (chain, draw, mu, x, y).
Anything else is an :class:`EnsembleError` naming the store, never fill values, wrong
numbers or a ``KeyError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fieldflow.errors import FieldflowError
from fieldflow.files import one_line
from fieldflow.theory import PHI4, Theory, stored_theory


class EnsembleError(FieldflowError, RuntimeError):
    """An ensemble store that is missing, incomplete, corrupt or out of date."""


def theory_of(dataset: xr.Dataset) -> Theory:
    """The theory of an ensemble, by its ``theory`` attr; φ⁴ for a store without one.

    Raises:
        EnsembleError: a theory this fieldflow does not know, naming the store.
    """
    try:
        return stored_theory(dataset.attrs)
    except ValueError as err:
        store = dataset.encoding.get("source", "(unnamed store)")
        raise EnsembleError(f"ensemble {store}: {err}") from err


def read_ensemble(path: str | Path) -> xr.Dataset:
    """Open an ensemble lazily; raise :class:`EnsembleError` naming the file if unusable.

    Beyond its metadata, every array must have all the chunks of its chunk grid on disk
    (:func:`check_chunks`), and stored primaries must be current
    (:func:`check_primaries_version`). Values are read lazily: read them through
    :func:`load_array`, which reports a chunk that fails its checksum by store and array.
    """
    path = Path(path)
    if not path.exists():
        raise EnsembleError(f"ensemble {path} does not exist")
    try:
        dataset = xr.open_zarr(path, chunks=None)
    except Exception as err:
        raise EnsembleError(
            f"ensemble {path} is corrupt or not a Zarr store: {one_line(err)}"
        ) from err
    if not dataset.attrs.get("complete", False):
        raise EnsembleError(f"ensemble {path} is incomplete (its writer did not finish)")
    theory = theory_of(dataset)
    dims = ("chain", "draw", *theory.field_dims)
    if theory.field not in dataset or dataset[theory.field].dims != dims:
        raise EnsembleError(f"ensemble {path} has no {theory.field}({', '.join(dims)}) array")
    every_array = bool(dataset.attrs.get("all_chunks", False))
    check_chunks(path, every_array=every_array, field=theory.field)
    check_primaries_version(path, dataset)
    return dataset


#: The raw-proposal arrays of a version-1 store (``m`` arrived last, in issue 11).
VERSION_1_PRIMARIES = {
    f"proposal_{name}"
    for name in ("phi2", "m", "abs_m", "m2", "m4", "ising_energy", "f_first", "correlator")
}


def check_primaries_version(path: Path, dataset: xr.Dataset) -> None:
    """Raise :class:`EnsembleError` if the store keeps primaries of another version.

    Only a flow's raw proposals keep primaries (``proposal_*`` arrays, for reweighting);
    a Markov chain's primaries are computed from its field when read, whatever its version.
    The version this fieldflow needs is that of the store's theory (:func:`theory_of`). A
    store without ``primaries_version`` was written before fieldflow recorded it: 0.
    """
    if not any(str(name).startswith("proposal_") for name in dataset.data_vars):
        return
    needed = theory_of(dataset).primaries_version
    version = int(dataset.attrs.get("primaries_version", 0))
    if version == 0 and VERSION_1_PRIMARIES <= set(map(str, dataset.data_vars)):
        version = 1  # written before the attr existed, with every primary of version 1
    if version < needed:
        raise EnsembleError(
            f"{path} stores primaries version {version}, this fieldflow needs "
            f"{needed}: resample it (delete the store and rerun snakemake)"
        )
    if version > needed:
        raise EnsembleError(
            f"{path} stores primaries version {version}, newer than this fieldflow's "
            f"{needed}: read it with the fieldflow that wrote it"
        )


def check_chunks(path: Path, every_array: bool, field: str = PHI4.field) -> None:
    """Raise :class:`EnsembleError` if an array has fewer chunks on disk than its grid.

    zarr reads a missing chunk as fill values (NaN, 0, False), so a lost chunk file would
    otherwise pass for data. Stores written with ``attrs["all_chunks"]`` (every chunk
    written, as :func:`fieldflow.io.write_ensemble` does) are checked array by array.
    Older stores skipped chunks equal to the fill value, which a chunk of ``accepted`` may
    legitimately be (all False), so there only the ``field`` (``phi``) is checked: a chunk
    of sampled fields never equals the fill value throughout.
    """
    import zarr

    try:
        group = zarr.open_group(path, mode="r")
        counts = {name: (a.nchunks, a.nchunks_initialized) for name, a in group.arrays()}
    except Exception as err:
        raise EnsembleError(f"ensemble {path} is corrupt: {one_line(err)}") from err
    for name, (total, stored) in sorted(counts.items()):
        if (every_array or name == field) and stored < total:
            raise EnsembleError(
                f"ensemble {path}: array {name!r} lacks {total - stored} of its {total} "
                "chunks (lost or deleted); rerun the job that wrote it"
            )


def load_array(source: str | Path | xr.Dataset, name: str) -> np.ndarray:
    """Values of one array of an ensemble, from its path or from :func:`read_ensemble`.

    A chunk that fails its CRC32C or cannot be decoded is an :class:`EnsembleError`
    naming the store and the array, not an exception from deep inside zarr.
    """
    if isinstance(source, xr.Dataset):
        dataset, store = source, source.encoding.get("source", "(unnamed store)")
    else:
        dataset, store = read_ensemble(source), source
    if name not in dataset:
        raise EnsembleError(f"ensemble {store} has no array {name!r}")
    try:
        return dataset[name].values
    except Exception as err:
        raise EnsembleError(
            f"ensemble {store}: cannot read array {name!r}, a chunk of it is corrupt: "
            f"{one_line(err)}"
        ) from err


def iter_chunks(dataset: xr.Dataset, name: str = "phi") -> Iterator[tuple[int, slice, np.ndarray]]:
    """Values of one array of :func:`read_ensemble`, one chunk along its axis 1 at a time.

    Yields (chain, draws, values) with ``values`` the array at ``[chain, draws]``, shape
    (len(draws), ...), so that a reader holds one chunk, not the array. A corrupt chunk
    is an :class:`EnsembleError` naming the store and the array, as in :func:`load_array`.
    """
    store = dataset.encoding.get("source", "(unnamed store)")
    if name not in dataset:
        raise EnsembleError(f"ensemble {store} has no array {name!r}")
    variable = dataset[name]
    n_chains, length = variable.shape[:2]
    # An array without chunk encoding (not read from a store) is in memory: whole chains.
    chunks = variable.encoding.get("chunks") or variable.shape
    step = max(1, int(chunks[1]))
    for chain in range(n_chains):
        for start in range(0, length, step):
            draws = slice(start, min(start + step, length))
            try:
                values = variable[chain, draws].values
            except Exception as err:
                raise EnsembleError(
                    f"ensemble {store}: cannot read array {name!r}, a chunk of it is corrupt: "
                    f"{one_line(err)}"
                ) from err
            yield chain, draws, values


def load_phi(path: str | Path) -> np.ndarray:
    """φ of an ensemble as a (chain, draw, L, L) array, with corruption reported by file."""
    return load_array(path, "phi")


@dataclass(frozen=True)
class ModelRecord:
    """What a model file records beside the flow's tensors (:func:`fieldflow.flows.save_model`).

    ``train_seconds`` and ``train_steps`` are the training's wall time and optimiser steps;
    ``refinements`` how often the guard doubled an ODE's RK4 steps (its hyperparameters
    are the refined ones); ``point`` the point trained at, as in the config (empty, and no
    refinements, in files written without them).
    """

    family: str
    L: int
    hyperparameters: dict[str, Any]
    train_seconds: float
    train_steps: int
    refinements: int
    point: dict[str, Any]

    @classmethod
    def of(cls, metadata: dict[str, Any]) -> ModelRecord:
        """The record of the metadata :func:`fieldflow.flows.load_model` returns."""
        meta = metadata["meta"]
        return cls(
            family=metadata["family"],
            L=int(metadata["L"]),
            hyperparameters=dict(metadata["hyperparameters"]),
            train_seconds=float(meta["train_seconds"]),
            train_steps=int(meta["train_steps"]),
            refinements=int(meta.get("refinements", 0)),
            point=dict(meta.get("point") or {}),
        )
