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
