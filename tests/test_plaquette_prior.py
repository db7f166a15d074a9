"""The gauge flow's independent-plaquette prior: exact sampling, exact density, kept κ."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fieldflow.flows import build_gauge_flow, load_model
from fieldflow.flows.plaquette_prior import PlaquettePrior, links_from_plaquettes, von_mises
from fieldflow.stages import train_stage
from fieldflow.theory import U1
from fieldflow.u1.lattice import gauge_transform, plaquette, wrap
from fieldflow.u1.point import U1Point
from fieldflow.weights import ess


def test_links_from_plaquettes_have_those_plaquettes_but_the_last():
    g = torch.Generator().manual_seed(1)
    wanted = wrap(3.0 * torch.randn(5, 4, 4, dtype=torch.float64, generator=g))
    holonomies = torch.randn(5, 2, dtype=torch.float64, generator=g)
    got = plaquette(links_from_plaquettes(wanted, holonomies))
    off = wrap(got - wanted)
    off[:, -1, -1] = 0.0
    assert off.abs().max() < 1e-12
    # P* = (L-1, L-1) takes what the others leave: the plaquettes sum to 0 before wrapping.
    others = wanted.sum(dim=(1, 2)) - wanted[:, -1, -1]
    assert wrap(got[:, -1, -1] + others).abs().max() < 1e-12
    # Different holonomies, same plaquettes: different links (not a gauge copy of one).
    moved = links_from_plaquettes(wanted, holonomies + 0.5)
    assert torch.allclose(plaquette(moved), got, atol=1e-12)
    assert not torch.allclose(moved, links_from_plaquettes(wanted, holonomies))


def test_von_mises_draws_have_the_right_moments_and_are_reproducible():
    like = torch.zeros((), dtype=torch.float64)
    kappa = 3.0
    theta = von_mises(kappa, (40_000,), like, torch.Generator().manual_seed(2))
    assert theta.abs().max() <= math.pi
    # <cos θ> = I1(κ)/I0(κ), <sin θ> = 0.
    i0, i1 = (
        float(torch.special.i0e(torch.tensor(kappa))),
        float(torch.special.i1e(torch.tensor(kappa))),
    )
    cos = theta.cos().numpy()
    assert abs(cos.mean() - i1 / i0) < 4 * cos.std() / math.sqrt(cos.size)
    assert abs(theta.sin().mean()) < 4 * theta.sin().std() / math.sqrt(theta.numel())
    again = von_mises(kappa, (40_000,), like, torch.Generator().manual_seed(2))
    assert torch.equal(theta, again)
    with pytest.raises(ValueError, match="concentration"):
        von_mises(-1.0, (3,), like, None)


def test_plaquette_prior_log_z_and_ess_match_the_exact_theory():
    """Untrained (the couplings are the identity): log-mean-exp of the weights is the exact
    log Z, which needs the density's constant and the unit Jacobian of the change of
    variables; the ESS is I0(κ)²/I0(2κ) up to finite-volume corrections."""
    point = U1Point(4, 1.5)
    flow = build_gauge_flow(4, n_layers=4, prior="plaquette").double()
    flow.at_point(point)
    with torch.no_grad():
        links, log_q = flow.sample(8192, torch.Generator().manual_seed(3))
        assert torch.allclose(flow.log_prob(links), log_q, atol=1e-10)
        log_w = (-point.action(links) - log_q).numpy()
    shift = log_w.max()
    w = np.exp(log_w - shift)
    log_z = shift + math.log(w.mean())
    error = w.std() / w.mean() / math.sqrt(w.size)
    assert abs(log_z - U1.log_z(point)) < 4 * error
    i0 = torch.special.i0(torch.tensor([1.5, 3.0], dtype=torch.float64))
    assert ess(log_w) == pytest.approx(float(i0[0] ** 2 / i0[1]), abs=0.03)


def test_plaquette_prior_is_gauge_invariant_and_needs_its_point():
    prior = PlaquettePrior(4, 2.0)
    g = torch.Generator().manual_seed(4)
    like = torch.zeros((), dtype=torch.float64)
    links = prior.sample(6, like, g)
    alpha = 2 * math.pi * torch.rand(6, 4, 4, dtype=torch.float64, generator=g)
    assert torch.allclose(prior.log_prob(gauge_transform(links, alpha)), prior.log_prob(links))
    flow = build_gauge_flow(4, n_layers=2, prior="plaquette")
    with pytest.raises(ValueError, match="at_point"):
        flow.sample(2)
    with pytest.raises(ValueError, match="prior"):
        build_gauge_flow(4, prior="gaussian")


def test_the_train_stage_gives_the_prior_its_beta_and_the_model_keeps_it(tmp_path):
    model = tmp_path / "gauge.pt"
    train_stage(
        {"theory": "u1", "L": 4, "beta": 2.5},
        "gauge",
        {"n_layers": 2, "hidden_channels": [2], "prior": "plaquette"},
        {"steps": 2, "batch_size": 8, "ess_every": 1, "ess_samples": 16, "lr": 1e-3},
        "cpu",
        seed=5,
        model_path=model,
        history_path=tmp_path / "history.csv",
        progress=False,
    )
    flow, _ = load_model(model)
    assert float(flow.prior_kappa) == 2.5
    links, log_q = flow.sample(4, torch.Generator().manual_seed(6))
    assert torch.allclose(flow.log_prob(links), log_q, atol=1e-4)


def test_at_kappa_zero_the_links_are_uniform_and_independent():
    """The log Z test cannot see the holonomies and gauge angles (neither e^{-S} nor q0
    depends on them), but the chain is exact only if they are uniform: at κ = 0 every
    link, every pair of links and both Polyakov loops have vanishing circular moments."""
    n, L = 20_000, 4
    links = PlaquettePrior(L, 0.0).sample(
        n, torch.zeros((), dtype=torch.float64), torch.Generator().manual_seed(7)
    )
    flat = links.reshape(n, -1)
    bound = 4.5 / math.sqrt(n)  # each moment has standard deviation 1/sqrt(2n)
    assert flat.cos().mean(0).abs().max() < bound and flat.sin().mean(0).abs().max() < bound
    pairs = (flat[:, :, None] - flat[:, None, :]).cos().mean(0)
    off_diagonal = pairs[~torch.eye(flat.shape[1], dtype=torch.bool)]
    assert off_diagonal.abs().max() < bound + 0.01  # 496 pairs: a little more room
    polyakov = torch.stack([links[:, 0].sum(dim=1)[:, 0], links[:, 1].sum(dim=2)[:, 0]], dim=1)
    assert polyakov.cos().mean(0).abs().max() < bound


def test_log_z_holds_with_trained_looking_couplings_and_after_transfer():
    """Random coupling weights (not the identity): q is still exact, so log-mean-exp of
    the weights is the exact log Z; a flow transferred to another β samples at its β."""
    torch.manual_seed(8)
    flow = build_gauge_flow(4, n_layers=4, hidden_channels=[4], prior="plaquette").double()
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    for beta in (1.0, 3.0):
        point = U1Point(4, beta)
        flow.at_point(point)
        assert float(flow.prior_kappa) == beta
        with torch.no_grad():
            links, log_q = flow.sample(8192, torch.Generator().manual_seed(9))
            assert torch.allclose(flow.log_prob(links), log_q, atol=1e-9)
            log_w = (-point.action(links) - log_q).numpy()
        w = np.exp(log_w - log_w.max())
        log_z = log_w.max() + math.log(w.mean())
        assert abs(log_z - U1.log_z(point)) < 4 * w.std() / w.mean() / math.sqrt(w.size)
    with pytest.raises(ValueError, match="U\\(1\\) point"):
        from fieldflow.lattice import Point

        flow.at_point(Point(4, -4.0, 6.0))
