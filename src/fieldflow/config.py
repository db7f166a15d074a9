"""Study configuration: JSON-Schema validation with defaults, then physics checks.

Every problem is reported as a :class:`ConfigError` that names the offending key, e.g.
``points[2].L``, before any job runs. The schema's part is :mod:`fieldflow.schema`; what a
study asks of the machine is :mod:`fieldflow.resources`, whose checks this module
re-exports for the workflow. Whatever depends on the flow family (an even L, an ODE to
regularise, its own hyperparameters) the family says (:class:`~fieldflow.flows.FlowFamily`).

A point names its theory (``theory: u1``; φ⁴ when absent); its point, and the checks of
the points and of the samplers listed for their theories, are :mod:`fieldflow.config_points`
(re-exported here). Thermodynamic integration of log Z is for φ⁴ points only
(:data:`INTEGRATION_THEORIES`).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import yaml

from fieldflow import integration
from fieldflow.config_points import DEFAULT_THEORY, point_from_entry, point_problems, points
from fieldflow.errors import FieldflowError
from fieldflow.flows import FAMILIES
from fieldflow.resources import (
    MEMORY_PER_CONFIGURATION,
    check_resources,
    ensemble_sizes,
    physical_memory,
    sampling_memory,
)
from fieldflow.schema import schema_problems
from fieldflow.theory import PHI4

__all__ = [
    "DEFAULT_THEORY",
    "INTEGRATION_THEORIES",
    "MEMORY_PER_CONFIGURATION",
    "REMOVED_KEYS",
    "ConfigError",
    "canonical",
    "check_resources",
    "ensemble_sizes",
    "flow_settings",
    "init_sources",
    "integration_paths",
    "integration_settings",
    "job_seed",
    "load",
    "physical_memory",
    "point_from_entry",
    "points",
    "sampling_memory",
    "validate",
]


#: Theories whose log Z thermodynamic integration reaches (its path moves s and λ).
INTEGRATION_THEORIES = (PHI4.name,)

#: Keys that configs once had, with what replaced them.
REMOVED_KEYS = {
    ("hmc", "enabled"): "list the Markov-chain baselines to run in 'mcmc' instead "
    "(mcmc: [hmc], or mcmc: [] for none)",
}


class ConfigError(FieldflowError, ValueError):
    """A study configuration that cannot be run."""

    def problems(self) -> list[str]:
        """One line per problem, without the ``invalid config:`` header of a list."""
        header, *listed = str(self).splitlines()
        if header == "invalid config:" and listed:
            return [line.strip() for line in listed]
        return super().problems()


def validate(config: dict[str, Any], schema: str | Path | dict) -> dict[str, Any]:
    """Validate ``config`` in place against the schema, fill in defaults, check physics.

    Returns:
        the same dict, completed with defaults.
    Raises:
        ConfigError: listing every problem, each naming its key.
    """
    if not isinstance(schema, dict):
        schema = yaml.safe_load(Path(schema).read_text())
    if not isinstance(config, dict):
        raise ConfigError(f"the config must be a mapping of keys, got {type(config).__name__}")
    removed = [
        f"config key '{section}.{key}' was removed: {replacement}"
        for (section, key), replacement in REMOVED_KEYS.items()
        if isinstance(config.get(section), dict) and key in config[section]
    ]
    if removed:
        raise ConfigError("invalid config:\n  " + "\n  ".join(removed))
    # A listed family's section, if the schema gives it no default (gauge), gets its
    # defaults; configs that do not list it normalise as they did before it existed.
    sections = schema.get("properties", {})
    for family in config.get("flows") if isinstance(config.get("flows"), list) else []:
        if isinstance(family, str) and family in FAMILIES and family not in config:
            if "default" not in sections.get(family, {}):
                config[family] = {}
    messages, broken = schema_problems(config, schema)
    if config.get("flows") == [] and config.get("mcmc") == []:
        messages.append(
            "config key 'flows': no samplers: list flow families in 'flows' or "
            "Markov-chain baselines in 'mcmc'"
        )
    if isinstance(config.get("points"), list) and ("points",) not in broken:
        skip = {p[1] for p in broken if len(p) == 2 and p[0] == "points"}
        messages += _physics_problems(config, skip, broken)
    if not messages and config.get("free_energy"):
        section = config["free_energy"]
        settings = {section["sampler"]: integration_settings(config)}
        messages += integration.settings_problems(settings, schema)
    if messages:
        raise ConfigError("invalid config:\n  " + "\n  ".join(messages))
    return config


def _physics_problems(config: dict[str, Any], skip: set[int], broken: set) -> list[str]:
    """Problems the schema cannot see; entries listed in ``skip`` already failed it."""
    problems = point_problems(config, skip, broken)
    flows = config.get("flows") if ("flows",) not in broken else []
    training = config.get("training")
    if isinstance(training, dict) and ("training",) not in broken:
        for family in flows if isinstance(flows, list) else []:
            section = config.get(family)
            if not isinstance(section, dict) or (family,) in broken:
                continue
            merged = {**training, **(section.get("training") or {})}
            if merged.get("steps") is None and merged.get("max_seconds") is None:
                problems.append(f"config key '{family}.training': set steps, max_seconds or both")
            if merged.get("kinetic_weight") and not FAMILIES[family].integrates_ode:
                own = "kinetic_weight" in (section.get("training") or {})
                key = f"{family}.training.kinetic_weight" if own else "training.kinetic_weight"
                odes = sorted(name for name, f in FAMILIES.items() if f.integrates_ode)
                problems.append(
                    f"config key '{key}': {family} integrates no ODE; set kinetic_weight in "
                    f"the training of {odes} only"
                )
        if training.get("steps") is None and training.get("max_seconds") is None:
            problems.append("config key 'training': set steps, max_seconds or both")
    if not any(path[:1] == ("free_energy",) for path in broken):
        problems += _free_energy_problems(config)
    for name in sorted(FAMILIES):
        section = config.get(name) if (name,) not in broken else None
        own = section if isinstance(section, dict) else {}
        for key, problem in FAMILIES[name].section_problems(own):
            problems.append(f"config key '{name}.{key}': {problem}")
    return problems


def _free_energy_problems(config: dict[str, Any]) -> list[str]:
    """The integration paths must name points of the study and stay on a bounded action."""
    section = config.get("free_energy")
    if not isinstance(section, dict):
        return []
    try:
        study = points(config)
    except (KeyError, TypeError, ValueError):
        return []  # the points' own problems are reported already
    chosen = integration.selected(study, section)
    for i, point in enumerate(study):
        if point.theory.name not in INTEGRATION_THEORIES and point in chosen:
            which = "null selects" if section.get("points") is None else "it names"
            return [
                f"config key 'free_energy.points': thermodynamic integration is for "
                f"{' and '.join(INTEGRATION_THEORIES)} points only, but {which} the "
                f"{point.theory.name} point points[{i}] ({point.key}); list the points "
                "to integrate to"
            ]
    sampler = config.get(section["sampler"])
    known = set(sampler) if isinstance(sampler, dict) else set()
    return integration.config_problems(study, section, known)


def integration_paths(config: dict[str, Any]) -> dict[str, integration.IntegrationPath]:
    """Point key → its thermodynamic-integration path (config ``free_energy``); {} without."""
    section = config.get("free_energy")
    if not section:
        return {}
    return {
        p.key: integration.path_to(p, section)
        for p in integration.selected(points(config), section)
    }


def integration_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Settings of the node ensembles: the sampler's section, then ``free_energy.settings``."""
    section = config["free_energy"]
    return {**config[section["sampler"]], **section.get("settings", {})}


def load(path: str | Path, schema: str | Path) -> dict[str, Any]:
    """Read a YAML config file and validate it."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from err
    return validate(config, schema)


def canonical(value: Any) -> Any:
    """``value`` with every mapping's keys sorted, recursively (lists keep their order).

    Snakemake decides whether a job's ``params`` changed by comparing their ``repr``, which
    follows a dict's insertion order: the same settings written in another key order would
    rerun every job. Rules pass their settings through this function.
    """
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    return value


def job_seed(config: dict[str, Any], *parts: str) -> int:
    """A stable seed per job, derived from the master seed and the job's names.

    Mixed by hand, not by ``numpy.random.SeedSequence``: that would give every job another
    seed, and so change every number of every study.
    """
    return (config["seed"] * 1_000_003 + zlib.crc32("/".join(parts).encode())) % 2**31


def flow_settings(config: dict[str, Any], family: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(hyperparameters, training settings) of one flow family.

    A family's own ``training`` section overrides the top-level ``training`` key by key.
    """
    section = dict(config.get(family, {}))
    override = section.pop("training", {}) or {}
    return section, {**config["training"], **override}


def init_sources(config: dict[str, Any]) -> dict[str, str]:
    """Point key → key of the point whose trained flow initialises it (``init_from``)."""
    by_label = {}
    for point in points(config):
        by_label[point.key] = point.key
        if point.name:
            by_label[point.name] = point.key
    sources = {}
    for entry, point in zip(config["points"], points(config), strict=True):
        if "init_from" in entry:
            sources[point.key] = by_label[entry["init_from"]]
    return sources
