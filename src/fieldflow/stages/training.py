"""Stages of the flows' training: train one flow at one point, of any theory its family
samples (a φ⁴ family at a φ⁴ point, the gauge flow at a U(1) point), and tabulate what
starting from a smaller lattice's flow saved (``init_from``)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from fieldflow import io
from fieldflow.config import ConfigError
from fieldflow.flows import (
    FAMILIES,
    ModelFileError,
    build_flow,
    load_model,
    save_model,
    transfer,
)
from fieldflow.reader import ModelRecord
from fieldflow.savings import TRANSFER_COLUMNS, transfer_saving
from fieldflow.stages.jobs import point_of, resolve_device
from fieldflow.training import HISTORY_COLUMNS, config_from_dict, train

log = logging.getLogger(__name__)


def train_stage(
    point: dict[str, Any],
    family: str,
    hyperparameters: dict[str, Any],
    training: dict[str, Any],
    device: str,
    seed: int,
    model_path: str | Path,
    history_path: str | Path,
    checkpoint: str | Path | None = None,
    init_model: str | Path | None = None,
    progress: bool = True,
) -> None:
    """Train one flow at one point; write the model and its history CSV.

    ``point``: the rule's point dict (:func:`~fieldflow.stages.jobs.point_of`), of a theory
    the family samples (:meth:`~fieldflow.flows.FlowFamily.supports`). With ``init_model``,
    start from a flow of the same family trained at a smaller L
    (:func:`fieldflow.flows.transfer`) instead of the identity.

    Raises:
        ConfigError: the family does not sample the point's theory.
    """
    p = point_of(point)
    if family in FAMILIES and not FAMILIES[family].supports(p.theory.name):
        raise ConfigError(
            f"flow family {family} does not sample {p.theory.name} points ({p.key}); "
            f"it samples {list(FAMILIES[family].theories)}"
        )
    torch.manual_seed(seed)
    flow = build_flow(family, p.L, hyperparameters)
    if init_model is not None:
        source, meta = load_model(init_model)
        source_family = ModelRecord.of(meta).family
        if source_family != family:
            raise ModelFileError(f"{init_model} holds a {source_family} flow, not {family}")
        flow = transfer(source, family, p.L, hyperparameters)
        log.info("initialised from %s (L=%d)", init_model, source.L)
    flow.at_point(p)
    flow = flow.to(resolve_device(device))
    # A transferred flow is fine-tuned at transfer_lr: at lr 0.01 the cnf's field blew up
    # within 50 steps after L = 12 -> 20, at 0.002 it did not (docs/decisions.md).
    transfer_lr = training.get("transfer_lr")
    if init_model is not None and transfer_lr is not None:
        log.info("fine-tuning the transferred flow at transfer_lr = %g", transfer_lr)
    settings = config_from_dict(
        {**training, "lr": transfer_lr} if init_model is not None and transfer_lr else training
    )
    fingerprint = hashlib.sha256(
        json.dumps(
            [point, family, hyperparameters, training, seed, str(init_model)], sort_keys=True
        ).encode()
    ).hexdigest()
    result = train(flow, p, settings, seed, checkpoint, fingerprint, progress=progress)
    history = pd.DataFrame(result.history, columns=list(HISTORY_COLUMNS))
    Path(history_path).parent.mkdir(parents=True, exist_ok=True)
    history.to_csv(history_path, index=False)
    # A refined ODE (more RK4 steps after a failed integration check) is saved as refined.
    save_model(
        model_path,
        flow.cpu(),
        family,
        {**hyperparameters, **result.hyperparameter_override},
        point=point,
        train_seconds=result.seconds,
        train_steps=result.steps,
        recoveries=result.recoveries,
        seed=seed,
        final_state=result.final_state,
        final_step=result.final_step,
        refinements=result.refinements,
    )
    if checkpoint is not None:
        io.discard(checkpoint, empty_parents=2)  # results/checkpoints/{flow}/ when empty
    log.info("trained %s at %s: %d steps in %.1f s", family, p.key, result.steps, result.seconds)


def transfer_stage(runs: list[dict[str, Any]], table_path: str | Path) -> pd.DataFrame:
    """Write results/tables/transfer.csv: the training time saved by ``init_from``.

    Args:
        runs: one dict per (flow, transferred point) with keys ``flow``, ``transferred``
            and ``scratch`` (training-history CSVs of the same point, started from the
            smaller lattice's flow and from scratch) and ``source_model`` (that flow).
        table_path: where the table goes.
    """
    rows = []
    for run in runs:
        transferred = pd.read_csv(run["transferred"])
        scratch = pd.read_csv(run["scratch"])
        source = ModelRecord.of(load_model(run["source_model"])[1])
        target = point_of(run["point"])
        rows.append(
            {
                "flow": run["flow"],
                **target.columns(),
                "source_L": source.L,
                "source_train_seconds": source.train_seconds,
                **transfer_saving(transferred, scratch),
            }
        )
    table = pd.DataFrame(rows, columns=TRANSFER_COLUMNS)
    Path(table_path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(table_path, index=False)
    for r in table.itertuples():
        log.info(
            "%s L=%d from L=%d: ESS %.3f after %.0f s (scratch: %.0f s)",
            r.flow,
            r.L,
            r.source_L,
            r.target_ess,
            r.seconds_transfer,
            r.seconds_scratch,
        )
    return table
