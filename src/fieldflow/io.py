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
:class:`EnsembleWriter` (which writes a store chunk by chunk as a sampler produces it) and
:func:`iter_chunks` (which reads one back chunk by chunk) hold one chunk, not the ensemble.

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
from types import TracebackType
from typing import Any, Self

import numpy as np
import xarray as xr
from numpy.typing import DTypeLike

from fieldflow.column import ChunkedColumn as _Column
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
    "EnsembleWriter",
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


class EnsembleWriter:
    """Write an ensemble chunk by chunk as it is sampled, holding one chunk per chain.

    ``with EnsembleWriter(path, attrs) as out:``, then :meth:`start` declares the full
    shapes, which creates the store under a temporary name with the chunks and codecs of
    :func:`write_ensemble` (the field is the one of the theory ``attrs["theory"]`` names,
    φ⁴ without it); :meth:`append` and :meth:`append_proposals` add the next draws
    (proposals) of every chain, or of one chain, and write each chunk once it is full.
    Leaving the block normally checks that every array is full, writes :attr:`attrs`
    (update them meanwhile, e.g. with timings), then ``complete``, and renames the store
    into place: it then equals what :func:`write_ensemble` writes for the same data. An
    error leaves only the temporary store, which the next writer of ``path`` removes.
    """

    def __init__(self, path: str | Path, attrs: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.attrs: dict[str, Any] = dict(attrs)
        #: The name of the field's array, the theory's (``phi``, ``links``).
        self.field = stored_theory(self.attrs).field
        #: Lengths of the dimensions ``chain`` and ``draw``, once :meth:`start` set them.
        self.sizes: dict[str, int] = {}
        self._tmp: Path | None = None
        self._columns: dict[str, _Column] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        elif self._tmp is not None:
            log.info("%s left incomplete after an error; the next writer removes it", self._tmp)

    def start(
        self,
        n_chains: int,
        n_draws: int,
        shape: tuple[int, ...],
        per_draw: Mapping[str, DTypeLike],
        per_proposal: Mapping[str, tuple[int, ...]] | None = None,
    ) -> None:
        """Create the store: the field (n_chains, n_draws, *shape) and the arrays to come.

        Args:
            shape: the shape of one draw, the theory's ``field_shape(L)``: (L, L) for φ⁴,
                (2, L, L) for U(1).
            per_draw: dtype of each per-draw series, stored (chain, draw) as by
                :func:`ensemble_dataset` (floats as float64).
            per_proposal: shape of each per-proposal series of one chain, (n_proposals,)
                or (n_proposals, t), stored float64 as ``proposal_<name>``.
        """
        import zarr

        if self._tmp is not None:
            raise ValueError(f"{self.path}: the store was already started")
        per_proposal = dict(per_proposal or {})
        if not isinstance(shape, tuple):
            raise TypeError(
                f"{self.path}: the draw shape must be a tuple such as (L, L), got {shape!r}"
            )
        template = ensemble_dataset(
            np.zeros((n_chains, 0, *shape), dtype=np.float32),
            {name: np.zeros((n_chains, 0), dtype=dtype) for name, dtype in per_draw.items()},
            self.attrs,
            {name: np.zeros((n_chains, 0, *shape[1:])) for name, shape in per_proposal.items()},
        )
        self.sizes = {"chain": n_chains, "draw": n_draws}
        tmp = _partial_name(self.path)
        self._tmp = tmp
        _create(tmp, template, n_draws)
        lengths = {name: n_draws for name in (self.field, *per_draw)}
        lengths.update({f"proposal_{name}": shape[0] for name, shape in per_proposal.items()})
        group = zarr.open_group(tmp, mode="r+")
        for name, length in lengths.items():
            array = group[name]
            array.resize((n_chains, length, *array.shape[2:]))
            self._columns[name] = _Column(name, array.with_config({"write_empty_chunks": True}))

    def append(
        self, phi: np.ndarray, per_draw: Mapping[str, np.ndarray], chain: int | None = None
    ) -> None:
        """The next draws: the field (chain, k, *shape) and each series (chain, k) of every
        chain, or with ``chain``, the field (k, *shape) and series (k,) of that chain. Every
        declared series comes with the field."""
        self._check_started()
        names = {self.field, *per_draw}
        expected = {name for name in self._columns if not name.startswith("proposal_")}
        if names != expected:
            raise ValueError(f"{self.path}: append gets {sorted(names)}, not {sorted(expected)}")
        self._add({self.field: phi, **per_draw}, chain)

    def append_proposals(self, values: Mapping[str, np.ndarray], chain: int | None = None) -> None:
        """The next raw proposals of every chain, each (chain, k[, t]), or of ``chain``."""
        self._add({f"proposal_{name}": v for name, v in values.items()}, chain)

    def _check_started(self) -> None:
        if self._tmp is None:
            raise ValueError(f"{self.path}: call start() before writing draws")

    def _add(self, values: Mapping[str, np.ndarray], chain: int | None) -> None:
        self._check_started()
        unknown = set(values) - set(self._columns)
        if unknown:
            raise ValueError(f"{self.path}: no array {sorted(unknown)} was declared")
        for name, array in values.items():
            column = self._columns[name]
            if chain is not None:
                column.add(chain, array)
                continue
            if len(array) != column.n_chains:
                raise ValueError(f"{name} has {len(array)} chains, not {column.n_chains}")
            for c in range(column.n_chains):
                column.add(c, array[c])

    def close(self) -> None:
        """Write :attr:`attrs`, then ``complete``, and rename the full store into place."""
        if self._tmp is None:
            raise ValueError(f"{self.path}: nothing to write (start() was never called)")
        for column in self._columns.values():
            column.check_full(self._tmp)
        attrs = {k: v.item() if isinstance(v, np.generic) else v for k, v in self.attrs.items()}
        _finish(self._tmp, self.path, attrs)
