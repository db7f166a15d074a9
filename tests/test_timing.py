"""Seconds per update from timed batches: median and its robust error."""

import math
import time

import pytest

from fieldflow.mcmc.timing import Stopwatch, per_update


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
    watch = Stopwatch()
    for _ in range(3):
        with watch.batch(4):
            time.sleep(0.004)
    found = watch.result()
    assert found.n_batches == 3 and found.seconds >= 0.001  # ≥ 4 ms over 4 configurations
    assert math.isfinite(found.error) and found.error >= 0
