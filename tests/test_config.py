import copy
import re

import pytest
import yaml

from fieldflow.config import (
    ConfigError,
    canonical,
    job_seed,
    load,
    points,
    validate,
)

GOOD = {"points": [{"L": 8, "s": -4.0, "lam": 8.0}]}


def check(config, schema):
    return validate(copy.deepcopy(config), schema)


def test_defaults_filled(schema):
    config = check(GOOD, schema)
    assert config["flows"] == ["realnvp"]
    assert config["training"]["steps"] == 2500 and config["hmc"]["n_chains"] == 64
    assert config["mcmc"] == ["hmc"] and config["hmc"]["trajectory_length"] == 1.0
    # hmc_tuned shares hmc's keys, but chooses its trajectory length per point.
    assert config["hmc_tuned"]["trajectory_length"] == "auto"
    assert config["hmc_tuned"]["n_chains"] == 64 and config["cluster"]["variant"] == "sw"


def test_every_schema_sampler_is_registered(schema):
    from fieldflow import samplers

    spec = yaml.safe_load(schema.read_text())["properties"]
    assert spec["flows"]["items"]["enum"] == [
        n for n in samplers.names() if samplers.kind(n) == "flow"
    ]
    assert spec["mcmc"]["items"]["enum"] == list(samplers.MCMC)
    assert all(name in spec for name in samplers.names())  # each has a settings section


@pytest.mark.parametrize(
    ("config", "key", "reason"),
    [
        ({**GOOD, "trainig": {}}, "'trainig'", "unknown key"),
        ({**GOOD, "hmc": {"n_chainz": 3}}, "'hmc.n_chainz'", "unknown key"),
        ({}, "'points'", "required"),
        ({"points": [{"s": -4.0, "lam": 1.0}]}, "'points[0].L'", "required"),
        ({"points": [{"L": 8, "s": -4.0}]}, "'points[0].lam'", "required"),
        ({"points": [{"L": 7, "s": -4.0, "lam": 1.0}]}, "'points[0].L'", "odd"),
        ({"points": [{"L": 1, "s": -4.0, "lam": 1.0}]}, "'points[0].L'", "minimum of 2"),
        ({"points": [{"L": 8, "s": -4.0, "lam": -1.0}]}, "'points[0].lam'", "minimum of 0"),
        ({"points": [{"L": 8, "s": "x", "lam": 1.0}]}, "'points[0].s'", "not of type 'number'"),
        ({"points": [{"L": 8, "s": -1.0, "lam": 0.0}]}, "'points[0].s'", "s > 0"),
        ({**GOOD, "training": {"steps": "many"}}, "'training.steps'", "not of type"),
        ({**GOOD, "training": {"steps": None}}, "'training'", "steps, max_seconds"),
        ({**GOOD, "flows": ["glow"]}, "'flows[0]'", "is not one of"),
        ({**GOOD, "mcmc": ["hmc", "metropolis"]}, "'mcmc[1]'", "is not one of"),
        ({**GOOD, "flows": ["hmc"]}, "'flows[0]'", "is not one of"),
        ({**GOOD, "cluster": {"variant": "heatbath"}}, "'cluster.variant'", "is not one of"),
        ({**GOOD, "cluster": {"sweeps": 2}}, "'cluster.sweeps'", "unknown key"),
        ({**GOOD, "hmc_tuned": {"trajectory_length": -1}}, "'hmc_tuned.trajectory_length'", ""),
        ({**GOOD, "hmc": {"enabled": False}}, "'hmc.enabled' was removed", "'mcmc'"),
        ({"points": [{"L": 8, "s": -4.0, "lam": float("nan")}]}, "'points[0].lam'", "finite"),
        ({"points": [{"L": 8, "s": float("inf"), "lam": 1.0}]}, "'points[0].s'", "finite"),
        ({**GOOD, "training": {"lr": float("nan")}}, "'training.lr'", "finite"),
        ({"points": [{"L": 4.0, "s": -4.0, "lam": 1.0}]}, "'points[0].L'", "of type 'integer'"),
        ({**GOOD, "hmc": {"n_chains": 8.0}}, "'hmc.n_chains'", "of type 'integer'"),
        ({**GOOD, "training": {"steps": True}}, "'training.steps'", "not of type"),
        (
            {"points": [{"L": 8, "s": -4.0, "lam": 6.0000001}, {"L": 8, "s": -4.0, "lam": 6.0}]},
            "'points[1]'",
            "beyond the 6 digits",
        ),
        (
            {
                "points": [
                    {"name": "a", "L": 4, "s": -4.0, "lam": 8.0},
                    {"name": "a", "L": 8, "s": -4.0, "lam": 8.0},
                ]
            },
            "'points[1].name'",
            "already names points[0]",
        ),
        (
            {"points": [{"name": "a", "L": 4, "s": -4.0, "lam": 8.0, "init_from": "a"}]},
            "'points[0].init_from'",
            "its own flow",
        ),
        ({**GOOD, "flows": [], "mcmc": []}, "'flows'", "no samplers"),
        ({"points": [{"L": 8, "s": -4.0, "lam": "1e-3x"}]}, "'points[0].lam'", "not of type"),
        ({"points": GOOD["points"] * 2}, "'points[1]'", "same point"),
    ],
)
def test_bad_configs_name_the_key(schema, config, key, reason):
    with pytest.raises(ConfigError) as info:
        check(config, schema)
    assert key in str(info.value) and reason in str(info.value)


def test_canonical_settings_do_not_depend_on_key_order():
    a = {"n_chains": 4, "nested": {"b": 1, "a": [3, {"y": 1, "x": 2}]}}
    b = {"nested": {"a": [3, {"x": 2, "y": 1}], "b": 1}, "n_chains": 4}
    assert repr(a) != repr(b) and repr(canonical(a)) == repr(canonical(b))
    assert canonical(a) == a  # same values
    assert repr(canonical({**a, "n_chains": 5})) != repr(canonical(b))


def test_numeric_strings_are_numbers_where_a_number_is_expected(schema):
    """YAML 1.1 reads 1e-3 as a string; a physicist writes it anyway."""
    text = """
points:
  - {name: "1e3", L: 8, s: -4.0, lam: 1e-3}
training: {lr: 3e-4, max_seconds: 1e+2}
hmc_tuned: {trajectory_length: 2e0}
"""
    config = check(yaml.safe_load(text), schema)
    assert config["points"][0]["lam"] == 0.001 and config["points"][0]["name"] == "1e3"
    assert config["training"]["lr"] == 3e-4 and config["training"]["max_seconds"] == 100.0
    assert config["hmc_tuned"]["trajectory_length"] == 2.0


def test_point_keys_with_regex_characters_run(root, tmp_path):
    """s = 1e6 gives the key L4_s1e+06_lam0, whose "+" and "." must not act as a regex."""
    import subprocess
    import sys

    config = tmp_path / "big.yaml"
    config.write_text("points:\n  - {L: 4, s: 1.0e+6, lam: 0.0}\nflows: []\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(root / "Snakefile"),
            "-n",
            "--directory",
            str(tmp_path),
            "--configfile",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "results/ensembles/hmc/L4_s1e+06_lam0.zarr" in run.stdout


def test_hopping_points(schema):
    config = check({"points": [{"L": 6, "kappa": 0.25, "lam_K": 0.02}]}, schema)
    (point,) = points(config)
    assert point.to_hopping() == pytest.approx((0.25, 0.02))


def test_shipped_configs_are_valid(root, schema):
    shipped = sorted((root / "config").glob("*.yaml"))
    assert {"config.yaml", "smoke.yaml", "broken.yaml"} <= {path.name for path in shipped}
    for path in shipped:
        assert points(load(path, schema)), path.name


def test_unreadable_config_file(tmp_path, schema):
    path = tmp_path / "c.yaml"
    path.write_text("points: [unclosed")
    with pytest.raises(ConfigError, match="c.yaml"):
        load(path, schema)
    path.write_text(yaml.safe_dump(["a", "list"]))
    with pytest.raises(ConfigError, match="mapping"):
        load(path, schema)


def test_job_seeds_distinct_and_stable(schema):
    config = check(GOOD, schema)
    a, b = job_seed(config, "train", "realnvp", "x"), job_seed(config, "hmc", "x")
    assert a != b and a == job_seed(config, "train", "realnvp", "x")


@pytest.mark.parametrize("family", ["realnvp", "nsf"])
def test_even_kernel_rejected(schema, family):
    with pytest.raises(ConfigError, match=f"'{family}.kernel_size'"):
        check({**GOOD, "flows": [family], family: {"kernel_size": 4}}, schema)


def test_family_training_overrides(schema):
    from fieldflow.config import flow_settings

    config = check({**GOOD, "flows": ["realnvp", "cnf"], "cnf": {"training": {"lr": 0.01}}}, schema)
    hyper, training = flow_settings(config, "cnf")
    assert "training" not in hyper and training["lr"] == 0.01
    assert training["steps"] == config["training"]["steps"]
    assert flow_settings(config, "realnvp")[1]["lr"] == config["training"]["lr"]
    with pytest.raises(ConfigError, match="'cnf.training.lrr'"):
        check({**GOOD, "flows": ["cnf"], "cnf": {"training": {"lrr": 0.01}}}, schema)


def test_family_training_defaults_stay_under_given_keys(schema):
    """A family's own training defaults (the cnf's lr and kinetic penalty) are kept for the
    keys its training section does not give, not dropped with the whole default."""
    from fieldflow.config import flow_settings

    defaults = flow_settings(check({**GOOD, "flows": ["cnf"]}, schema), "cnf")[1]
    recipe = ("lr", "transfer_lr", "kinetic_weight", "estimator")
    assert tuple(defaults[key] for key in recipe) == (0.01, 0.002, 0.03, "path")
    config = check({**GOOD, "flows": ["cnf"], "cnf": {"training": {"steps": 3000}}}, schema)
    training = flow_settings(config, "cnf")[1]
    assert training == {**defaults, "steps": 3000}
    pinned = check({**GOOD, "flows": ["cnf"], "cnf": {"training": {"kinetic_weight": 0}}}, schema)
    assert flow_settings(pinned, "cnf")[1] == {**defaults, "kinetic_weight": 0}


def test_training_guard_and_regulariser_keys(schema):
    from fieldflow.config import flow_settings

    config = check(
        {**GOOD, "flows": ["realnvp", "cnf"], "cnf": {"training": {"kinetic_weight": 0.1}}}, schema
    )
    training = flow_settings(config, "cnf")[1]
    assert training["kinetic_weight"] == 0.1 and training["estimator"] == "path"  # the cnf's own
    assert flow_settings(config, "realnvp")[1]["estimator"] == "plain"
    assert training["max_refinements"] == 2
    assert flow_settings(config, "realnvp")[1]["kinetic_weight"] == 0
    with pytest.raises(ConfigError, match=r"key 'training.kinetic_weight': realnvp integrates"):
        check({**GOOD, "flows": ["realnvp", "cnf"], "training": {"kinetic_weight": 0.1}}, schema)
    with pytest.raises(ConfigError, match=r"'realnvp.training.kinetic_weight': realnvp integrates"):
        check(
            {**GOOD, "flows": ["realnvp"], "realnvp": {"training": {"kinetic_weight": 0.1}}}, schema
        )
    with pytest.raises(ConfigError, match="'cnf.training.estimator'"):
        check({**GOOD, "flows": ["cnf"], "cnf": {"training": {"estimator": "score"}}}, schema)
    with pytest.raises(ConfigError, match="'training.max_refinements'"):
        check({**GOOD, "training": {"max_refinements": -1}}, schema)


def test_init_from(schema):
    from fieldflow.config import init_sources

    pts = [
        {"name": "E1", "L": 6, "s": -4.0, "lam": 6.975},
        {"L": 12, "s": -4.0, "lam": 5.276, "init_from": "E1"},
    ]
    config = check({"points": pts}, schema)
    assert init_sources(config) == {"L12_s-4_lam5.276": "L6_s-4_lam6.975"}
    with pytest.raises(ConfigError, match=r"'points\[0\].init_from'.*not smaller"):
        check({"points": [{**pts[0], "init_from": "L12_s-4_lam5.276"}, pts[1]]}, schema)
    with pytest.raises(ConfigError, match="no point named 'E9'"):
        check({"points": [pts[0], {**pts[1], "init_from": "E9"}]}, schema)


def test_free_energy_section(schema):
    from fieldflow.config import integration_paths, integration_settings

    points = [{"L": 4, "s": -4.0, "lam": 8.0, "name": "A"}, {"L": 6, "s": 0.5, "lam": 0.0}]
    config = check(
        {
            "points": points,
            "free_energy": {"points": ["A"], "n_nodes": 3, "settings": {"n_trajectories": 50}},
        },
        schema,
    )
    paths = integration_paths(config)
    assert list(paths) == ["L4_s-4_lam8"]
    assert (paths["L4_s-4_lam8"].s0, paths["L4_s-4_lam8"].n_nodes) == (1.0, 3)
    settings = integration_settings(config)
    assert settings["n_trajectories"] == 50 and settings["n_chains"] == config["hmc"]["n_chains"]
    assert integration_paths(check({"points": points}, schema)) == {}
    everywhere = check({"points": points, "free_energy": {}}, schema)
    assert len(integration_paths(everywhere)) == 2


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"points": ["B"]}, "config key 'free_energy.points': no point named 'B'"),
        ({"s0": 0.0}, "config key 'free_energy.s0'"),
        ({"settings": {"n_trajectory": 5}}, "'free_energy.settings.n_trajectory': not a setting"),
        ({"sampler": "glauber"}, "config key 'free_energy.sampler'"),
        ({"n_nodes": 0}, "config key 'free_energy.n_nodes'"),
    ],
)
def test_bad_free_energy_sections_name_the_key(schema, section, message):
    points = [{"L": 4, "s": -4.0, "lam": 8.0, "name": "A"}]
    with pytest.raises(ConfigError, match=re.escape(message)):
        check({"points": points, "free_energy": section}, schema)


def test_free_energy_path_over_an_unbounded_action_is_refused(schema):
    points = [{"L": 4, "s": -1.0, "lam": 0.0, "name": "free"}]
    with pytest.raises(ConfigError, match="'free_energy': at free: .*crosses an unbounded action"):
        check({"points": points, "free_energy": {}}, schema)
