"""A config checked against its JSON Schema: defaults filled in, every problem named by key.

The schema validator reads ``integer`` as an int (not 4.0), fills in every default, reads
numeric strings as numbers where the schema wants a number (YAML 1.1 reads ``1e-3`` as a
string), and reports each problem as one line, ``config key 'points[2].L': ...``.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterator
from typing import Any

import jsonschema


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
        return {
            key: _numbers_from_strings(value, properties[key], root) if key in properties else value
            for key, value in instance.items()
        }
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
                if "default" not in sub:
                    continue
                if name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
                elif isinstance(sub["default"], dict) and isinstance(instance[name], dict):
                    # A section's default keys stay under the keys a config gives:
                    # cnf: {training: {steps: 3000}} keeps the cnf's own lr.
                    for key, value in sub["default"].items():
                        instance[name].setdefault(key, copy.deepcopy(value))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _extra_keys(error: jsonschema.ValidationError) -> list[str]:
    """The config key (``points[0].s``) of each key an ``additionalProperties`` error found."""
    where = _path(error.absolute_path)
    extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
    return [f"{where}.{key}" if error.absolute_path else key for key in extra]


def _theory_keys(error: jsonschema.ValidationError) -> bool:
    """Whether ``error`` is a conditional subschema's (``then``, e.g. the keys of a u1
    point) refusing a key that the enclosing object's own schema takes."""
    return error.validator == "additionalProperties" and "then" in error.absolute_schema_path


def _messages(errors: Iterator[jsonschema.ValidationError]) -> list[str]:
    """One line per problem. A key no schema knows is ``unknown key (a typo?)``; a key that
    a conditional subschema (``title``: e.g. ``a u1 point (theory: u1)``) does not take,
    though the object's own schema does, names the keys that subschema takes."""
    errors = sorted(errors, key=lambda e: list(e.absolute_path))
    unknown = {
        name
        for error in errors
        if error.validator == "additionalProperties" and not _theory_keys(error)
        for name in _extra_keys(error)
    }
    messages = []
    for error in errors:
        where = _path(error.absolute_path)
        if _theory_keys(error):
            takes = ", ".join(error.schema.get("properties", {}))
            messages += [
                f"config key '{name}': not a key of {error.schema['title']}, which takes {takes}"
                for name in _extra_keys(error)
                if name not in unknown
            ]
            continue
        if error.validator == "additionalProperties":
            messages += [f"config key '{n}': unknown key (a typo?)" for n in _extra_keys(error)]
            continue
        if error.validator == "required":
            missing = error.message.split("'")[1]
            name = f"{where}.{missing}" if error.absolute_path else missing
            messages.append(f"config key '{name}': required but missing")
            continue
        messages.append(f"config key '{where}': {error.message}")
    return messages


def schema_problems(config: dict[str, Any], schema: dict) -> tuple[list[str], set[tuple]]:
    """Validate ``config`` in place against ``schema``, filling in its defaults.

    Returns:
        one message per problem (the schema's, then every NaN or infinite number), and the
        paths, at most two keys deep (``("points", 2)``), of the entries that failed.
    """
    config.update(_numbers_from_strings(config, schema, schema))
    validator = _with_defaults(_strict(jsonschema.Draft202012Validator))(schema)
    errors = list(validator.iter_errors(config))
    messages = _messages(iter(errors))
    broken = {tuple(e.absolute_path)[:2] for e in errors}
    for path in _non_finite(config):
        messages.append(
            f"config key '{_path(path)}': must be a finite number, got {_get(config, path)}"
        )
        broken.add(tuple(path)[:2])
    return messages, broken


def _get(config: Any, path: tuple) -> Any:
    for part in path:
        config = config[part]
    return config
