"""The continuous flow: symmetries, exact divergence, integrator order, transfer, training."""

import math

import pytest
import torch

from fieldflow.flows import build_flow
from fieldflow.flows.cnf import EquivariantVectorField, build_cnf, transfer_cnf
from fieldflow.flows.sitewise import SiteSpline
from fieldflow.flows.zeromode import ZeroModeSpline
from fieldflow.lattice import Point, action
from fieldflow.training import TrainConfig, train

SMALL = {"n_features": 3, "n_time_basis": 3, "kernel_radius": 1}


def randomise(module, seed=1, scale=0.3):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def random_flow(L, seed=1, **hyper):
    return randomise(build_cnf(L, **hyper).double(), seed)


def noise(L, batch=3, seed=2):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((batch, L, L), generator=g, dtype=torch.float64)


SYMMETRIES = {
    "translate_x": lambda phi: phi.roll(1, -2),
    "translate_y": lambda phi: phi.roll(1, -1),
    "rotate": lambda phi: phi.rot90(1, (-2, -1)),
    "reflect": lambda phi: phi.flip(-1),
    "transpose": lambda phi: phi.transpose(-2, -1),
    "negate": lambda phi: -phi,
}


@pytest.mark.parametrize("L", [4, 5])
@pytest.mark.parametrize("symmetry", SYMMETRIES)
def test_flow_is_equivariant(L, symmetry):
    g = SYMMETRIES[symmetry]
    flow = random_flow(L, n_steps=6)
    z = noise(L)
    phi, log_det = flow.transform(z)
    phi_g, log_det_g = flow.transform(g(z))
    assert torch.allclose(phi_g, g(phi), atol=1e-12)
    assert torch.allclose(log_det_g, log_det, atol=1e-12)
    assert not torch.allclose(phi, z, atol=1e-3)


@pytest.mark.parametrize("L", [4, 5])
@pytest.mark.parametrize("symmetry", SYMMETRIES)
def test_flow_with_every_global_layer_is_equivariant(L, symmetry):
    g = SYMMETRIES[symmetry]
    flow = random_flow(
        L,
        n_steps=6,
        zero_mode=True,
        zero_mode_bins=3,
        zero_mode_bound=2.0,
        site_spline=True,
        site_spline_bins=3,
        site_spline_bound=1.5,
        spectral_scale=True,
    )
    z = 1.5 * noise(L)
    phi, log_det = flow.transform(z)
    phi_g, log_det_g = flow.transform(g(z))
    assert torch.allclose(phi_g, g(phi), atol=1e-12)
    assert torch.allclose(log_det_g, log_det, atol=1e-12)


def test_divergence_is_trace_of_autograd_jacobian():
    L = 4
    field = randomise(EquivariantVectorField(L, 4, None, 3).double())
    phi = noise(L, batch=1)[0]
    t = torch.tensor(0.37, dtype=torch.float64)
    _, div = field(phi[None], t)
    jac = torch.autograd.functional.jacobian(
        lambda x: field(x.reshape(1, L, L), t)[0].reshape(-1), phi.reshape(-1)
    )
    assert div.item() == pytest.approx(jac.trace().item(), abs=1e-12)


def test_rk4_is_fourth_order():
    L = 4
    z = noise(L)
    exact = random_flow(L, n_steps=320, **SMALL).transform(z)
    errors = []
    for n in (20, 40, 80):
        phi, log_det = random_flow(L, n_steps=n, **SMALL).transform(z)
        errors.append(torch.stack([(phi - exact[0]).norm(), (log_det - exact[1]).norm()]))
    # Doubling the steps divides the error by 2^order; the log-det is slower to settle.
    orders = [
        torch.log2(coarse / fine) for coarse, fine in zip(errors[:-1], errors[1:], strict=True)
    ]
    assert all((order > 3.0).all() for order in orders)
    assert ((orders[-1] > 3.5) & (orders[-1] < 4.5)).all()


def test_dopri5_agrees_with_rk4():
    L = 4
    z = noise(L)
    rk4 = random_flow(L, n_steps=60, **SMALL)
    dopri5 = random_flow(L, solver="dopri5", rtol=1e-9, atol=1e-11, **SMALL)
    phi, log_det = rk4.transform(z)
    phi_d, log_det_d = dopri5.transform(z)
    assert torch.allclose(phi_d, phi, atol=1e-6)
    assert torch.allclose(log_det_d, log_det, atol=1e-6)
    z_back, log_det_inv = dopri5.inverse(phi_d)
    assert torch.allclose(z_back, z, atol=1e-6)
    assert torch.allclose(log_det_inv, -log_det_d, atol=1e-6)


@pytest.mark.parametrize(("L", "L_new", "radius"), [(4, 8, None), (5, 8, None), (4, 7, 1)])
def test_transfer_keeps_the_kernel_and_pads_it_with_zeros(L, L_new, radius):
    small = random_flow(L, n_features=3, n_time_basis=3, kernel_radius=radius, n_steps=40)
    large = transfer_cnf(small, L_new)
    assert (
        large.L == L_new and large.layers[0].hyperparameters() == small.layers[0].hyperparameters()
    )
    # The orbit coefficients are copied, so they match bit for bit ...
    c, c_new = small.layers[0].field.coefficients, large.layers[0].field.coefficients
    assert torch.equal(c_new[..., : c.shape[-1]], c) and not c_new[..., c.shape[-1] :].any()
    # ... but the kernel is an einsum over tensors of another shape, whose vectorisation
    # (and so its rounding) depends on the CPU: equal to rounding, zero where padded.
    t = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)
    w, w_new = small.layers[0].field.kernel(t), large.layers[0].field.kernel(t)
    reach = L // 2  # minimal-image displacements present at L
    for dx in range(-(L_new // 2), L_new // 2 + 1):
        for dy in range(-(L_new // 2), L_new // 2 + 1):
            value = w_new[..., dx % L_new, dy % L_new]
            if max(abs(dx), abs(dy)) <= reach:
                torch.testing.assert_close(
                    value,
                    w[..., dx % L, dy % L],
                    rtol=1e-12,
                    atol=1e-14,
                    msg=f"displacement {(dx, dy)}",
                )
            else:
                assert not value.any(), (dx, dy)
    z = noise(L_new)
    phi, log_det = large.transform(z)
    z_back, log_det_inv = large.inverse(phi)
    assert not torch.allclose(phi, z, atol=1e-3)
    assert torch.allclose(z_back, z, atol=1e-5)
    assert torch.allclose(log_det_inv, -log_det, atol=1e-5)
    with pytest.raises(ValueError, match="larger"):
        transfer_cnf(large, L)


def test_transfer_with_zero_mode_and_site_spline_moves_every_layer():
    small = random_flow(4, zero_mode=True, zero_mode_bins=3, site_spline=True, **SMALL, n_steps=40)
    large = transfer_cnf(small, 8)
    spline, ode, site = large.layers
    assert isinstance(spline, ZeroModeSpline) and spline.L == 8
    assert isinstance(site, SiteSpline) and torch.equal(site.widths, small.layers[2].widths)
    assert torch.equal(ode.field.coefficients, small.layers[1].field.coefficients)  # radius 1
    assert spline.log_scale.item() == pytest.approx(small.layers[0].log_scale.item() + math.log(2))
    z = noise(8)
    phi, log_det = large.transform(z)
    z_back, log_det_inv = large.inverse(phi)
    assert torch.allclose(z_back, z, atol=1e-5) and torch.allclose(log_det_inv, -log_det, atol=1e-5)


def test_is_identity():
    flow = build_cnf(4, zero_mode=True)
    assert flow.layers[1].is_identity()
    assert not randomise(flow).layers[1].is_identity()


def test_defaults_and_errors():
    assert build_flow("cnf", 8, {}).n_parameters() == 545
    assert build_flow("cnf", 8, {"zero_mode": True}).n_parameters() == 545 + 3 * 8 + 2
    recipe = build_flow("cnf", 8, {"zero_mode": True, "site_spline": True, "kernel_radius": 1})
    assert recipe.n_parameters() == 6 * 6 * 3 + 5 + (3 * 8 + 2) + 3 * 8
    assert build_cnf(8, kernel_radius=1).n_parameters() == 6 * 6 * 3 + 5
    with pytest.raises(ValueError, match="solver"):
        build_cnf(4, solver="euler")
    with pytest.raises(ValueError, match="L >= 2"):
        build_cnf(1)


def test_training_lowers_the_loss():
    point = Point(4, -4.0, 8.0)
    torch.manual_seed(0)
    flow = build_cnf(point.L, n_steps=4)  # few steps: this test is about training

    @torch.no_grad()
    def loss():
        phi, log_q = flow.sample(1024, generator=torch.Generator().manual_seed(9))
        return (log_q + action(phi, point.s, point.lam)).mean().item()

    before = loss()
    config = TrainConfig(steps=100, ess_every=50, ess_samples=128)
    result = train(flow, point, config, seed=0, progress=False)
    assert result.steps == 100 and [row["step"] for row in result.history] == [50, 100]
    assert loss() < before - 0.5


def test_discretisation_error_flags_a_stiff_field():
    from fieldflow.flows import build_flow

    assert build_flow("realnvp", 4, {"n_layers": 2}).discretisation_error(8) == 0.0
    flow = stiff_flow()
    coarse = flow.discretisation_error(32, torch.Generator().manual_seed(1))
    flow.layers[0].n_steps = 64
    fine = flow.discretisation_error(32, torch.Generator().manual_seed(1))
    assert coarse > 0.2 and fine < 1e-3 * coarse


def test_training_treats_integration_error_as_divergence_once_refinements_are_spent():
    from fieldflow.lattice import Point
    from fieldflow.training import TrainConfig, TrainingDiverged, train

    torch.manual_seed(0)
    flow = build_cnf(4, n_features=2, n_time_basis=2, n_steps=4)
    config = TrainConfig(
        steps=6,
        ess_every=2,
        ess_samples=16,
        batch_size=8,
        lr=0.05,
        max_discretisation_error=1e-9,
        max_recoveries=1,
        max_refinements=1,
    )
    with pytest.raises(TrainingDiverged, match="integration error .* 1 refinements"):
        train(flow, Point(4, -4.0, 8.0), config, seed=0, progress=False)
    assert flow.layers[0].n_steps == 8


def stiff_flow(n_steps=2):
    torch.manual_seed(0)
    flow = build_cnf(4, n_steps=n_steps).double()
    with torch.no_grad():
        flow.layers[0].field.coefficients.normal_(0.0, 0.3)  # stiff for 2 RK4 steps
    return flow


def test_refine_doubles_n_steps_and_the_check_then_passes():
    from fieldflow.guard import Guard

    flow = stiff_flow()
    ode = flow.layers[0]
    assert flow.discretisation_error(64, torch.Generator().manual_seed(1)) > 0.2
    guard = Guard(flow, Point(4, -4.0, 8.0), 0.2, 5, 64, torch.Generator().manual_seed(1))
    assert guard.measure(step=7) is not None
    assert ode.n_steps == 2 * 2**guard.refinements and guard.refinements >= 1
    assert guard.error <= 0.2 and guard.best.step == 7
    assert ode.integration == {"n_steps": ode.n_steps, "rtol": 1e-6, "atol": 1e-8}
    dopri = build_cnf(4, solver="dopri5").layers[0]
    dopri.refine()
    assert dopri.n_steps == 20 and (dopri.rtol, dopri.atol) == pytest.approx((1e-8, 1e-10))


def test_model_file_with_the_override_rebuilds_the_refined_flow(tmp_path):
    from fieldflow.flows import load_model, save_model

    flow = stiff_flow().float()
    flow.layers[0].refine()
    flow.layers[0].refine()
    override = flow.layers[0].integration
    save_model(tmp_path / "m.pt", flow, "cnf", {"n_steps": 2, **override})
    loaded, _ = load_model(tmp_path / "m.pt")
    assert loaded.layers[0].n_steps == 8
    z = noise(4).float()
    assert torch.equal(loaded.transform(z)[1], flow.transform(z)[1])


def test_kinetic_energy_of_a_linear_field_is_known():
    # n_features 1, one time mode, radius 0: v = c φ, so φ_t = e^{ct} z and
    # ∫₀¹ ‖v‖² dt = c² ‖z‖² (e^{2c} − 1) / (2c).
    c = 0.7
    for solver, n_steps in (("rk4", 40), ("dopri5", 1)):
        flow = build_cnf(
            4,
            n_features=1,
            n_time_basis=1,
            kernel_radius=0,
            n_steps=n_steps,
            solver=solver,
            rtol=1e-10,
            atol=1e-12,
        ).double()
        with torch.no_grad():
            flow.layers[0].field.coefficients.fill_(c)
        z = noise(4)
        phi, log_det, energy = flow.layers[0].forward_with_kinetic(z)
        norm = z.square().sum(dim=(-2, -1))
        exact = c**2 * norm * math.expm1(2 * c) / (2 * c) / 16
        assert torch.allclose(energy, exact, rtol=1e-7), solver
        assert torch.allclose(phi, z * math.exp(c), rtol=1e-7)
        assert torch.allclose(log_det, torch.full_like(log_det, 16 * c), rtol=1e-7)
        # RK4's φ and log det do not depend on K; dopri5's steps do (K enters its error).
        plain, tolerance = flow.layers[0](z), 0.0 if solver == "rk4" else 1e-7
        assert torch.allclose(plain[0], phi, rtol=tolerance, atol=0.0)
        assert torch.allclose(plain[1], log_det, rtol=tolerance, atol=0.0)


def test_kinetic_energy_is_positive_and_its_gradient_reaches_the_field():
    flow = random_flow(4, n_steps=4, **SMALL)
    phi, log_q, energy = flow.sample_with_kinetic(8, torch.Generator().manual_seed(3))
    plain_phi, plain_log_q = flow.sample(8, torch.Generator().manual_seed(3))
    assert torch.equal(phi, plain_phi) and torch.equal(log_q, plain_log_q)
    assert energy.shape == (8,) and (energy > 0).all()
    energy.mean().backward()
    field = flow.layers[0].field
    assert field.coefficients.grad.abs().sum() > 0 and field.frequencies.grad.abs().sum() > 0
    identity = build_cnf(4, zero_mode=True, **SMALL).double()
    assert torch.equal(identity.sample_with_kinetic(4)[2], torch.zeros(4, dtype=torch.float64))


def test_transfer_refuses_a_flow_without_the_configured_zero_mode():
    from fieldflow.flows import transfer

    plain, with_zero_mode = build_cnf(4, **SMALL), build_cnf(4, zero_mode=True, **SMALL)
    with pytest.raises(ValueError, match="hyperparameters differ"):
        transfer(plain, "cnf", 8, {**SMALL, "zero_mode": True})
    with pytest.raises(ValueError, match="hyperparameters differ"):
        transfer(with_zero_mode, "cnf", 8, SMALL)
    assert transfer(with_zero_mode, "cnf", 8, {**SMALL, "zero_mode": True}).L == 8
