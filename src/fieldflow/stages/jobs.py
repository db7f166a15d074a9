"""What every job shares: its log file, its device and the point it works at."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import torch

from fieldflow import errors
from fieldflow.config import ConfigError
from fieldflow.config_points import point_from_entry
from fieldflow.theory import THEORIES, PointLike, point_from_key


def resolve_device(device: str) -> torch.device:
    """'auto' → CUDA when torch sees a GPU, else CPU; 'cuda' without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config key 'device': cuda, but torch sees no CUDA GPU")
    return torch.device(device)


def point_of(params: dict[str, Any] | str) -> PointLike:
    """The point of a job, of any theory, from its key or from a rule's point dict.

    Args:
        params: a point key (``L8_s-4_lam6.008``, ``L8_beta2``:
            :func:`fieldflow.theory.point_from_key`), or a dict of ``L``, the parameters of
            one theory and an optional ``name``, e.g. ``{"L": 8, "s": -4.0, "lam": 6.0}``
            or ``{"L": 8, "beta": 2.0}``; its theory is ``params["theory"]`` if given, else
            the one whose parameters it holds.
    Raises:
        ConfigError: a dict with the parameters of no theory, or of several.
    """
    if isinstance(params, str):
        return point_from_key(params)
    if "theory" not in params:
        matches = [t.name for t in THEORIES.values() if set(t.parameters) <= params.keys()]
        if len(matches) != 1:
            raise ConfigError(f"point {params} holds the parameters of no single theory")
        params = {**params, "theory": matches[0]}
    return point_from_entry({**params, "L": int(params["L"])})


def log_to(path: str | Path) -> None:
    """Send a job's logging, progress bars and tracebacks to its log file.

    fieldflow's own errors then print one line to the log (shown by Snakemake) instead of a
    traceback (:mod:`fieldflow.errors`).
    """
    errors.install()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stderr = open(path, "a", buffering=1)  # lives as long as the job
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        force=True,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


def script_setup(snakemake: Any) -> None:
    """The start of every workflow script: logs to ``snakemake.log[0]`` (:func:`log_to`),
    and torch computes on the job's ``threads``."""
    log_to(snakemake.log[0])
    torch.set_num_threads(snakemake.threads)
