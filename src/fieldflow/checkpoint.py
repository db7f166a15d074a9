"""Training checkpoints: everything a killed run needs to resume exactly where it stopped.

A checkpoint is written atomically and records :func:`~fieldflow.flows.tensor_digest` of
its tensors, which reading it verifies: ``torch.load`` does not check its archive's CRCs.
"""

from __future__ import annotations

import glob
import logging
from pathlib import Path
from typing import Any

import torch

from fieldflow.flows import Flow, ModelFileError, tensor_digest
from fieldflow.guard import Guard
from fieldflow.io import remove_stale_partials

log = logging.getLogger(__name__)


def training_state(
    flow: Flow,
    optimizer: torch.optim.Optimizer,
    generators: tuple[torch.Generator, torch.Generator],
    step: int,
    seconds: float,
    history: list[dict[str, float]],
    recoveries: int,
    fingerprint: str,
    guard: Guard,
) -> dict[str, Any]:
    """Everything a resumed run needs to continue exactly where this one stopped.

    ``generators``: the training noise and the guard's probe, whose states both decide
    what a resumed run returns.
    """
    generator, probe = generators
    return {
        "model": flow.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "probe": probe.get_state(),
        "step": step,
        "seconds": seconds,
        "history": history,
        "recoveries": recoveries,
        "fingerprint": fingerprint,
        **guard.state(),
    }


def write_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` atomically with :func:`tensor_digest` of all its tensors.

    A partial file of a writer killed before this process started is removed first.
    """
    tmp = path.with_name(path.name + ".partial")
    state = {**state, "sha256": tensor_digest(state)}
    remove_stale_partials(path.parent, glob.escape(tmp.name))
    for attempt in (1, 2):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(state, tmp)
            break
        except (FileNotFoundError, RuntimeError):
            # A job finishing just now may remove the empty directory between mkdir and
            # save (io.discard of its own checkpoint): make it again, once.
            if attempt == 2 or path.parent.is_dir():
                raise
    tmp.replace(path)


def read_checkpoint(path: Path, fingerprint: str) -> dict | None:
    """The state saved in ``path``, or None if it belongs to other settings.

    A checkpoint that cannot be loaded, or whose tensors (model, optimizer, generator) do
    not match their recorded hash, is a :class:`ModelFileError`; one without a hash
    (written by an older fieldflow) is used with a warning.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        recorded = state.pop("sha256", None)
        actual = tensor_digest(state)
    except Exception as err:
        raise ModelFileError(
            f"checkpoint {path} is corrupt ({' '.join(str(err).split())}); delete it to train "
            "from scratch"
        ) from err
    if recorded is None:
        log.warning(
            "checkpoint %s records no hash of its tensors (written by an older "
            "fieldflow): they cannot be verified",
            path,
        )
    elif actual != recorded:
        raise ModelFileError(
            f"checkpoint {path} is corrupt (its tensors do not match their recorded hash); "
            "delete it to train from scratch"
        )
    if state.get("fingerprint") != fingerprint:
        log.warning("checkpoint %s belongs to other settings; starting from scratch", path)
        return None
    return state
