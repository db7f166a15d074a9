"""The quality gate: an estimate its own chain cannot support is flagged, with the reason."""

import math

import numpy as np
import pandas as pd
import torch

from fieldflow import quality
from fieldflow.analysis import Estimate
from fieldflow.flows import build_flow, save_model
from fieldflow.flows.base import Bijection, Flow
from fieldflow.lattice import Point
from fieldflow.mcmc.metropolis import flow_proposals, independence_metropolis
from fieldflow.stages import observables_stage, sample_flow_stage
from fieldflow.training import TrainConfig, train


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
    assert (
        quality.chain_problems(4000, accepted=2000, effective=500.0, magnetization=both_signs) == []
    )
    assert "accepted" in quality.chain_problems(4000, accepted=99)[0]
    assert "ESS·N" in quality.chain_problems(4000, effective=99.0)[0]
    assert "ESS·N" in quality.chain_problems(4000, effective=float("nan"))[0]
    stuck = np.abs(both_signs)
    assert quality.chain_problems(4000, magnetization=stuck) == ["M never changed sign"]
    # Each chain in its own vacuum, half of them in each: <sign M> = 0 exactly, and yet
    # no chain ever crossed (HMC at L = 24 in the broken phase).
    split = stuck * np.array([1.0, -1.0, 1.0, -1.0])[:, None]
    assert quality.chain_problems(4000, magnetization=split) == [
        "M never changed sign within any of the 4 chains"
    ]
    # One chain crosses, three stay put: still most chains never sampled a crossing.
    one_crosses = np.concatenate([both_signs[:1], split[1:]])
    assert quality.chain_problems(4000, magnetization=one_crosses) == [
        "M never changed sign within 3 of the 4 chains"
    ]
    half = np.concatenate([both_signs[:2], split[2:]])
    assert quality.chain_problems(4000, magnetization=half) == []
    # Visits both signs, but one far more often than symmetry allows.
    lopsided = np.where(rng.random((4, 1000)) < 0.9, 1.0, -1.0)
    (problem,) = quality.chain_problems(4000, magnetization=lopsided)
    assert "stuck in one vacuum" in problem


def test_a_flow_that_cannot_move_is_flagged_without_any_reference(tmp_path):
    """The broken-phase failure, cheaply: an untrained flow (the Gaussian prior) at a point
    whose field sits near ±v. Its chain is exact but barely moves; no other sampler runs."""
    torch.manual_seed(0)
    point = {"L": 6, "s": -6.0, "lam": 0.5}  # site potential −2φ² + φ⁴/2: minima at |φ| = √2
    save_model(
        tmp_path / "m.pt",
        build_flow("realnvp", 6, {"n_layers": 2}),
        "realnvp",
        {"n_layers": 2},
        train_seconds=1.0,
        train_steps=0,
    )
    sampling = {
        "n_chains": 2,
        "n_samples": 2048,
        "burn_in": 0,
        "batch_size": 1024,
        "precision": "float64",
    }
    sample_flow_stage(tmp_path / "m.pt", point, sampling, "cpu", 1, tmp_path / "e.zarr", "realnvp")
    observables_stage(
        tmp_path / "e.zarr",
        tmp_path / "o.csv",
        reweighted_path=tmp_path / "r.csv",
        correlator_path=tmp_path / "c.csv",
    )
    for table in ("o.csv", "r.csv"):
        rows = pd.read_csv(tmp_path / table)
        assert not rows["reliable"].any(), rows
        assert rows["reason"].str.contains("effective proposals").all()
    chain = pd.read_csv(tmp_path / "o.csv")
    assert chain["reason"].str.contains("accepted moves").all()


BROKEN = {"L": 6, "s": -4.0, "lam": 3.0}  # ordered phase: M/V near ±0.7


def test_an_odd_flow_visits_both_vacua_and_gives_zero_magnetization(tmp_path):
    """Issue 11: a Z2-equivariant flow (the cnf's broken-phase layers) proposes both vacua
    equally, so its chain tunnels at every few proposals and ⟨M⟩ = 0 within errors."""
    torch.manual_seed(0)
    hyper = {
        "n_features": 2,
        "n_time_basis": 2,
        "kernel_radius": 1,
        "n_steps": 4,
        "zero_mode": True,
        "site_spline": True,
    }
    flow = build_flow("cnf", 6, hyper)
    train(
        flow,
        Point(**BROKEN),
        TrainConfig(steps=20, warmup_steps=300, lr=0.01, ess_every=20, ess_samples=256),
        seed=1,
        progress=False,
    )
    save_model(tmp_path / "m.pt", flow, "cnf", hyper, train_seconds=1.0, train_steps=20)
    sampling = {
        "n_chains": 2,
        "n_samples": 2048,
        "burn_in": 0,
        "batch_size": 1024,
        "precision": "float64",
    }
    sample_flow_stage(tmp_path / "m.pt", BROKEN, sampling, "cpu", 1, tmp_path / "e.zarr", "cnf")
    observables_stage(tmp_path / "e.zarr", tmp_path / "o.csv", tunnelling_path=tmp_path / "t.csv")
    rows = pd.read_csv(tmp_path / "o.csv").set_index("observable")
    assert rows["reliable"].all(), rows
    m, abs_m = rows.loc["magnetization"], rows.loc["abs_magnetization"]
    assert abs_m["value"] > 0.6  # ordered: |M|/V near v ...
    assert abs(m["value"]) < 4 * m["error"] < 0.2  # ... and the signed M averages to 0
    assert m["tau_int"] < 4
    (tunnels,) = pd.read_csv(tmp_path / "t.csv").itertuples()
    assert tunnels.crossings > 500 and pd.isna(tunnels.bound)


def test_a_flow_collapsed_onto_one_vacuum_is_flagged():
    """Mode collapse, as a non-equivariant flow trained by reverse KL shows it: proposals
    from one vacuum only. Its chain is exact within that vacuum, and the sign test says so."""

    class OneVacuum(Bijection):  # φ = v + 0.3 z: the vacuum at +v, nothing of −v
        def __init__(self):
            super().__init__()
            self.v = torch.nn.Parameter(torch.tensor(0.7))

        def forward(self, z):
            return self.v + 0.3 * z, torch.full(z.shape[:1], z[0].numel() * math.log(0.3))

        def inverse(self, phi):
            return (phi - self.v) / 0.3, torch.full(phi.shape[:1], -phi[0].numel() * math.log(0.3))

    flow = Flow(6, [OneVacuum()]).double()
    proposals = flow_proposals(flow, Point(**BROKEN), 2048, 1024, torch.Generator().manual_seed(0))
    chain = independence_metropolis(proposals.log_weight[None], np.random.default_rng(0))
    m = proposals.phi.sum(axis=(-2, -1))[chain.index]
    assert "M never changed sign" in quality.chain_problems(2048, magnetization=m)
