r"""Seconds per update, timed in batches inside a run, with an error from their spread.

One wall-clock time of a whole job mixes the sampler's cost with whatever else shared the
cores meanwhile. Timing the production work batch by batch instead gives n rates
r_i = (seconds of batch i) / (configurations it produced), whose median is robust to the
batches that another job slowed down, and whose spread gives an error.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

#: σ = MAD_SCALE · MAD estimates the standard deviation of a normal distribution.
MAD_SCALE = 1.4826
#: The median of n normal draws has standard error sqrt(π/2) σ / √n (asymptotic).
MEDIAN_EFFICIENCY = math.sqrt(math.pi / 2.0)


@dataclass(frozen=True)
class UpdateTime:
    """Median seconds per update over ``n_batches`` timed batches, and its error."""

    seconds: float
    error: float
    n_batches: int

    def info(self) -> dict[str, float]:
        """The ensemble attrs (and ``samplers.csv`` columns) of this measurement."""
        return {"seconds_per_update": self.seconds, "seconds_per_update_error": self.error}


def per_update(rates: Sequence[float]) -> UpdateTime:
    r"""Median m of the per-batch rates r_i and its error sqrt(π/2) · 1.4826 MAD / √n.

    MAD = median |r_i − m|. For normally spread rates 1.4826 MAD estimates their σ, and
    sqrt(π/2) σ/√n is the standard error of a median of n. Both median and MAD ignore a
    minority of batches slowed by other jobs (or by warm-up), where a mean and standard
    deviation would follow them. The error covers fluctuations from batch to batch within
    the run, not a slowdown that lasts the whole run. NaN without rates; error NaN with
    fewer than two.

    Args:
        rates: seconds per update of each batch, shape (n,).
    """
    r = np.asarray(rates, dtype=np.float64)
    if r.size == 0:
        return UpdateTime(math.nan, math.nan, 0)
    median = float(np.median(r))
    if r.size < 2:
        return UpdateTime(median, math.nan, 1)
    mad = float(np.median(np.abs(r - median)))
    return UpdateTime(median, MEDIAN_EFFICIENCY * MAD_SCALE * mad / math.sqrt(r.size), r.size)


def clock_for(device: str) -> Callable[[], float]:
    """The clock that measures a batch's own cost on ``device``.

    On a CPU, the process's CPU time (``time.process_time``, all its threads): wall-clock
    time also counts the moments the job waits for a core that another job holds, and a
    long batch is always slowed in proportion, so the median does not remove it (two smoke
    studies on two shared cores gave wall-clock costs 37 % apart for the same flow and
    seed). Costs are then CPU core-seconds. On a GPU the work happens outside the process's
    CPU time, so there it is wall-clock time, each batch ending with the copy to the host.
    """
    return time.perf_counter if str(device).startswith("cuda") else time.process_time


class Stopwatch:
    """Collects the rates of timed batches: ``with watch.batch(n): ...`` per batch.

    ``clock`` defaults to CPU time, see :func:`clock_for`.
    """

    def __init__(self, clock: Callable[[], float] = time.process_time) -> None:
        self.rates: list[float] = []
        self.clock = clock

    @contextmanager
    def batch(self, n_updates: int) -> Iterator[None]:
        """Time the body as one batch that produces ``n_updates`` configurations."""
        start = self.clock()
        yield
        self.rates.append((self.clock() - start) / n_updates)

    def result(self) -> UpdateTime:
        """:func:`per_update` of the batches timed so far."""
        return per_update(self.rates)
