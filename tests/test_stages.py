import pandas as pd
import pytest
import torch

from fieldflow.flows import load_model
from fieldflow.stages import resolve_device, train_stage

TRAINING = {"steps": 20, "ess_every": 10, "ess_samples": 64, "batch_size": 16}


def test_train_stage_with_transfer(tmp_path):
    small = {"L": 4, "s": -4.0, "lam": 8.0}
    hyper = {"n_layers": 2, "hidden_channels": [4]}
    train_stage(small, "realnvp", hyper, TRAINING, "cpu", 0, tmp_path / "a.pt",
                tmp_path / "a.csv", progress=False)  # fmt: skip
    large = {"L": 6, "s": -4.0, "lam": 6.975}
    train_stage(large, "realnvp", hyper, {**TRAINING, "steps": 1}, "cpu", 0, tmp_path / "b.pt",
                tmp_path / "b.csv", init_model=tmp_path / "a.pt", progress=False)  # fmt: skip
    a, _ = load_model(tmp_path / "a.pt")
    b, meta = load_model(tmp_path / "b.pt")
    assert b.L == 6 and meta["meta"]["train_steps"] == 1
    # One Adam step of size 1e-3 moves every weight by at most ~1e-3.
    for x, y in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(x, y, atol=2e-3)
    assert list(pd.read_csv(tmp_path / "b.csv").columns) == ["step", "seconds", "loss", "ess"]
    with pytest.raises(ValueError, match="not cnf"):
        train_stage(large, "cnf", {}, TRAINING, "cpu", 0, tmp_path / "c.pt", tmp_path / "c.csv",
                    init_model=tmp_path / "a.pt", progress=False)  # fmt: skip


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA"):
            resolve_device("cuda")
