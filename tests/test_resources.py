"""What a study asks of the machine: memory per sampling job and disk for its ensembles."""

import copy

import pytest

from fieldflow.config import ConfigError, points, validate
from fieldflow.resources import check_resources, ensemble_sizes, sampling_memory

GOOD = {"points": [{"L": 8, "s": -4.0, "lam": 8.0}]}


def check(config, root):
    """A validated copy of ``config``, its defaults filled in."""
    return validate(copy.deepcopy(config), root / "workflow" / "schemas" / "config.schema.yaml")


def test_a_lattice_too_large_for_the_memory_is_refused_with_the_estimate(root, tmp_path):
    config = check(
        {
            "points": [{"L": 8, "s": -4.0, "lam": 6.0}, {"L": 128, "s": -4.0, "lam": 4.4}],
            "flows": [],
            "mcmc": ["hmc"],
        },
        root,
    )
    config["memory_limit_gb"] = 0.1
    # Streamed: 64 chains x (one chunk of 16 draws + the current state), not 128,000 draws.
    with pytest.raises(
        ConfigError,
        match=r"'points\[1\].L': hmc at L=128 would hold about "
        r"0.4 GB \(1,088 configurations of 128x128 and the scalars of every "
        r"draw\), more than memory_limit_gb \(0.1 GB\)",
    ):
        check_resources(config, tmp_path / "results")
    config["memory_limit_gb"] = 1.0
    check_resources(config, tmp_path / "results")
    # Eight times the draws: the same fields held, only the scalars grow.
    point = points(config)[1]
    held, need = sampling_memory(config, "hmc", point)
    config["hmc"]["n_trajectories"] *= 8
    held_8, need_8 = sampling_memory(config, "hmc", point)
    assert held_8 == held and need_8 - need == pytest.approx(7 * 8.0 * (128 + 8) * 64 * 2000)


def test_ensembles_that_do_not_fit_on_disk_are_refused(root, tmp_path, monkeypatch):
    import shutil

    config = check({**GOOD, "flows": ["cnf"], "mcmc": ["hmc"]}, root)
    sizes = {name: kept for name, _, _, kept in ensemble_sizes(config)}
    assert sizes == {"cnf": 4 * 8192, "hmc": 64 * 2000}  # the schema's defaults
    need = 4.0 * 8**2 * (4 * 8192 + 64 * 2000)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage._replace(free=int(need) - 1))
    with pytest.raises(ConfigError, match=r"the 2 ensembles still to write need about 0.0 GB"):
        check_resources(config, tmp_path / "results")
    # An ensemble already written needs no new space.
    (tmp_path / "results" / "ensembles" / "hmc" / f"{points(config)[0].key}.zarr").mkdir(
        parents=True
    )
    check_resources(config, tmp_path / "results")


def test_the_config_module_re_exports_the_checks_for_the_workflow():
    import fieldflow.config

    assert fieldflow.config.check_resources is check_resources
