"""The reverse-KL objective and the training settings."""

import pytest
import torch

from fieldflow.flows import build_flow
from fieldflow.lattice import Point, action
from fieldflow.objective import TrainConfig, reverse_kl

POINT = Point(4, -4.0, 8.0)
HYPER = {"n_layers": 2, "hidden_channels": [4]}


def tiny_cnf():
    torch.manual_seed(0)
    return build_flow(
        "cnf", 4, {"n_features": 2, "n_time_basis": 2, "kernel_radius": 1, "n_steps": 4}
    )


def test_kinetic_weight_zero_is_the_plain_loss():
    flow = tiny_cnf()
    with torch.no_grad():
        flow.layers[0].field.coefficients.normal_(0.0, 0.1)
    objective, kl = reverse_kl(flow, POINT, TrainConfig(), torch.Generator().manual_seed(4))
    phi, log_q = flow.sample(64, generator=torch.Generator().manual_seed(4))
    assert torch.equal(objective, kl)
    assert torch.equal(kl, (log_q + action(phi, POINT.s, POINT.lam)).mean())
    weighted, kl_k = reverse_kl(
        flow, POINT, TrainConfig(kinetic_weight=0.5), torch.Generator().manual_seed(4)
    )
    _, _, energy = flow.sample_with_kinetic(64, torch.Generator().manual_seed(4))
    assert torch.equal(kl_k, kl)
    assert weighted.item() == pytest.approx(kl.item() + 0.5 * energy.mean().item(), rel=1e-6)
    assert energy.mean() > 0


def test_path_gradient_is_the_plain_gradient_without_the_score_term():
    torch.manual_seed(0)
    flow = build_flow("realnvp", 4, HYPER).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))

    def gradient(loss):
        flow.zero_grad()
        loss.backward()
        return torch.cat([p.grad.flatten() for p in flow.parameters()])

    plain = gradient(reverse_kl(flow, POINT, TrainConfig(), torch.Generator().manual_seed(5))[0])
    path_objective, kl = reverse_kl(
        flow, POINT, TrainConfig(estimator="path"), torch.Generator().manual_seed(5)
    )
    assert path_objective.item() == pytest.approx(kl.item(), abs=1e-9)
    path = gradient(path_objective)
    phi, _ = flow.sample(64, generator=torch.Generator().manual_seed(5))
    score = gradient(flow.log_prob(phi.detach()).mean())  # zero in expectation
    assert torch.allclose(plain, path + score, atol=1e-8)
    assert not torch.allclose(path, plain, atol=1e-3)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("kinetic_weight", -0.1),
        ("kinetic_weight", float("nan")),
        ("estimator", "score"),
        ("max_refinements", -1),
    ],
)
def test_bad_training_settings_name_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        TrainConfig(**{key: value})
