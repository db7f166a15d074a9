"""The shared bijection checks every flow family must pass (STYLE.md)."""

import pytest
import torch

from fieldflow.flows import (
    FAMILIES,
    ModelFileError,
    build_flow,
    load_model,
    save_model,
    tensor_digest,
)

L = 4
CASES = [
    ("realnvp", {"n_layers": 4, "hidden_channels": [4]}),
    ("realnvp", {"n_layers": 2, "hidden_channels": [4, 4], "z2_equivariant": True}),
    # A small bound puts part of the noise in the linear tails, so both regimes are checked.
    ("nsf", {"n_layers": 4, "hidden_channels": [4], "n_bins": 4, "bound": 1.5}),
    ("nsf", {"n_layers": 2, "hidden_channels": [4, 4], "n_bins": 5, "z2_equivariant": True}),
    # RK4 is exact only to O(h⁴): enough steps that the loose cnf tolerances below hold.
    ("cnf", {"n_features": 3, "n_time_basis": 3, "kernel_radius": 1, "n_steps": 60}),
    # The broken-phase recipe: a zero-mode spline first, a site spline last (bounds 2 and
    # 1.5: both regimes of each).
    (
        "cnf",
        {
            "n_features": 3,
            "n_time_basis": 3,
            "kernel_radius": 1,
            "n_steps": 60,
            "zero_mode": True,
            "zero_mode_bins": 3,
            "zero_mode_bound": 2.0,
            "site_spline": True,
            "site_spline_bins": 3,
            "site_spline_bound": 1.5,
        },
    ),
    # The momentum-mode scale before the ODE.
    (
        "cnf",
        {
            "n_features": 3,
            "n_time_basis": 3,
            "kernel_radius": 1,
            "n_steps": 60,
            "spectral_scale": True,
        },
    ),
]
#: The cnf is odd by construction, with or without its zero-mode spline.
Z2_CASES = [c for c in CASES if c[1].get("z2_equivariant") or c[0] == "cnf"]
#: Families whose inverse and log-det are exact only up to an ODE integrator's error.
LOOSE_ATOL = {"cnf": 1e-6}


def tolerance(family, atol):
    return max(atol, LOOSE_ATOL.get(family, 0.0))


def make_flow(family, hyper, seed=0, randomise=True):
    torch.manual_seed(seed)
    flow = build_flow(family, L, hyper).double()
    if randomise:
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for p in flow.parameters():
                p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return flow


def noise(batch=3, seed=2):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((batch, L, L), generator=g, dtype=torch.float64)


#: The families of φ⁴ fields, (batch, L, L); the gauge family is tests/test_gauge_flow.py's.
PHI4_FAMILIES = {name: family for name, family in FAMILIES.items() if family.supports("phi4")}


def test_every_family_is_covered():
    assert {family for family, _ in CASES} == set(PHI4_FAMILIES)


def test_each_family_says_what_it_needs_of_the_lattice():
    assert {n for n, f in PHI4_FAMILIES.items() if f.requires_even_L} == {"realnvp", "nsf"}
    assert {n for n, f in FAMILIES.items() if f.integrates_ode} == {"cnf"}
    for name, family in PHI4_FAMILIES.items():
        assert family.name == name
        if family.requires_even_L:
            with pytest.raises(ValueError, match="need an even L, got L=5"):
                family(5)
        else:
            assert family(5).L == 5


@pytest.mark.parametrize(("family", "hyper"), CASES)
def test_inverse_round_trip(family, hyper):
    flow = make_flow(family, hyper)
    z = noise()
    phi, log_det = flow.transform(z)
    z_back, log_det_inv = flow.inverse(phi)
    assert torch.allclose(z_back, z, atol=tolerance(family, 1e-10))
    assert torch.allclose(log_det_inv, -log_det, atol=tolerance(family, 1e-10))


@pytest.mark.parametrize(("family", "hyper"), CASES)
def test_log_det_equals_autograd_jacobian(family, hyper):
    flow = make_flow(family, hyper)
    z = noise(batch=2)
    _, log_det = flow.transform(z)
    for b in range(z.shape[0]):

        def f(x):
            return flow.transform(x.reshape(1, L, L))[0].reshape(-1)

        jac = torch.autograd.functional.jacobian(f, z[b].reshape(-1))
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign.item() != 0
        assert logabs.item() == pytest.approx(log_det[b].item(), abs=tolerance(family, 1e-9))


@pytest.mark.parametrize(("family", "hyper"), CASES)
def test_every_layer_inverse_log_det(family, hyper):
    # Per layer, so that errors of two layers cannot cancel: log |det ∂f⁻¹/∂y| is minus
    # the forward log-det at the image, and slogdet of the inverse's autograd Jacobian.
    flow = make_flow(family, hyper)
    y = noise(batch=2)
    for i, layer in enumerate(flow.layers):
        x, log_det = layer.inverse(y)
        assert torch.allclose(log_det, -layer(x)[1], atol=tolerance(family, 1e-10)), i
        for b in range(y.shape[0]):

            def f_inv(v, layer=layer):
                return layer.inverse(v.reshape(1, L, L))[0].reshape(-1)

            jac = torch.autograd.functional.jacobian(f_inv, y[b].reshape(-1))
            sign, logabs = torch.linalg.slogdet(jac)
            assert sign.item() != 0, i
            assert logabs.item() == pytest.approx(log_det[b].item(), abs=tolerance(family, 1e-9))


@pytest.mark.parametrize(("family", "hyper"), CASES)
def test_log_prob_matches_sample(family, hyper):
    flow = make_flow(family, hyper)
    phi, log_q = flow.sample(5, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(flow.log_prob(phi), log_q, atol=tolerance(family, 1e-9))


@pytest.mark.parametrize(("family", "hyper"), CASES)
def test_gradients_reach_every_parameter(family, hyper):
    flow = make_flow(family, hyper)
    phi, log_q = flow.sample(8, generator=torch.Generator().manual_seed(4))
    (log_q + (phi**4).sum(dim=(-2, -1))).mean().backward()
    for name, p in flow.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(("family", "hyper"), CASES)
def test_identity_at_initialisation_and_not_after_random_weights(family, hyper):
    z = noise()
    fresh = make_flow(family, hyper, randomise=False)
    phi, log_det = fresh.transform(z)
    assert torch.allclose(phi, z) and torch.allclose(log_det, torch.zeros(3, dtype=z.dtype))
    phi, log_det = make_flow(family, hyper).transform(z)
    assert not torch.allclose(phi, z, atol=1e-3)
    assert log_det.abs().max() > 1e-3


@pytest.mark.parametrize(("family", "hyper"), CASES)
def test_translation_equivariance(family, hyper):
    # Checkerboard masks are invariant under shifts that keep x + y's parity.
    flow = make_flow(family, hyper)
    z = noise()
    phi, log_det = flow.transform(z)
    for shift in ((2, 0), (1, 1), (0, 2)):
        shifted, log_det_s = flow.transform(z.roll(shift, (-2, -1)))
        assert torch.allclose(shifted, phi.roll(shift, (-2, -1)), atol=1e-10)
        assert torch.allclose(log_det_s, log_det, atol=1e-10)


@pytest.mark.parametrize(("family", "hyper"), Z2_CASES)
def test_z2_equivariance(family, hyper):
    flow = make_flow(family, hyper)
    z = noise()
    phi, log_det = flow.transform(z)
    phi_neg, log_det_neg = flow.transform(-z)
    assert torch.allclose(phi_neg, -phi, atol=1e-10)
    assert torch.allclose(log_det_neg, log_det, atol=1e-10)


def test_realnvp_tutorial_size():
    assert build_flow("realnvp", 8, {}).n_parameters() == 12_960


def test_odd_lattice_rejected():
    with pytest.raises(ValueError, match="even L"):
        build_flow("realnvp", 5, {})


def test_model_file_round_trip_and_errors(tmp_path):
    flow = make_flow("realnvp", {"n_layers": 2, "hidden_channels": [4]}).float()
    path = tmp_path / "model.pt"
    save_model(path, flow, "realnvp", {"n_layers": 2, "hidden_channels": [4]}, train_seconds=1.0)
    loaded, meta = load_model(path)
    z = noise().float()
    assert torch.allclose(loaded.transform(z)[0], flow.transform(z)[0])
    assert meta["meta"]["train_seconds"] == 1.0
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch archive")
    with pytest.raises(ModelFileError, match="bad.pt"):
        load_model(bad)


def tamper_tensor(path):
    """Flip one byte inside the largest tensor's data in a torch zip, keeping its size."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as archive:
        entries = [i for i in archive.infolist() if "/data/" in i.filename]
    entry = max(entries, key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    header = entry.header_offset
    name_length, extra_length = struct.unpack("<HH", raw[header + 26 : header + 30])
    raw[header + 30 + name_length + extra_length + entry.file_size // 2] ^= 0x10
    path.write_bytes(raw)


def test_tampered_model_file_names_the_file(tmp_path):
    hyper = {"n_layers": 2, "hidden_channels": [4]}
    path = tmp_path / "model.pt"
    save_model(path, make_flow("realnvp", hyper).float(), "realnvp", hyper)
    size = path.stat().st_size
    tamper_tensor(path)
    assert path.stat().st_size == size
    torch.load(path, weights_only=True)  # torch itself does not notice
    with pytest.raises(
        ModelFileError,
        match=r"model\.pt: its tensors do not match their "
        "recorded hash",
    ) as info:
        load_model(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("family", ["realnvp", "nsf"])
def test_model_files_that_saved_the_masks_still_load(tmp_path, family):
    # Before the couplings were one class they saved their masks: layers.<i>.frozen and
    # layers.<i>.active (float), or layers.<i>.active (bool).
    hyper = {"n_layers": 2, "hidden_channels": [4]}
    flow = make_flow(family, hyper).float()
    save_model(tmp_path / "old.pt", flow, family, hyper)
    payload = torch.load(tmp_path / "old.pt", weights_only=True)
    for i, layer in enumerate(flow.layers):
        payload["state_dict"][f"layers.{i}.frozen"] = (~layer.active).float()
        payload["state_dict"][f"layers.{i}.active"] = layer.active.float()
    payload["sha256"] = tensor_digest(payload["state_dict"])
    torch.save(payload, tmp_path / "old.pt")
    loaded, _ = load_model(tmp_path / "old.pt")
    z = noise().float()
    assert torch.equal(loaded.transform(z)[0], flow.transform(z)[0])


def test_model_without_a_hash_loads_with_a_warning(tmp_path, caplog):
    hyper = {"n_layers": 2, "hidden_channels": [4]}
    path = tmp_path / "old.pt"
    save_model(path, make_flow("realnvp", hyper).float(), "realnvp", hyper)
    payload = torch.load(path, weights_only=True)
    del payload["sha256"]  # as written by an older fieldflow
    torch.save(payload, path)
    with caplog.at_level("WARNING", logger="fieldflow.flows"):
        flow, meta = load_model(path)
    assert flow.L == L and "sha256" not in meta
    assert "old.pt records no hash" in caplog.text


def test_tensor_digest_sees_every_tensor_of_nested_state():
    state = {
        "model": {"w": torch.zeros(3)},
        "optimizer": {"state": {0: {"step": torch.tensor(1.0)}}, "param_groups": [{"lr": 1e-3}]},
        "generator": torch.zeros(4, dtype=torch.uint8),
    }
    digest = tensor_digest(state)
    assert digest == tensor_digest({**state, "history": [{"loss": 1.0}]})  # only tensors count
    state["optimizer"]["state"][0]["step"] += 1
    assert tensor_digest(state) != digest
    state["optimizer"]["state"][0]["step"] -= 1
    state["generator"][0] = 1
    assert tensor_digest(state) != digest
    assert tensor_digest({"w": torch.zeros(2, 2)}) != tensor_digest({"w": torch.zeros(4)})
    assert tensor_digest({"w": torch.zeros(2)}) != tensor_digest({"w": torch.zeros(2).double()})


def test_save_model_removes_a_stale_partial_file(tmp_path):
    import os

    import psutil

    hyper = {"n_layers": 2, "hidden_channels": [4]}
    stale = tmp_path / "model.pt.partial"
    stale.write_bytes(b"left by a killed job")
    before = psutil.Process().create_time() - 60
    os.utime(stale, (before, before))
    save_model(tmp_path / "model.pt", make_flow("realnvp", hyper).float(), "realnvp", hyper)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


@pytest.mark.parametrize(("family", "hyper"), CASES)
def test_transfer_to_larger_lattice(family, hyper):
    from fieldflow.flows import transfer

    small = make_flow(family, hyper)
    large = transfer(small, family, 8, hyper)
    assert large.L == 8
    z = torch.randn((2, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    phi, log_det = large.transform(z)
    z_back, _ = large.inverse(phi)
    assert torch.allclose(z_back, z, atol=tolerance(family, 1e-10))
    if family != "cnf":  # coupling flows carry every parameter over unchanged
        for (name, a), b in zip(small.named_parameters(), large.parameters(), strict=True):
            assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="larger lattice"):
        transfer(large, family, 4, hyper)
