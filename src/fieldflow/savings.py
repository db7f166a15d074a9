"""What transferring a trained flow to a larger lattice saves: results/tables/transfer.csv.

From the training histories (columns step, seconds, loss, ess) of a transferred run and a
from-scratch run of the same budget at the same point.
"""

from __future__ import annotations

import math

import pandas as pd

#: Columns of results/tables/transfer.csv.
TRANSFER_COLUMNS = (
    "flow",
    "L",
    "s",
    "lam",
    "source_L",
    "source_train_seconds",
    "target_ess",
    "seconds_transfer",
    "seconds_scratch",
    "final_ess_transfer",
    "final_ess_scratch",
)


def seconds_to_ess(history: pd.DataFrame, target: float) -> float:
    """Training seconds at the first ESS measurement ≥ ``target`` (NaN if never reached)."""
    reached = history[history["ess"] >= target]
    return float(reached["seconds"].iloc[0]) if len(reached) else math.nan


def final_ess(history: pd.DataFrame, last: int = 3) -> float:
    """Mean of the last ``last`` ESS measurements: one 1024-sample ESS is noisy."""
    return float(history["ess"].tail(last).mean()) if len(history) else math.nan


def transfer_saving(
    transferred: pd.DataFrame, scratch: pd.DataFrame, fraction: float = 0.8
) -> dict[str, float]:
    """How much sooner a transferred flow reaches the ESS a from-scratch one ends with.

    The target is ``fraction`` of the scratch run's final ESS (:func:`final_ess`); each
    run's time to it is the first measurement at or above it (NaN if never reached).
    """
    target = fraction * final_ess(scratch)
    return {
        "target_ess": target,
        "seconds_transfer": seconds_to_ess(transferred, target),
        "seconds_scratch": seconds_to_ess(scratch, target),
        "final_ess_transfer": final_ess(transferred),
        "final_ess_scratch": final_ess(scratch),
    }
