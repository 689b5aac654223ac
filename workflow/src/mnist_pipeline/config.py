"""Check the workflow's config against its JSON Schema and fill in the defaults it declares."""

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .errors import MnistPipelineError


class ConfigError(MnistPipelineError, ValueError):
    """The config does not match the schema; the message names every offending key."""


def load_schema(path: str | Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def validate_config(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict:
    """Return a copy of `config` with the schema's defaults filled in, or raise ConfigError."""
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n".join(f"  - {_describe(e)}" for e in errors)
        raise ConfigError(
            f"the config does not match workflow/schemas/config.schema.yaml:\n{lines}\n"
            "Fix these keys in config/config.yaml or in the --configfile overlay "
            "(config/README.md explains each key)."
        )
    filled = _with_defaults(copy.deepcopy(dict(config)), schema, schema)
    if filled["dataset"] not in filled["datasets"]:
        raise ConfigError(
            f"config key 'dataset' is {filled['dataset']!r}, but 'datasets' has no entry for it "
            f"(it has: {', '.join(filled['datasets']) or 'none'}). "
            f"Add datasets.{filled['dataset']} with its mirrors and files, or choose one of those."
        )
    return filled


def _key(error: ValidationError) -> str:
    return ".".join(map(str, error.absolute_path)) or "(top level)"


def _describe(error: ValidationError) -> str:
    key, found = _key(error), error.instance
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(found) - set(allowed))
        where = f"under '{key}'" if error.absolute_path else "at the top level"
        return f"unknown key {', '.join(map(repr, unknown))} {where}; allowed: {', '.join(allowed)}"
    if error.validator == "required":
        return f"config key '{key}': {error.message}"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"config key '{key}': expected one of {allowed}; found {found!r}"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"config key '{key}': expected {expected}; found {found!r} ({type(found).__name__})"
    return f"config key '{key}': {error.message}"


def _resolve(schema: Mapping, root: Mapping) -> Mapping:
    while "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def _with_defaults(value: Any, schema: Mapping, root: Mapping) -> Any:
    """Fill missing object properties that declare a default, recursively."""
    schema = _resolve(schema, root)
    if not isinstance(value, dict):
        return value
    for name, sub in schema.get("properties", {}).items():
        sub = _resolve(sub, root)
        if name not in value and "default" in sub:
            value[name] = copy.deepcopy(sub["default"])
        if name in value:
            value[name] = _with_defaults(value[name], sub, root)
    return value
