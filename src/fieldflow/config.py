"""Study configuration: JSON-Schema validation with defaults, then physics checks.

Every problem is reported as a :class:`ConfigError` that names the offending key, e.g.
``points[2].L``, before any job runs.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from fieldflow.errors import FieldflowError
from fieldflow.lattice import Point

#: Flow families whose coupling layers use checkerboard masks (need an even L).
CHECKERBOARD_FAMILIES = frozenset({"realnvp", "nsf"})
#: Flow families that integrate an ODE (the only ones with a kinetic energy to regularise).
ODE_FAMILIES = frozenset({"cnf"})


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


def _path(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<top level>"


#: A number as YAML 1.2 writes it; YAML 1.1 (PyYAML) reads ``1e-3`` as a string.
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _strict(validator_class):
    """``integer`` means an int: jsonschema would take 4.0 as an integer, and L = 4.0 breaks."""
    checker = validator_class.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    )
    return jsonschema.validators.extend(validator_class, type_checker=checker)


def _resolve(schema: dict, root: dict) -> dict:
    """``schema`` with a local ``$ref`` (``#/$defs/...``) merged under its own keys."""
    if "$ref" not in schema:
        return schema
    target = root
    for part in schema["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    target = _resolve(target, root)
    own = {k: v for k, v in schema.items() if k != "$ref"}
    properties = dict(target.get("properties", {}))
    for key, spec in own.get("properties", {}).items():
        properties[key] = {**properties.get(key, {}), **spec}
    return {**target, **own, "properties": properties}


def _takes_number(schema: dict) -> bool:
    types = [schema.get("type")] + [option.get("type") for option in schema.get("anyOf", [])]
    flat = {t for entry in types for t in (entry if isinstance(entry, list) else [entry]) if t}
    return "number" in flat and "string" not in flat


def _numbers_from_strings(instance: Any, schema: dict, root: dict) -> Any:
    """Read numeric strings as numbers wherever the schema wants a number (and no string)."""
    schema = _resolve(schema, root)
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        return {key: _numbers_from_strings(value, properties[key], root)
                if key in properties else value for key, value in instance.items()}  # fmt: skip
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return [_numbers_from_strings(item, schema["items"], root) for item in instance]
    if isinstance(instance, str) and _takes_number(schema) and _NUMBER.fullmatch(instance):
        return float(instance)
    return instance


def _non_finite(instance: Any, path: tuple = ()) -> Iterator[tuple]:
    """Paths of every NaN or infinite number in a config."""
    if isinstance(instance, float) and not math.isfinite(instance):
        yield path
    elif isinstance(instance, dict):
        for key, value in instance.items():
            yield from _non_finite(value, (*path, key))
    elif isinstance(instance, list):
        for i, value in enumerate(instance):
            yield from _non_finite(value, (*path, i))


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _messages(errors: Iterator[jsonschema.ValidationError]) -> list[str]:
    messages = []
    for error in sorted(errors, key=lambda e: list(e.absolute_path)):
        where = _path(error.absolute_path)
        if error.validator == "additionalProperties":
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            for key in extra:
                name = f"{where}.{key}" if error.absolute_path else key
                messages.append(f"config key '{name}': unknown key (a typo?)")
            continue
        if error.validator == "required":
            missing = error.message.split("'")[1]
            name = f"{where}.{missing}" if error.absolute_path else missing
            messages.append(f"config key '{name}': required but missing")
            continue
        messages.append(f"config key '{where}': {error.message}")
    return messages


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
    config.update(_numbers_from_strings(config, schema, schema))
    validator = _with_defaults(_strict(jsonschema.Draft202012Validator))(schema)
    errors = list(validator.iter_errors(config))
    messages = _messages(iter(errors))
    broken = {tuple(e.absolute_path)[:2] for e in errors}
    for path in _non_finite(config):
        messages.append(f"config key '{_path(path)}': must be a finite number, got "
                        f"{_get(config, path)}")  # fmt: skip
        broken.add(tuple(path)[:2])
    if config.get("flows") == [] and config.get("mcmc") == []:
        messages.append("config key 'flows': no samplers: list flow families in 'flows' or "
                        "Markov-chain baselines in 'mcmc'")  # fmt: skip
    if isinstance(config.get("points"), list) and ("points",) not in broken:
        skip = {p[1] for p in broken if len(p) == 2 and p[0] == "points"}
        messages += _physics_problems(config, skip, broken)
    if messages:
        raise ConfigError("invalid config:\n  " + "\n  ".join(messages))
    return config


def _get(config: Any, path: tuple) -> Any:
    for part in path:
        config = config[part]
    return config


def _physics_problems(config: dict[str, Any], skip: set[int], broken: set) -> list[str]:
    """Problems the schema cannot see; entries listed in ``skip`` already failed it."""
    problems = []
    flows = config.get("flows") if ("flows",) not in broken else []
    checkerboard = sorted(set(flows if isinstance(flows, list) else []) & CHECKERBOARD_FAMILIES)
    keys: dict[str, int] = {}
    names: dict[str, int] = {}
    for i, entry in enumerate(config["points"]):
        if i in skip:
            continue
        if entry.get("name") in names:
            problems.append(f"config key 'points[{i}].name': {entry['name']!r} already names "
                            f"points[{names[entry['name']]}]")  # fmt: skip
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
                problems.append(f"config key 'points[{i}]': differs from points[{j}] only "
                                f"beyond the 6 digits of the point key {point.key}")  # fmt: skip
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
            if merged.get("kinetic_weight") and family not in ODE_FAMILIES:
                own = "kinetic_weight" in (section.get("training") or {})
                key = f"{family}.training.kinetic_weight" if own else "training.kinetic_weight"
                problems.append(
                    f"config key '{key}': {family} integrates no ODE; set kinetic_weight in "
                    f"the training of {sorted(ODE_FAMILIES)} only"
                )
        if training.get("steps") is None and training.get("max_seconds") is None:
            problems.append("config key 'training': set steps, max_seconds or both")
    for family in sorted(CHECKERBOARD_FAMILIES):
        section = config.get(family) if (family,) not in broken else None
        kernel = section.get("kernel_size", 3) if isinstance(section, dict) else 3
        if isinstance(kernel, int) and kernel % 2 == 0:
            problems.append(f"config key '{family}.kernel_size': must be odd for 'same' padding")
    return problems


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


#: Memory per configuration a sampling job holds, in units of the float32 field
#: (4 L² bytes): the configuration as drawn, its copy in the store's write buffer, and
#: the codecs' working copy.
MEMORY_PER_CONFIGURATION = 3
#: The keys of Markov-chain settings that count kept draws per chain.
_DRAW_KEYS = ("n_trajectories", "n_updates")


def ensemble_sizes(config: dict[str, Any]) -> list[tuple[str, Point, int, int]]:
    """(sampler, point, configurations drawn, configurations kept) of every ensemble.

    Flows draw ``n_chains · (n_samples + burn_in)`` proposals and keep ``n_chains ·
    n_samples``; a Markov chain keeps ``n_chains`` times its draws per chain (its burn-in
    is not stored). ``config`` must be validated, so that defaults are filled in.
    """
    sampling = config["sampling"]
    flow_draws = sampling["n_chains"] * (sampling["n_samples"] + sampling["burn_in"])
    sizes = []
    for point in points(config):
        for flow in config["flows"]:
            sizes.append((flow, point, flow_draws, sampling["n_chains"] * sampling["n_samples"]))
        for name in config["mcmc"]:
            section = config.get(name, {})
            draws = next((section[key] for key in _DRAW_KEYS if key in section), 0)
            sizes.append((name, point, section.get("n_chains", 0) * draws,
                          section.get("n_chains", 0) * draws))  # fmt: skip
    return sizes


def sampling_memory(config: dict[str, Any], sampler: str, point: Point) -> tuple[int, float]:
    """(configurations held, bytes) of one sampling job, which streams its ensemble.

    Per chain the job holds its current state and one chunk of the store
    (:func:`fieldflow.io.chunk_draws`), and a flow also one batch of proposals, each
    :data:`MEMORY_PER_CONFIGURATION` float32 fields; the draw count itself does not
    matter. Add the per-configuration scalars and correlator (L + 8 float64) of the
    observables job that reads the ensemble back, which keeps those of every draw.
    """
    from fieldflow.io import chunk_draws

    if sampler in config["flows"]:
        section = config["sampling"]
        chains, per_chain = section["n_chains"], section["n_samples"]
        batch = section["batch_size"]
    else:
        section = config.get(sampler, {})
        chains = section.get("n_chains", 0)
        per_chain, batch = next((section[k] for k in _DRAW_KEYS if k in section), 0), 0
    held = chains * (chunk_draws(max(per_chain, 1), point.L**2) + 1) + batch
    fields = MEMORY_PER_CONFIGURATION * 4.0 * point.L**2 * held
    primaries = 8.0 * (point.L + 8) * chains * per_chain
    return held, fields + primaries


def physical_memory() -> float:
    """This machine's physical memory in bytes."""
    import os

    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_resources(config: dict[str, Any], results: str | Path = "results") -> None:
    """Refuse a study whose ensembles do not fit this machine, with the estimate.

    Memory: the largest job, estimated by :func:`sampling_memory`, against
    ``memory_limit_gb`` or this machine's physical memory. Disk: the ensembles not yet
    under ``results`` store 4 L² bytes per kept configuration (random floats barely
    compress), against the free space there.

    Raises:
        ConfigError: naming the point and sampler of the largest job, or the disk need.
    """
    import shutil

    sizes = ensemble_sizes(config)
    if not sizes:
        return
    index = {point.key: i for i, point in enumerate(points(config))}
    limit = config.get("memory_limit_gb")
    limit_bytes = limit * 1e9 if limit is not None else physical_memory()
    memory = {(name, p): sampling_memory(config, name, p) for name, p, _, _ in sizes}
    (sampler, point), (held, need) = max(memory.items(), key=lambda item: item[1][1])
    if need > limit_bytes:
        where = "memory_limit_gb" if limit is not None else "this machine's memory"
        raise ConfigError(
            f"config key 'points[{index[point.key]}].L': {sampler} at L={point.L} would hold "
            f"about {need / 1e9:.1f} GB ({held:,} configurations of {point.L}x{point.L} "
            "and the scalars of every draw), "
            f"more than {where} ({limit_bytes / 1e9:.1f} GB); lower its n_chains or batch_size"
            + ("" if limit is not None else ", or set memory_limit_gb for larger nodes")
        )
    results = Path(results)
    missing = [
        (name, p, kept) for name, p, _, kept in sizes
        if not (results / "ensembles" / name / f"{p.key}.zarr").exists()
    ]  # fmt: skip
    disk = sum(4.0 * p.L**2 * kept for _, p, kept in missing)
    existing = next(parent for parent in (results, *results.absolute().parents) if parent.exists())
    free = shutil.disk_usage(existing).free
    if disk > free:
        raise ConfigError(
            f"config key 'points': the {len(missing)} ensembles still to write need about "
            f"{disk / 1e9:.1f} GB on disk, but {existing.absolute()} has {free / 1e9:.1f} GB "
            "free; lower the sample counts or free space"
        )


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
    """A stable seed per job, derived from the master seed and the job's names."""
    import zlib

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
