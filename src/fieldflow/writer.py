"""The streaming ensemble writer: a store written chunk by chunk as a sampler runs.

Part of the storage of :mod:`fieldflow.io` (and re-exported there): the same layout,
integrity and atomic rename as :func:`fieldflow.io.write_ensemble`, built on its helpers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
from numpy.typing import DTypeLike

from fieldflow.column import ChunkedColumn as _Column
from fieldflow.io import _create, _finish, _partial_name, ensemble_dataset
from fieldflow.theory import stored_theory

log = logging.getLogger(__name__)


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
