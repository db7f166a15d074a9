"""Normalizing flows for lattice fields: one module per family behind :class:`Flow`.

The φ⁴ families (``realnvp``, ``nsf``, ``cnf``) map Gaussian noise to a real field of shape
(batch, L, L); the ``gauge`` family maps a gauge-invariant prior (uniform links, or
independent von Mises plaquettes) to U(1) links of shape (batch, 2, L, L)
(:mod:`fieldflow.flows.gauge`). Each family says which theories it samples
(:meth:`FlowFamily.supports`).
"""

from __future__ import annotations

import glob
import hashlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch

from fieldflow.errors import FieldflowError
from fieldflow.flows.base import Bijection, Flow, normal_log_prob
from fieldflow.flows.cnf import CNF
from fieldflow.flows.coupling import CheckerboardFamily
from fieldflow.flows.family import FlowFamily
from fieldflow.flows.gauge import GaugeFlow, build_gauge_flow
from fieldflow.flows.nsf import NSF
from fieldflow.flows.realnvp import RealNVP
from fieldflow.io import remove_stale_partials


class Gauge(CheckerboardFamily):
    """Gauge-equivariant couplings on U(1) links (:func:`~fieldflow.flows.gauge.build_gauge_flow`).

    Its conditioners are circular-padded CNNs like the checkerboard couplings' (an odd
    kernel; parameters that do not depend on L, so the default transfer copies them all),
    but its stride-4 masks need L divisible by 4.
    """

    name = "gauge"
    theories: ClassVar[tuple[str, ...]] = ("u1",)

    @property
    def L_multiple(self) -> int:
        return 4

    def build(self, L: int, **hyperparameters: Any) -> GaugeFlow:
        return build_gauge_flow(L, **hyperparameters)


#: Flow families by their sampler name in every table; ``FAMILIES[name](L, **hyper)``
#: builds one.
FAMILIES: dict[str, FlowFamily] = {
    family.name: family for family in (RealNVP(), NSF(), CNF(), Gauge())
}

__all__ = [
    "FAMILIES",
    "Bijection",
    "Flow",
    "FlowFamily",
    "Gauge",
    "GaugeFlow",
    "ModelFileError",
    "build_flow",
    "load_model",
    "normal_log_prob",
    "save_model",
    "tensor_digest",
    "transfer",
    "without_saved_masks",
]

log = logging.getLogger(__name__)


class ModelFileError(FieldflowError, RuntimeError):
    """A model or checkpoint file that is missing, corrupt or of the wrong kind."""


def build_flow(family: str, L: int, hyperparameters: dict[str, Any]) -> Flow:
    """Build an untrained flow of a registered family for an L×L lattice."""
    if family not in FAMILIES:
        raise ValueError(f"unknown flow family {family!r}; known: {sorted(FAMILIES)}")
    return FAMILIES[family](L, **hyperparameters)


def transfer(flow: Flow, family: str, L_new: int, hyperparameters: dict[str, Any]) -> Flow:
    """A flow for an L_new × L_new lattice initialised from one trained at a smaller L.

    Each family carries its trained state over itself (:meth:`FlowFamily.transfer`):
    coupling flows' convolutions do not depend on L, so their parameters carry over as
    they are (the masks are rebuilt for L_new); the cnf's kernel is padded with zeros and
    its zero-mode spline, if any, keeps its magnetisation per site; the gauge flow's
    conditioners do not depend on L either (L_new divisible by 4). The flow must have the
    layers ``hyperparameters`` build (a ValueError names the parameters that differ).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown flow family {family!r}; known: {sorted(FAMILIES)}")
    return FAMILIES[family].transfer(flow, L_new, hyperparameters)


def tensor_digest(tree: Any) -> str:
    """SHA-256 of every tensor in nested dicts, lists and tuples; other leaves are skipped.

    Tensors enter in the order of their sorted paths (``/state/0/exp_avg``), each as its
    path, dtype, shape and raw bytes. Model files and checkpoints record it beside their
    tensors: ``torch.load`` does not check the CRCs of its zip archive, so without it a
    tensor altered on disk would load as a silently different flow.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(_tensors(tree, ""), key=lambda item: item[0]):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _tensors(tree: Any, prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
    """(path, tensor) pairs of every tensor in nested dicts, lists and tuples."""
    if isinstance(tree, torch.Tensor):
        yield prefix, tree
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from _tensors(value, f"{prefix}/{key}")
    elif isinstance(tree, list | tuple):
        for index, value in enumerate(tree):
            yield from _tensors(value, f"{prefix}/{index}")


def save_model(path: str | Path, flow: Flow, family: str, hyperparameters: dict, **meta) -> None:
    """Write a trained flow atomically: a killed job leaves no file that looks complete.

    The file records :func:`tensor_digest` of the state dict, which :func:`load_model`
    verifies. A partial file of a writer killed before this process started is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    remove_stale_partials(path.parent, glob.escape(tmp.name))
    state_dict = flow.state_dict()
    payload = {
        "family": family,
        "L": flow.L,
        "hyperparameters": dict(hyperparameters),
        "state_dict": state_dict,
        "meta": meta,
        "sha256": tensor_digest(state_dict),
    }
    torch.save(payload, tmp)
    tmp.replace(path)


def load_model(path: str | Path, map_location: str = "cpu") -> tuple[Flow, dict]:
    """Read a flow written by :func:`save_model`; returns the flow and its metadata.

    A file whose tensors do not match their recorded hash is a :class:`ModelFileError`;
    one without a hash (written before fieldflow recorded it) loads with a warning.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
        _verify_model_digest(path, payload)
        flow = build_flow(payload["family"], payload["L"], payload["hyperparameters"])
        flow.load_state_dict(without_saved_masks(payload["state_dict"]))
    except ModelFileError:
        raise
    except Exception as err:  # torch raises many types for a corrupt archive
        raise ModelFileError(
            f"model file {path} is corrupt or not a fieldflow model: {' '.join(str(err).split())}"
        ) from err
    return flow, {k: v for k, v in payload.items() if k not in ("state_dict", "sha256")}


#: Checkerboard masks that files written before fieldflow rebuilt them from L still hold.
_SAVED_MASK = re.compile(r"layers\.\d+\.(frozen|active)")


def without_saved_masks(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state_dict`` without the coupling layers' masks that older model files and
    checkpoints saved (``layers.<i>.frozen``, ``layers.<i>.active``): a flow rebuilds its
    masks from L, so what it loads is its parameters alone."""
    return {k: v for k, v in state_dict.items() if not _SAVED_MASK.fullmatch(k)}


def _verify_model_digest(path: Path, payload: dict) -> None:
    """Raise :class:`ModelFileError` if the state dict differs from its recorded hash."""
    recorded = payload.get("sha256")
    if recorded is None:
        log.warning(
            "model file %s records no hash of its tensors (written by an older "
            "fieldflow): they cannot be verified",
            path,
        )
    elif tensor_digest(payload["state_dict"]) != recorded:
        raise ModelFileError(
            f"model file {path}: its tensors do not match their recorded hash (the file "
            "was altered or corrupted on disk); restore or retrain it"
        )
