import pytest
import torch

from fieldflow.flows import ModelFileError, build_flow
from fieldflow.lattice import Point
from fieldflow.training import TrainConfig, TrainingDiverged, train

POINT = Point(4, -4.0, 8.0)
HYPER = {"n_layers": 2, "hidden_channels": [4]}


def fresh():
    torch.manual_seed(0)
    return build_flow("realnvp", 4, HYPER)


def test_training_lowers_loss_and_records_history():
    flow = fresh()
    result = train(flow, POINT, TrainConfig(steps=120, ess_every=20, ess_samples=128), seed=0,
                   progress=False)  # fmt: skip
    assert result.steps == 120
    steps = [row["step"] for row in result.history]
    assert steps == list(range(20, 121, 20))
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert all(0 < row["ess"] <= 1 for row in result.history)
    assert [r["seconds"] for r in result.history] == sorted(r["seconds"] for r in result.history)


def test_wall_clock_budget():
    result = train(fresh(), POINT, TrainConfig(steps=None, max_seconds=0.5, ess_every=1000),
                   seed=0, progress=False)  # fmt: skip
    assert result.seconds >= 0.5 and result.steps >= 1
    with pytest.raises(ValueError, match="budget"):
        TrainConfig(steps=None, max_seconds=None)


def test_resume_from_checkpoint_matches_uninterrupted_run(tmp_path):
    # The halted run stands in for a killed one: a constant rate makes its first 20 steps
    # those of the full run (a schedule is a function of the budget, which differs here).
    settings = TrainConfig(steps=40, ess_every=20, ess_samples=64, checkpoint_every=20,
                           lr_schedule="constant")  # fmt: skip
    straight = fresh()
    train(straight, POINT, settings, seed=3, progress=False)
    ckpt = tmp_path / "ckpt.pt"
    halted = fresh()
    first_half = TrainConfig(
        steps=20, ess_every=20, ess_samples=64, checkpoint_every=20, lr_schedule="constant"
    )
    train(halted, POINT, first_half, seed=3, checkpoint=ckpt, fingerprint="a", progress=False)
    resumed = fresh()
    result = train(resumed, POINT, settings, seed=3, checkpoint=ckpt, fingerprint="a",
                   progress=False)  # fmt: skip
    assert result.steps == 40 and [r["step"] for r in result.history] == [20, 40]
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.allclose(a, b)


def test_corrupt_checkpoint_names_file(tmp_path):
    ckpt = tmp_path / "broken.pt"
    ckpt.write_bytes(b"\x00garbage")
    with pytest.raises(ModelFileError, match="broken.pt"):
        train(fresh(), POINT, TrainConfig(steps=2), seed=0, checkpoint=ckpt, progress=False)


SHORT = TrainConfig(steps=2, ess_every=2, ess_samples=64, checkpoint_every=2)


@pytest.mark.parametrize("part", ["model", "optimizer", "generator"])
def test_tampered_checkpoint_names_file(tmp_path, part):
    ckpt = tmp_path / "ckpt.pt"
    train(fresh(), POINT, SHORT, seed=0, checkpoint=ckpt, fingerprint="a", progress=False)
    state = torch.load(ckpt, weights_only=True)
    tensor = {
        "model": lambda: next(iter(state["model"].values())),
        "optimizer": lambda: state["optimizer"]["state"][0]["exp_avg"],
        "generator": lambda: state["generator"],
    }[part]()
    tensor.view(-1)[0] += 1  # the recorded hash is kept: as if altered on disk
    torch.save(state, ckpt)
    longer = TrainConfig(steps=4, ess_every=2, ess_samples=64, checkpoint_every=2)
    with pytest.raises(ModelFileError, match=r"checkpoint .*ckpt\.pt is corrupt \(its tensors "
                       r"do not match their recorded hash\); delete it") as info:  # fmt: skip
        train(fresh(), POINT, longer, seed=0, checkpoint=ckpt, fingerprint="a", progress=False)
    assert "\n" not in str(info.value)


def test_checkpoint_without_a_hash_resumes_with_a_warning(tmp_path, caplog):
    ckpt = tmp_path / "ckpt.pt"
    train(fresh(), POINT, SHORT, seed=0, checkpoint=ckpt, fingerprint="a", progress=False)
    state = torch.load(ckpt, weights_only=True)
    del state["sha256"]  # as written by an older fieldflow
    torch.save(state, ckpt)
    longer = TrainConfig(steps=4, ess_every=2, ess_samples=64, checkpoint_every=2)
    with caplog.at_level("WARNING", logger="fieldflow.training"):
        result = train(fresh(), POINT, longer, seed=0, checkpoint=ckpt, fingerprint="a",
                       progress=False)  # fmt: skip
    assert result.steps == 4 and [r["step"] for r in result.history] == [2, 4]
    assert "ckpt.pt records no hash" in caplog.text


def test_non_finite_loss_is_recovered_then_reported():
    flow = fresh()
    # An enormous learning rate on a tiny lattice makes the loss overflow.
    with pytest.raises(TrainingDiverged, match="non-finite"):
        train(flow, POINT, TrainConfig(steps=300, lr=1e6, grad_clip=None, ess_every=1000,
                                       max_recoveries=2), seed=0, progress=False)  # fmt: skip


def test_transfer_saving_times_both_runs_to_the_same_target():
    import math

    import pandas as pd

    from fieldflow.training import transfer_saving

    def history(seconds, ess):
        return pd.DataFrame({"step": range(len(ess)), "seconds": seconds, "loss": 0.0,
                             "ess": ess})  # fmt: skip

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
    return build_flow("cnf", BROKEN.L, {"n_features": 2, "n_time_basis": 2, "kernel_radius": 1,
                                        "n_steps": 4, "zero_mode": True,
                                        "site_spline": True})  # fmt: skip


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
    result = train(zero_mode_cnf(), BROKEN, first, seed=0, checkpoint=ckpt, fingerprint="a",
                   progress=False)  # fmt: skip
    assert result.warmup_steps == 20 and result.steps == 2
    longer = TrainConfig(steps=4, ess_every=2, ess_samples=64, checkpoint_every=2, warmup_steps=20)
    resumed = train(zero_mode_cnf(), BROKEN, longer, seed=0, checkpoint=ckpt, fingerprint="a",
                    progress=False)  # fmt: skip
    assert resumed.warmup_steps == 0 and resumed.steps == 4
