import shutil
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _single_thread():
    # Deterministic, and fair to the two cores CI has.
    torch.set_num_threads(1)


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    """tests/data/tiny.yaml in the test's directory: one point, realnvp and hmc, for the
    tests that need a whole run but not every sampler (through SLURM, interrupted)."""
    config = tmp_path / "tiny.yaml"
    shutil.copy(ROOT / "tests" / "data" / "tiny.yaml", config)
    return config


@pytest.fixture
def schema(root) -> Path:
    """The config schema of the workflow."""
    return root / "workflow" / "schemas" / "config.schema.yaml"
