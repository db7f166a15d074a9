"""Seconds per update from timed batches: median and its robust error."""

import math
import time

import pytest

from fieldflow.mcmc.timing import Stopwatch, clock_for, per_update


def test_median_and_its_error_ignore_a_stalled_batch():
    # MAD of [1, 2, 3, 4, 100] about the median 3 is median(2, 1, 0, 1, 97) = 1.
    found = per_update([1.0, 2.0, 3.0, 4.0, 100.0])
    assert found.seconds == 3.0 and found.n_batches == 5
    assert found.error == pytest.approx(math.sqrt(math.pi / 2) * 1.4826 / math.sqrt(5))
    assert found.info() == {"seconds_per_update": 3.0, "seconds_per_update_error": found.error}


def test_too_few_batches_give_no_error():
    assert math.isnan(per_update([]).seconds) and per_update([]).n_batches == 0
    one = per_update([2.0])
    assert one.seconds == 2.0 and math.isnan(one.error)


def test_stopwatch_divides_each_batch_by_its_configurations():
    ticks = iter([0.0, 1.0, 1.0, 3.0, 3.0, 6.0])  # batches of 1, 2 and 3 s
    watch = Stopwatch(clock=lambda: next(ticks))
    for _ in range(3):
        with watch.batch(4):
            pass
    found = watch.result()
    assert found.n_batches == 3 and found.seconds == 0.5  # median of 0.25, 0.5, 0.75


def test_batches_cost_cpu_time_on_a_cpu_and_wall_time_on_a_gpu():
    assert clock_for("cpu") is time.process_time and Stopwatch().clock is time.process_time
    assert clock_for("cuda") is time.perf_counter
