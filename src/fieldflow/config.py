"""Study configuration: JSON-Schema validation with defaults, then physics checks.

Every problem is reported as a :class:`ConfigError` that names the offending key, e.g.
``points[2].L``, before any job runs. The schema's part is :mod:`fieldflow.schema`; what a
study asks of the machine is :mod:`fieldflow.resources`, whose checks this module
re-exports for the workflow. Whatever depends on the flow family (an even L, an ODE to
regularise, its own hyperparameters) the family says (:class:`~fieldflow.flows.FlowFamily`).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import yaml

from fieldflow import integration
from fieldflow.errors import FieldflowError
from fieldflow.flows import FAMILIES
from fieldflow.lattice import Point
from fieldflow.resources import (
    MEMORY_PER_CONFIGURATION,
    check_resources,
    ensemble_sizes,
    physical_memory,
    sampling_memory,
)
from fieldflow.schema import schema_problems

__all__ = [
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
    problems = []
    flows = config.get("flows") if ("flows",) not in broken else []
    listed = [name for name in flows if name in FAMILIES] if isinstance(flows, list) else []
    checkerboard = sorted({name for name in listed if FAMILIES[name].requires_even_L})
    keys: dict[str, int] = {}
    names: dict[str, int] = {}
    for i, entry in enumerate(config["points"]):
        if i in skip:
            continue
        if entry.get("name") in names:
            problems.append(
                f"config key 'points[{i}].name': {entry['name']!r} already names "
                f"points[{names[entry['name']]}]"
            )
        elif entry.get("name"):
            names[entry["name"]] = i
        direct, hopping = {"s", "lam"} & entry.keys(), {"kappa", "lam_K"} & entry.keys()
        if direct and hopping:
            problems.append(f"config key 'points[{i}]': give either s, lam or kappa, lam_K")
            continue
        need = ("kappa", "lam_K") if hopping else ("s", "lam")
        for key in need:
            if key not in entry:
                problems.append(f"config key 'points[{i}].{key}': required but missing")
        if any(key not in entry for key in need):
            continue
        if entry["L"] % 2 and checkerboard:
            problems.append(
                f"config key 'points[{i}].L': L={entry['L']} is odd, but the checkerboard "
                f"flows {checkerboard} need an even L"
            )
        point = point_from_entry(entry)
        if "init_from" in entry:
            problems += _init_problems(i, entry, point, config["points"])
        if point.lam < 0:
            problems.append(f"config key 'points[{i}]': lam={point.lam:g} < 0, S unbounded")
        if point.lam == 0 and point.s <= 0:
            problems.append(
                f"config key 'points[{i}].s': at lam = 0 the theory needs s > 0, got {point.s:g}"
            )
        if point.key in keys:
            j = keys[point.key]
            same = point_from_entry(config["points"][j])
            if (same.L, same.s, same.lam) == (point.L, point.s, point.lam):
                problems.append(f"config key 'points[{i}]': same point as points[{j}]")
            else:
                problems.append(
                    f"config key 'points[{i}]': differs from points[{j}] only "
                    f"beyond the 6 digits of the point key {point.key}"
                )
        keys[point.key] = i
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


def _init_problems(i: int, entry: dict, point: Point, entries: list[dict]) -> list[str]:
    """``init_from`` must name another point, by name or key, on a smaller lattice."""
    if entry["init_from"] in (point.name, point.key):
        return [f"config key 'points[{i}].init_from': a point cannot start from its own flow"]
    for other in entries:
        try:
            candidate = point_from_entry(other)
        except (KeyError, TypeError, ValueError):
            continue
        if entry["init_from"] in (candidate.name, candidate.key) and candidate != point:
            if candidate.L >= point.L:
                return [
                    f"config key 'points[{i}].init_from': {entry['init_from']} has "
                    f"L={candidate.L}, not smaller than L={point.L}"
                ]
            return []
    return [f"config key 'points[{i}].init_from': no point named {entry['init_from']!r}"]


def point_from_entry(entry: dict[str, Any]) -> Point:
    """A :class:`Point` from one ``points`` entry in either parameterisation."""
    name = entry.get("name", "")
    if "kappa" in entry:
        return Point.from_hopping(entry["L"], entry["kappa"], entry["lam_K"], name)
    return Point(entry["L"], float(entry["s"]), float(entry["lam"]), name)


def points(config: dict[str, Any]) -> list[Point]:
    """The study's points, in config order."""
    return [point_from_entry(entry) for entry in config["points"]]


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
