"""U(1) points in the config, the rules' point parameters and flow training: a config
point names its theory (fieldflow.config, fieldflow.config_points, fieldflow.stages.jobs,
fieldflow.stages.training with the gauge family of fieldflow.flows)."""

import math

import pytest
import torch
from test_config import check

from fieldflow import samplers
from fieldflow.config import ConfigError, init_sources, job_seed, points
from fieldflow.flows import FAMILIES, GaugeFlow, build_flow, load_model, transfer
from fieldflow.lattice import Point
from fieldflow.reader import ModelRecord
from fieldflow.stages.jobs import point_of
from fieldflow.stages.training import train_stage
from fieldflow.theory import PHI4, U1, point_from_key
from fieldflow.training import config_from_dict, train
from fieldflow.u1.point import U1Point

U1_STUDY = {
    "points": [
        {"theory": "u1", "name": "small", "L": 4, "beta": 2.0},
        {"theory": "u1", "L": 8, "beta": 2.5, "init_from": "small"},
    ],
    "flows": ["gauge"],
    "mcmc": ["hmc"],
}
PHI4_POINT = {"L": 8, "s": -4.0, "lam": 8.0}
U1_POINT = {"theory": "u1", "L": 8, "beta": 2.0}
HMC_ONLY = {"flows": [], "mcmc": ["hmc"]}
TRAINING = {"steps": 3, "ess_every": 10, "ess_samples": 16, "batch_size": 8}
HYPER = {"n_layers": 2, "hidden_channels": [4], "kernel_size": 3, "n_bins": 2}


def test_u1_study_validates_to_u1_points(schema):
    config = check(U1_STUDY, schema)
    study = points(config)
    assert study == [U1Point(4, 2.0, "small"), U1Point(8, 2.5)]
    assert [p.key for p in study] == ["L4_beta2", "L8_beta2.5"]
    assert all(p.theory is U1 for p in study)
    assert init_sources(config) == {"L8_beta2.5": "L4_beta2"}
    # Listing gauge fills its section with the schema's defaults.
    assert config["gauge"] == {
        "n_layers": 16,
        "hidden_channels": [8],
        "kernel_size": 3,
        "n_bins": 4,
        "prior": "haar",
        "training": {"lr": 0.001, "batch_size": 128},
    }
    # The entries stay as written: no key is added to a point.
    assert config["points"] == U1_STUDY["points"]


def test_phi4_configs_get_no_theory_or_gauge_keys(schema):
    config = check({"points": [PHI4_POINT]}, schema)
    assert config["points"] == [PHI4_POINT] and "gauge" not in config
    assert points(config) == [Point(8, -4.0, 8.0)]
    explicit = check({"points": [{"theory": "phi4", **PHI4_POINT}]}, schema)
    assert points(explicit) == points(config)
    assert job_seed(explicit, "train", "realnvp", "L8_s-4_lam8") == job_seed(
        config, "train", "realnvp", "L8_s-4_lam8"
    )


def test_a_study_is_of_one_theory(schema):
    config = {"points": [PHI4_POINT, {"theory": "u1", "L": 8, "beta": 2.5}], **HMC_ONLY}
    with pytest.raises(ConfigError) as info:
        check(config, schema)
    [problem] = info.value.problems()
    assert problem.startswith("config key 'points[1].theory': u1, but points[0] is phi4")
    keys = [U1Point(8, 2.5).key, Point(8, -4.0, 8.0).key]
    assert [point_from_key(key) for key in keys] == [U1Point(8, 2.5), Point(8, -4.0, 8.0)]


def test_point_of_reads_keys_and_rule_parameters():
    u1 = U1Point(8, 2.5, "b")
    assert point_of({**u1.columns(), "name": "b"}) == u1
    assert point_of({"theory": "u1", "L": 8.0, "beta": "2.5", "name": "b"}) == u1
    assert point_of("L8_beta2.5") == U1Point(8, 2.5)
    phi4 = point_of({"L": 8, "s": -4, "lam": 8, "name": "E1"})
    assert phi4 == Point(8, -4.0, 8.0, "E1") and isinstance(phi4.s, float)
    assert point_of("L8_s-4_lam8") == Point(8, -4.0, 8.0)
    with pytest.raises(ConfigError, match="no single theory"):
        point_of({"L": 8, "s": 1.0, "lam": 0.5, "beta": 2.0})
    with pytest.raises(ConfigError, match="no single theory"):
        point_of({"L": 8})


def test_every_sampler_says_which_theories_it_samples():
    for name in samplers.names():
        assert samplers.supports(name, PHI4.name) != (name == "gauge")
        assert samplers.supports(name, U1.name) == (name in ("gauge", "hmc"))
    assert [name for name, family in FAMILIES.items() if family.supports("u1")] == ["gauge"]
    assert FAMILIES["gauge"].L_multiple == 4 and FAMILIES["realnvp"].L_multiple == 2


@pytest.mark.parametrize(
    ("config", "key", "reason"),
    [
        ({"points": [{**U1_POINT, "beta": 0}]}, "'points[0].beta'", "minimum of 0"),
        ({"points": [{**U1_POINT, "beta": -1.5}]}, "'points[0].beta'", "minimum of 0"),
        ({"points": [{**U1_POINT, "beta": math.nan}]}, "'points[0].beta'", "finite"),
        ({"points": [{**U1_POINT, "beta": math.inf}]}, "'points[0].beta'", "finite"),
        ({"points": [{**U1_POINT, "beta": "1e-3x"}]}, "'points[0].beta'", "not of type"),
        ({"points": [{"theory": "u1", "L": 8}]}, "'points[0].beta'", "required but missing"),
        ({"points": [{**U1_POINT, "s": 1.0}]}, "'points[0].s'", "not a key of a u1 point"),
        ({"points": [{**U1_POINT, "lam": 1.0}]}, "'points[0].lam'", "not a key of a u1 point"),
        ({"points": [{**U1_POINT, "kappa": 0.2}]}, "'points[0].kappa'", "not a key of a u1"),
        ({"points": [{**U1_POINT, "lam_K": 0.2}]}, "'points[0].lam_K'", "not a key of a u1"),
        ({"points": [{**PHI4_POINT, "beta": 2.0}]}, "'points[0].beta'", "not a key of a phi4"),
        (
            {"points": [{"theory": "phi4", "L": 8, "beta": 2.0}]},
            "'points[0].beta'",
            "not a key of a phi4",
        ),
        ({"points": [{**U1_POINT, "theory": "su2"}]}, "'points[0].theory'", "is not one of"),
        ({"points": [{**U1_POINT, "betta": 2.0}]}, "'points[0].betta'", "unknown key"),
        ({"points": [U1_POINT], "flows": ["realnvp"]}, "'flows[0]'", "does not sample u1"),
        ({"points": [U1_POINT], "flows": ["gauge", "cnf"]}, "'flows[1]'", "does not sample u1"),
        ({"points": [PHI4_POINT], "flows": ["gauge"]}, "'flows[0]'", "does not sample phi4"),
        ({"points": [U1_POINT], "flows": [], "mcmc": ["cluster"]}, "'mcmc[0]'", "cluster does"),
        ({"points": [U1_POINT], "flows": [], "mcmc": ["hmc_tuned"]}, "'mcmc[0]'", "hmc_tuned"),
        (
            {"points": [U1_POINT], **HMC_ONLY, "hmc": {"trajectory_length": "auto"}},
            "'hmc.trajectory_length'",
            "for phi4 points only",
        ),
        ({"points": [{**U1_POINT, "L": 6}], "flows": ["gauge"]}, "'points[0].L'", "by 4"),
        ({"points": [{**U1_POINT, "L": 2}], "flows": ["gauge"]}, "'points[0].L'", "by 4"),
        (
            {"points": [{**PHI4_POINT, "name": "a"}, {**U1_POINT, "init_from": "a"}], **HMC_ONLY},
            "'points[1].theory'",
            "a study is of one theory",
        ),
        (
            {"points": [{**U1_POINT, "name": "a"}, {**U1_POINT, "L": 4, "init_from": "a"}]},
            "'points[1].init_from'",
            "not smaller",
        ),
        ({"points": [U1_POINT], **HMC_ONLY, "free_energy": {}}, "'free_energy.points'", "phi4"),
        (
            {"points": [U1_POINT], **HMC_ONLY, "free_energy": {"points": ["L8_beta2"]}},
            "'free_energy.points'",
            "it names the u1 point points[0]",
        ),
        ({"points": [U1_POINT], "gauge": {"kernel_size": 2}}, "'gauge.kernel_size'", "odd"),
        ({"points": [U1_POINT], "gauge": {"n_bins": 0}}, "'gauge.n_bins'", "minimum"),
        ({"points": [U1_POINT, {**U1_POINT, "beta": 2}]}, "'points[1]'", "same point"),
    ],
)
def test_bad_u1_input_is_one_line_naming_the_key(schema, config, key, reason):
    with pytest.raises(ConfigError) as info:
        check({"flows": ["gauge"], **config}, schema)
    [problem] = info.value.problems()
    assert key in problem and reason in problem, problem


def train_at(tmp_path, name, point, family="gauge", training=TRAINING, **kwargs):
    """Train ``family`` (HYPER) at ``point`` by train_stage; the model file's path."""
    model = tmp_path / f"{name}.pt"
    csv = tmp_path / f"{name}.csv"
    train_stage(point, family, HYPER, training, "cpu", 0, model, csv, progress=False, **kwargs)
    return model


def test_train_stage_writes_a_gauge_flow_that_reads_back(tmp_path):
    point = {"L": 4, "beta": 2.0, "name": ""}
    model = train_at(tmp_path, "a", point, checkpoint=tmp_path / "ckpt" / "a.pt")
    flow, meta = load_model(model)
    assert isinstance(flow, GaugeFlow) and flow.L == 4
    record = ModelRecord.of(meta)
    assert record.family == "gauge" and record.train_steps == 3 and record.point == point
    assert not (tmp_path / "ckpt" / "a.pt").exists()
    # The same training in memory (train_stage seeds torch, then builds and trains).
    torch.manual_seed(0)
    trained = build_flow("gauge", 4, HYPER)
    train(trained, U1Point(4, 2.0), config_from_dict(TRAINING), 0, progress=False)
    fresh = build_flow("gauge", 4, HYPER)
    pairs = zip(trained.parameters(), fresh.parameters(), strict=True)
    assert any(not torch.equal(p, q) for p, q in pairs)
    # The same log q, in float64, by sampling and by the inverse.
    flow, trained = flow.double(), trained.double()
    links, log_q = trained.sample(16, torch.Generator().manual_seed(1))
    read_links, read_log_q = flow.sample(16, torch.Generator().manual_seed(1))
    assert torch.equal(read_links, links) and torch.equal(read_log_q, log_q)
    assert torch.equal(flow.log_prob(links), trained.log_prob(links))
    assert torch.allclose(flow.log_prob(links), log_q, atol=1e-10, rtol=0)


def test_gauge_flow_transfers_to_a_larger_lattice(tmp_path):
    small = train_at(tmp_path, "a", {"L": 4, "beta": 2.0})
    steps = {**TRAINING, "steps": 1}
    large = train_at(tmp_path, "b", {"L": 8, "beta": 2.0}, training=steps, init_model=small)
    a, _ = load_model(small)
    b, meta = load_model(large)
    assert isinstance(b, GaugeFlow) and b.L == 8 and ModelRecord.of(meta).train_steps == 1
    # One Adam step of size 1e-3 moves every weight by at most ~1e-3.
    for x, y in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(x, y, atol=2e-3)
    copied = transfer(a, "gauge", 8, HYPER)
    for x, y in zip(a.parameters(), copied.parameters(), strict=True):
        assert torch.equal(x, y)


def test_train_stage_refuses_a_family_of_another_theory(tmp_path):
    with pytest.raises(ConfigError, match="realnvp does not sample u1"):
        train_at(tmp_path, "a", {"L": 4, "beta": 2.0}, family="realnvp")
    assert not (tmp_path / "a.pt").exists()
