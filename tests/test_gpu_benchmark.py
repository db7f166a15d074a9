"""benchmarks/gpu.py at tiny sizes on the CPU: every row is there and its numbers are finite.

The benchmark is meant for a GPU; this keeps its code paths (training, sampling, the
compiled vector field, HMC on and off the library's sampler) from rotting between GPU runs.
"""

import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

OPTIONS = {"base", "batch64", "compile", "tf32"}
SIZES = (4, 6)


@pytest.fixture(scope="module")
def output() -> str:
    """stdout of one tiny CPU run, shared by the tests of this module."""
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--tiny", "--device", "cpu"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def rows(output: str, table: str) -> list[list[str]]:
    """The data rows of one table: lines that start with its name and then an L."""
    split = [line.split() for line in output.splitlines()]
    return [tokens for tokens in split if tokens[:1] == [table] and tokens[1].isdigit()]


def finite(tokens: list[str]) -> list[float]:
    values = [float(token) for token in tokens]
    assert all(math.isfinite(v) for v in values), tokens
    return values


def test_header_names_device_torch_and_machine(output):
    header = output.splitlines()[0]
    assert header.startswith("# device: CPU") and "torch " in header and "machine: " in header
    assert output.splitlines()[-1].startswith("# total ")


def test_flow_table_has_one_finite_row_per_size_and_option(output):
    table = rows(output, "flow")
    assert sorted((int(r[1]), r[4]) for r in table) == sorted(
        (L, option) for L in SIZES for option in OPTIONS
    )
    for r in table:
        status = " ".join(r[16:])
        if r[4] == "compile" and status.startswith("FAILED"):
            continue  # torch.compile may be unavailable; the row says so
        assert status.startswith("ok"), r
        steps, s_per_step, ess, acceptance, rate = finite(r[8:13])
        assert steps >= 1 and s_per_step > 0 and rate > 0
        assert 0 < ess <= 1 and 0 <= acceptance <= 1
        assert r[13] == r[14] == "-"  # no GPU memory on a CPU
        finite(r[15:16])
    assert {r[7] for r in table} == {"highest", "high"}


def test_hmc_table_has_finite_rows_at_every_size(output):
    table = rows(output, "hmc")
    for L in SIZES:
        at_L = [r for r in table if int(r[1]) == L]
        assert any(r[4] == "hmc()" for r in at_L)
        assert {4, 16} <= {int(r[6]) for r in at_L}  # --tiny's chain counts
        for r in at_L:
            step_size, n_leapfrog, acceptance, rate = finite(r[7:11])
            assert step_size > 0 and n_leapfrog >= 1 and rate > 0
            assert 0 <= acceptance <= 1
