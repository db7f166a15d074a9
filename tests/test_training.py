import pytest
import torch

from fieldflow.flows import build_flow
from fieldflow.lattice import Point
from fieldflow.training import TrainConfig, TrainingDiverged, train

POINT = Point(4, -4.0, 8.0)
HYPER = {"n_layers": 2, "hidden_channels": [4]}


def fresh():
    torch.manual_seed(0)
    return build_flow("realnvp", 4, HYPER)


def test_training_lowers_loss_and_records_history():
    flow = fresh()
    result = train(
        flow, POINT, TrainConfig(steps=120, ess_every=20, ess_samples=128), seed=0, progress=False
    )
    assert result.steps == 120
    steps = [row["step"] for row in result.history]
    assert steps == list(range(20, 121, 20))
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert all(0 < row["ess"] <= 1 for row in result.history)
    assert [r["seconds"] for r in result.history] == sorted(r["seconds"] for r in result.history)


def test_wall_clock_budget():
    result = train(
        fresh(),
        POINT,
        TrainConfig(steps=None, max_seconds=0.5, ess_every=1000),
        seed=0,
        progress=False,
    )
    assert result.seconds >= 0.5 and result.steps >= 1
    with pytest.raises(ValueError, match="budget"):
        TrainConfig(steps=None, max_seconds=None)


def test_non_finite_loss_is_recovered_then_reported():
    flow = fresh()
    # An enormous learning rate on a tiny lattice makes the loss overflow.
    with pytest.raises(TrainingDiverged, match="non-finite"):
        train(
            flow,
            POINT,
            TrainConfig(steps=300, lr=1e6, grad_clip=None, ess_every=1000, max_recoveries=2),
            seed=0,
            progress=False,
        )


def test_transfer_saving_times_both_runs_to_the_same_target():
    import math

    import pandas as pd

    from fieldflow.savings import transfer_saving

    def history(seconds, ess):
        return pd.DataFrame({"step": range(len(ess)), "seconds": seconds, "loss": 0.0, "ess": ess})

    scratch = history([10, 20, 30, 40, 50], [0.1, 0.2, 0.4, 0.5, 0.6])
    transferred = history([10, 20, 30, 40, 50], [0.3, 0.45, 0.6, 0.7, 0.7])
    saving = transfer_saving(transferred, scratch, fraction=0.8)
    assert saving["target_ess"] == pytest.approx(0.8 * 0.5)  # 0.8 × mean of the last three
    assert saving["seconds_scratch"] == 30 and saving["seconds_transfer"] == 20
    assert saving["final_ess_transfer"] == pytest.approx(2.0 / 3.0)
    never = transfer_saving(history([10, 20], [0.01, 0.02]), scratch)
    assert math.isnan(never["seconds_transfer"])


BROKEN = Point(6, -4.0, 3.0)  # ordered phase: M/V near ±0.7


def zero_mode_cnf():
    torch.manual_seed(0)
    return build_flow(
        "cnf",
        BROKEN.L,
        {
            "n_features": 2,
            "n_time_basis": 2,
            "kernel_radius": 1,
            "n_steps": 4,
            "zero_mode": True,
            "site_spline": True,
        },
    )


def test_warm_up_finds_both_vacua_with_the_global_layers_alone():
    from fieldflow.training import warm_up

    flow = zero_mode_cnf()
    zero_mode, ode, site = flow.layers
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in (zero_mode, site)]
    config = TrainConfig(warmup_steps=300, lr=0.01)
    assert warm_up(flow, BROKEN, config, torch.Generator().manual_seed(1)) == 300
    assert ode.is_identity()  # the ODE's coefficients had no optimizer
    for module, state in zip((zero_mode, site), before, strict=True):
        assert all(not torch.equal(v, module.state_dict()[k]) for k, v in state.items())
    with torch.no_grad():
        phi, _ = flow.sample(4096, generator=torch.Generator().manual_seed(2))
    m = phi.mean(dim=(-2, -1))
    assert (m.abs() > 0.4).float().mean() > 0.9  # two separated vacua ...
    assert (m > 0).float().mean().item() == pytest.approx(0.5, abs=0.03)  # ... equally weighted


def test_warm_up_only_while_the_ode_is_the_identity():
    from fieldflow.training import warm_up

    config, generator = TrainConfig(warmup_steps=5), torch.Generator().manual_seed(1)
    assert warm_up(fresh(), POINT, config, generator) == 0  # no global layer
    assert warm_up(build_flow("cnf", 4, {}), POINT, config, generator) == 0  # nor an ODE alone
    assert warm_up(zero_mode_cnf(), BROKEN, TrainConfig(), generator) == 0  # none asked for
    trained = zero_mode_cnf()
    with torch.no_grad():
        trained.layers[1].field.coefficients.fill_(0.01)  # as after a transfer
    assert warm_up(trained, BROKEN, config, generator) == 0
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(warmup_steps=-1)


def test_train_warms_up_once_and_not_on_resume(tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    first = TrainConfig(steps=2, ess_every=2, ess_samples=64, checkpoint_every=2, warmup_steps=20)
    result = train(
        zero_mode_cnf(), BROKEN, first, seed=0, checkpoint=ckpt, fingerprint="a", progress=False
    )
    assert result.warmup_steps == 20 and result.steps == 2
    longer = TrainConfig(steps=4, ess_every=2, ess_samples=64, checkpoint_every=2, warmup_steps=20)
    resumed = train(
        zero_mode_cnf(), BROKEN, longer, seed=0, checkpoint=ckpt, fingerprint="a", progress=False
    )
    assert resumed.warmup_steps == 0 and resumed.steps == 4


TINY_CNF = {"n_features": 2, "n_time_basis": 2, "kernel_radius": 1, "n_steps": 4}


def tiny_cnf():
    torch.manual_seed(0)
    return build_flow("cnf", POINT.L, TINY_CNF)


def failing_after(monkeypatch, passes):
    """Make the integration check pass its first ``passes`` calls and fail every later one."""
    from fieldflow.flows import Flow

    calls = []

    def check(self, n, generator=None):
        calls.append(self.layers[0].n_steps)
        return 0.0 if len(calls) <= passes else 1.0

    monkeypatch.setattr(Flow, "discretisation_error", check)
    return calls


def test_a_failed_final_check_returns_the_best_measured_state(monkeypatch, caplog):
    calls = failing_after(monkeypatch, passes=3)  # the initial state, steps 20 and 40
    flow = tiny_cnf()
    config = TrainConfig(steps=60, ess_every=20, ess_samples=128, lr=0.01)
    with caplog.at_level("WARNING", logger="fieldflow.training"):
        result = train(flow, POINT, config, seed=0, progress=False)
    assert calls == [4, 4, 4, 4, 8, 16]  # the final check refined twice, in vain
    assert result.final_state == "best" and result.final_step in (20, 40)
    assert [row["step"] for row in result.history] == [20, 40]
    best = max(result.history, key=lambda row: row["ess"])
    assert result.final_step == best["step"] and result.final_ess == best["ess"]
    assert not flow.layers[0].is_identity()  # not the untrained flow
    assert flow.layers[0].n_steps == 4 and result.hyperparameter_override["n_steps"] == 4
    assert result.refinements == 2 and result.recoveries == 0
    assert "returning the best measured state" in caplog.text
    assert "failed the integration check" in caplog.text


def test_the_initial_state_only_when_nothing_trained_passed_and_said(monkeypatch, caplog):
    failing_after(monkeypatch, passes=1)  # the initial state alone passes
    flow = tiny_cnf()
    config = TrainConfig(steps=4, ess_every=1000, ess_samples=64, max_refinements=0)
    with caplog.at_level("WARNING", logger="fieldflow.training"):
        result = train(flow, POINT, config, seed=0, progress=False)
    assert result.final_state == "initial" and result.final_step == 0 and result.steps == 4
    assert flow.layers[0].is_identity()
    assert "returning the initial state, before training" in caplog.text


def test_no_state_that_passed_the_check_is_divergence(monkeypatch):
    failing_after(monkeypatch, passes=0)
    config = TrainConfig(steps=2, ess_every=1000, ess_samples=64, max_refinements=1)
    with pytest.raises(TrainingDiverged, match="no state of the run passed"):
        train(tiny_cnf(), POINT, config, seed=0, progress=False)


def test_a_failed_check_doubles_n_steps_and_training_goes_on(monkeypatch):
    from fieldflow.flows import Flow

    def check(self, n, generator=None):  # too coarse below 16 steps once trained
        ode = self.layers[0]
        return 1.0 if ode.n_steps < 16 and not ode.is_identity() else 0.0

    monkeypatch.setattr(Flow, "discretisation_error", check)
    flow = tiny_cnf()
    config = TrainConfig(steps=6, ess_every=2, ess_samples=64, lr=0.01)
    result = train(flow, POINT, config, seed=0, progress=False)
    assert result.refinements == 2 and result.recoveries == 0
    assert [row["step"] for row in result.history] == [2, 4, 6]  # no roll-back
    assert flow.layers[0].n_steps == 16 and result.hyperparameter_override["n_steps"] == 16
    assert result.final_state == "last" and result.final_step == 6


def test_the_final_check_refines_the_last_state(monkeypatch):
    from fieldflow.flows import Flow

    def check(self, n, generator=None):
        ode = self.layers[0]
        return 1.0 if ode.n_steps < 8 and not ode.is_identity() else 0.0

    monkeypatch.setattr(Flow, "discretisation_error", check)
    flow = tiny_cnf()
    config = TrainConfig(steps=40, ess_every=1000, ess_samples=256, lr=0.05)
    result = train(flow, POINT, config, seed=0, progress=False)
    assert result.final_state == "refined" and result.final_step == 40
    assert result.refinements == 1 and flow.layers[0].n_steps == 8
    assert result.hyperparameter_override == {"n_steps": 8, "rtol": 1e-6, "atol": 1e-8}


def test_an_earlier_state_replaces_the_last_only_if_measured_better_again():
    from fieldflow.guard import Guard

    flow = fresh()
    guard = Guard(flow, POINT, 0.2, 2, 256, torch.Generator().manual_seed(0))
    guard.best = guard.snapshot(2.0, 5)  # a recorded ESS no state can reach
    earlier = {k: v.clone() for k, v in flow.state_dict().items()}
    with torch.no_grad():
        next(flow.parameters()).add_(0.1)
    name, kept = guard.settle(10, -1.0, False, torch.Generator().manual_seed(1))
    assert name == "best" and kept.step == 5 and 0 < kept.ess <= 1  # measured again
    assert all(torch.equal(v, flow.state_dict()[k]) for k, v in earlier.items())
    with torch.no_grad():
        next(flow.parameters()).add_(0.1)
    last = {k: v.clone() for k, v in flow.state_dict().items()}
    name, kept = guard.settle(10, 1.5, False, torch.Generator().manual_seed(1))
    assert name == "last" and kept.step == 10
    assert all(torch.equal(v, flow.state_dict()[k]) for k, v in last.items())


def test_resume_keeps_the_refined_integration(tmp_path, monkeypatch):
    from fieldflow.flows import Flow

    def check(self, n, generator=None):
        ode = self.layers[0]
        return 1.0 if ode.n_steps < 8 and not ode.is_identity() else 0.0

    monkeypatch.setattr(Flow, "discretisation_error", check)
    settings = dict(ess_every=2, ess_samples=64, checkpoint_every=2, lr_schedule="constant")
    straight = tiny_cnf()
    train(straight, POINT, TrainConfig(steps=4, **settings), seed=3, progress=False)
    ckpt = tmp_path / "ckpt.pt"
    train(
        tiny_cnf(),
        POINT,
        TrainConfig(steps=2, **settings),
        seed=3,
        checkpoint=ckpt,
        fingerprint="a",
        progress=False,
    )
    resumed = tiny_cnf()
    result = train(
        resumed,
        POINT,
        TrainConfig(steps=4, **settings),
        seed=3,
        checkpoint=ckpt,
        fingerprint="a",
        progress=False,
    )
    assert resumed.layers[0].n_steps == 8 and result.refinements == 1
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.allclose(a, b)


def test_path_estimator_trains():
    flow = fresh()
    config = TrainConfig(steps=60, ess_every=30, ess_samples=128, estimator="path")
    result = train(flow, POINT, config, seed=0, progress=False)
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_kinetic_weight_needs_an_ode():
    with pytest.raises(ValueError, match="kinetic_weight"):
        train(fresh(), POINT, TrainConfig(steps=2, kinetic_weight=0.1), seed=0, progress=False)
