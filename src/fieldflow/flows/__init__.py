"""Normalizing flows for lattice fields: one module per family behind :class:`Flow`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fieldflow.flows.base import Bijection, Flow, normal_log_prob
from fieldflow.flows.cnf import build_cnf, transfer_cnf
from fieldflow.flows.nsf import build_nsf
from fieldflow.flows.realnvp import build_realnvp

#: Flow families by their sampler name in every table.
FAMILIES: dict[str, Callable[..., Flow]] = {
    "realnvp": build_realnvp,
    "nsf": build_nsf,
    "cnf": build_cnf,
}

__all__ = [
    "FAMILIES",
    "Bijection",
    "Flow",
    "ModelFileError",
    "build_flow",
    "load_model",
    "normal_log_prob",
    "save_model",
    "transfer",
]


class ModelFileError(RuntimeError):
    """A model or checkpoint file that is missing, corrupt or of the wrong kind."""


def build_flow(family: str, L: int, hyperparameters: dict[str, Any]) -> Flow:
    """Build an untrained flow of a registered family for an L×L lattice."""
    if family not in FAMILIES:
        raise ValueError(f"unknown flow family {family!r}; known: {sorted(FAMILIES)}")
    return FAMILIES[family](L, **hyperparameters)


def transfer(flow: Flow, family: str, L_new: int, hyperparameters: dict[str, Any]) -> Flow:
    """A flow for an L_new × L_new lattice initialised from one trained at a smaller L.

    Coupling flows' convolutions do not depend on L, so their parameters carry over as
    they are (the masks are rebuilt for L_new); the cnf's kernel is padded with zeros.
    """
    if L_new < flow.L:
        raise ValueError(f"transfer goes to a larger lattice, got L={flow.L} -> {L_new}")
    if family == "cnf":
        return transfer_cnf(flow, L_new)
    ref = next(flow.parameters())
    target = build_flow(family, L_new, hyperparameters).to(dtype=ref.dtype, device=ref.device)
    parameters = dict(flow.named_parameters())
    missing = set(dict(target.named_parameters())) - set(parameters)
    if missing:
        raise ValueError(f"cannot transfer {family}: hyperparameters differ ({sorted(missing)})")
    target.load_state_dict({k: v.detach() for k, v in parameters.items()}, strict=False)
    return target


def save_model(path: str | Path, flow: Flow, family: str, hyperparameters: dict, **meta) -> None:
    """Write a trained flow atomically: a killed job leaves no file that looks complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    payload = {
        "family": family,
        "L": flow.L,
        "hyperparameters": dict(hyperparameters),
        "state_dict": flow.state_dict(),
        "meta": meta,
    }
    torch.save(payload, tmp)
    tmp.replace(path)


def load_model(path: str | Path, map_location: str = "cpu") -> tuple[Flow, dict]:
    """Read a flow written by :func:`save_model`; returns the flow and its metadata."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
        flow = build_flow(payload["family"], payload["L"], payload["hyperparameters"])
        flow.load_state_dict(payload["state_dict"])
    except Exception as err:  # torch raises many types for a corrupt archive
        raise ModelFileError(
            f"model file {path} is corrupt or not a fieldflow model: {err}"
        ) from err
    return flow, {k: v for k, v in payload.items() if k != "state_dict"}
