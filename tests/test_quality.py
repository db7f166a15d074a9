"""The quality gate: an estimate its own chain cannot support is flagged, with the reason."""

import numpy as np
import pandas as pd
import torch

from fieldflow import quality
from fieldflow.analysis import Estimate
from fieldflow.flows import build_flow, save_model
from fieldflow.stages import observables_stage, sample_flow_stage


def test_judge_applies_wolffs_rule_of_thumb():
    good = Estimate(1.0, 0.01, tau_int=5.0, tau_int_error=0.5)
    assert quality.judge(good, 500, []) == quality.Quality(True, "")
    verdict = quality.judge(good, 499, [])
    assert not verdict.reliable and "run of 499 < 100 τ_int = 500" in verdict.reason
    nan = (
        Estimate(
            float("nan"),
        )
        * 1
        if False
        else Estimate(float("nan"), 0.0, 0.5, 0.0)
    )
    assert quality.judge(nan, 10_000, []).reason == "no estimate"
    inherited = quality.judge(good, 10_000, ["only 3 accepted moves in 10000 (< 100)"])
    assert not inherited.reliable and inherited.reason.startswith("only 3 accepted")


def test_chain_problems():
    rng = np.random.default_rng(0)
    both_signs = rng.standard_normal((4, 1000))
    assert quality.chain_problems(4000, accepted=2000, effective=500.0,
                                  magnetization=both_signs) == []  # fmt: skip
    assert "accepted" in quality.chain_problems(4000, accepted=99)[0]
    assert "ESS·N" in quality.chain_problems(4000, effective=99.0)[0]
    assert "ESS·N" in quality.chain_problems(4000, effective=float("nan"))[0]
    stuck = np.abs(both_signs)
    assert quality.chain_problems(4000, magnetization=stuck) == ["M never changed sign"]
    # Visits both signs, but one far more often than symmetry allows.
    lopsided = np.where(rng.random((4, 1000)) < 0.9, 1.0, -1.0)
    (problem,) = quality.chain_problems(4000, magnetization=lopsided)
    assert "stuck in one vacuum" in problem


def test_a_flow_that_cannot_move_is_flagged_without_any_reference(tmp_path):
    """The broken-phase failure, cheaply: an untrained flow (the Gaussian prior) at a point
    whose field sits near ±v. Its chain is exact but barely moves; no other sampler runs."""
    torch.manual_seed(0)
    point = {"L": 6, "s": -6.0, "lam": 0.5}  # site potential −2φ² + φ⁴/2: minima at |φ| = √2
    save_model(tmp_path / "m.pt", build_flow("realnvp", 6, {"n_layers": 2}), "realnvp",
               {"n_layers": 2}, train_seconds=1.0, train_steps=0)  # fmt: skip
    sampling = {"n_chains": 2, "n_samples": 2048, "burn_in": 0, "batch_size": 1024,
                "precision": "float64"}  # fmt: skip
    sample_flow_stage(tmp_path / "m.pt", point, sampling, "cpu", 1, tmp_path / "e.zarr",
                      "realnvp")  # fmt: skip
    observables_stage(tmp_path / "e.zarr", tmp_path / "o.csv", reweighted_path=tmp_path / "r.csv",
                      correlator_path=tmp_path / "c.csv")  # fmt: skip
    for table in ("o.csv", "r.csv"):
        rows = pd.read_csv(tmp_path / table)
        assert not rows["reliable"].any(), rows
        assert rows["reason"].str.contains("effective proposals").all()
    chain = pd.read_csv(tmp_path / "o.csv")
    assert chain["reason"].str.contains("accepted moves").all()
