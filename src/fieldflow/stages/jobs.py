"""What every job shares: its log file, its device and the point it works at."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import torch

from fieldflow import errors
from fieldflow.config import ConfigError
from fieldflow.lattice import Point


def resolve_device(device: str) -> torch.device:
    """'auto' → CUDA when torch sees a GPU, else CPU; 'cuda' without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config key 'device': cuda, but torch sees no CUDA GPU")
    return torch.device(device)


def point_of(params: dict[str, Any]) -> Point:
    """The :class:`~fieldflow.lattice.Point` of a config point (keys L, s, lam[, name])."""
    return Point(int(params["L"]), float(params["s"]), float(params["lam"]), params.get("name", ""))


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
