"""Training checkpoints: a resumed run continues exactly; a damaged file names itself."""

import pytest
import torch

from fieldflow.flows import ModelFileError, build_flow
from fieldflow.lattice import Point
from fieldflow.training import TrainConfig, train

POINT = Point(4, -4.0, 8.0)
HYPER = {"n_layers": 2, "hidden_channels": [4]}


def fresh():
    torch.manual_seed(0)
    return build_flow("realnvp", 4, HYPER)


def test_resume_from_checkpoint_matches_uninterrupted_run(tmp_path):
    # The halted run stands in for a killed one: a constant rate makes its first 20 steps
    # those of the full run (a schedule is a function of the budget, which differs here).
    settings = TrainConfig(
        steps=40, ess_every=20, ess_samples=64, checkpoint_every=20, lr_schedule="constant"
    )
    straight = fresh()
    train(straight, POINT, settings, seed=3, progress=False)
    ckpt = tmp_path / "ckpt.pt"
    halted = fresh()
    first_half = TrainConfig(
        steps=20, ess_every=20, ess_samples=64, checkpoint_every=20, lr_schedule="constant"
    )
    train(halted, POINT, first_half, seed=3, checkpoint=ckpt, fingerprint="a", progress=False)
    resumed = fresh()
    result = train(
        resumed, POINT, settings, seed=3, checkpoint=ckpt, fingerprint="a", progress=False
    )
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
        "model": lambda: next(v for v in state["model"].values() if v.is_floating_point()),
        "optimizer": lambda: state["optimizer"]["state"][0]["exp_avg"],
        "generator": lambda: state["generator"],
    }[part]()
    tensor.view(-1)[0] += 1  # the recorded hash is kept: as if altered on disk
    torch.save(state, ckpt)
    longer = TrainConfig(steps=4, ess_every=2, ess_samples=64, checkpoint_every=2)
    with pytest.raises(
        ModelFileError,
        match=r"checkpoint .*ckpt\.pt is corrupt \(its tensors "
        r"do not match their recorded hash\); delete it",
    ) as info:
        train(fresh(), POINT, longer, seed=0, checkpoint=ckpt, fingerprint="a", progress=False)
    assert "\n" not in str(info.value)


def test_checkpoint_without_a_hash_resumes_with_a_warning(tmp_path, caplog):
    ckpt = tmp_path / "ckpt.pt"
    train(fresh(), POINT, SHORT, seed=0, checkpoint=ckpt, fingerprint="a", progress=False)
    state = torch.load(ckpt, weights_only=True)
    del state["sha256"]  # as written by an older fieldflow
    torch.save(state, ckpt)
    longer = TrainConfig(steps=4, ess_every=2, ess_samples=64, checkpoint_every=2)
    with caplog.at_level("WARNING", logger="fieldflow.checkpoint"):
        result = train(
            fresh(), POINT, longer, seed=0, checkpoint=ckpt, fingerprint="a", progress=False
        )
    assert result.steps == 4 and [r["step"] for r in result.history] == [2, 4]
    assert "ckpt.pt records no hash" in caplog.text
