"""Files of the pipeline in general: partial files of killed writers, discards, provenance.

Every writer of fieldflow (ensembles, model files, checkpoints) writes under a temporary
name and renames into place, so a killed job leaves a partial file, never one that looks
finished; :func:`remove_stale_partials` is how the next writer of the same output clears
them away.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def versions() -> str:
    """Versions of the packages that produced a result, as JSON."""
    import numpy as np
    import pyerrors
    import torch
    import xarray as xr
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


def remove_stale_partials(directory: Path, pattern: str) -> list[Path]:
    """Remove the entries of ``directory`` matching ``pattern`` older than this process.

    Atomic writers leave a partial file or store behind only when killed. Snakemake never
    runs two jobs for one output at once, so a partial last modified before this process
    started belongs to a dead writer; a newer one may be a live writer's and is kept.
    """
    import psutil

    started = psutil.Process().create_time()
    removed = []
    for entry in sorted(directory.glob(pattern)):
        try:
            if entry.lstat().st_mtime >= started:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:  # removed meanwhile by someone else
            continue
        log.info("removed %s, left behind by a writer that was killed", entry)
        removed.append(entry)
    return removed


def discard(path: str | Path, empty_parents: int = 0) -> None:
    """Delete the file ``path`` if present, then up to ``empty_parents`` empty parents."""
    path = Path(path)
    path.unlink(missing_ok=True)
    for parent in list(path.parents)[:empty_parents]:
        try:
            parent.rmdir()
        except OSError:  # not empty (another job's files), or not removable at all
            break


def one_line(error: BaseException) -> str:
    """The message of ``error`` with its whitespace, newlines included, collapsed."""
    return " ".join(str(error).split())
