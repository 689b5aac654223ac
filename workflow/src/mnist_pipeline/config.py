"""Check the workflow's config against its JSON Schema and fill in the defaults it declares.

The schema (workflow/schemas/config.schema.yaml) is the one place each bound is written down:
the workflow checks the whole config against it at load, and code that takes settings outside
the workflow (TrainSettings in a notebook) checks them against the same rules with
`check_setting`.
"""

import copy
import functools
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from .dims import CLASSES
from .errors import MnistPipelineError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"

# The model.weights value that stands for the book's weights, downloaded as models.book says.
BOOK_WEIGHTS = "book"
# The book's network ends in this many outputs: it can only tell apart datasets of as many classes.
BOOK_CLASSES = CLASSES

# Snakemake's scattergather names, each with the config key that sets its default count.
SCATTER_KEYS = {"predict": "predict.shards"}

_HINT = (
    "Fix these keys in config/config.yaml or in the --configfile overlay "
    "(config/README.md explains each key)."
)


class ConfigError(MnistPipelineError, ValueError):
    """The config does not match the schema; the message names every offending key."""


def _is_integer(checker, instance) -> bool:
    # jsonschema's own "integer" admits 100.0; a script would then get a float where it
    # slices or counts with an int, so only real ints pass.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(checker, instance) -> bool:
    # Comparisons with NaN are all false, so minimum/maximum cannot refuse it: finiteness is
    # part of the type. Python ints are always finite (and may be too large for a float).
    if isinstance(instance, bool):
        return False
    return isinstance(instance, int) or (isinstance(instance, float) and math.isfinite(instance))


def _pattern(validator, pattern: str, instance, schema) -> Iterator[ValidationError]:
    # JSON Schema means ECMA-262 regexes, whose final `$` matches only at the very end; Python's
    # also matches before a trailing newline, which would let "x.gz\n" through.
    if not validator.is_type(instance, "string"):
        return
    anchored = (
        pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith("\\$") else pattern
    )
    if not re.search(anchored, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = validators.extend(
    Draft202012Validator,
    validators={"pattern": _pattern},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"integer": _is_integer, "number": _is_number}
    ),
)


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    # libyaml's parser where PyYAML has it: the schema is read at every start of the workflow.
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@functools.cache
def _shipped_schema() -> dict:
    return load_schema(SCHEMA_PATH)


def validate_config(
    config: Mapping[str, Any],
    schema: Mapping[str, Any],
    set_scatter: Mapping[str, int] | None = None,
) -> dict:
    """Return a copy of `config` with the schema's defaults filled in, or raise ConfigError.

    `set_scatter` holds Snakemake's --set-scatter overrides (NAME -> count); each is checked
    against the config key it overrides.
    """
    problems = _problems(config, schema, schema)
    problems += _scatter_problems(set_scatter or {}, schema)
    if problems:
        raise _error(problems)
    filled = _with_defaults(copy.deepcopy(dict(config)), schema, schema)
    problems = _dataset_problems(filled, schema) + _model_problems(filled)
    if problems:
        raise _error(problems)
    return filled


def check_setting(key: str, value: Any, schema: Mapping[str, Any] | None = None) -> None:
    """Check `value` against the schema's rule for the dotted config key `key` (a whole section
    such as "model.train" or a single value such as "predict.shards"); raise ConfigError naming
    each offending key. The shipped schema is used unless `schema` is given."""
    root = _shipped_schema() if schema is None else schema
    problems = _problems(value, _subschema(root, key), root, prefix=key)
    if problems:
        raise ConfigError("; ".join(problems))


def schema_defaults(key: str, schema: Mapping[str, Any] | None = None) -> dict:
    """The defaults the schema declares for the properties of the config section `key`."""
    root = _shipped_schema() if schema is None else schema
    return _with_defaults({}, _subschema(root, key), root)


def _error(problems: list[str]) -> ConfigError:
    lines = "\n".join(f"  - {p}" for p in problems)
    return ConfigError(
        f"the config does not match workflow/schemas/config.schema.yaml:\n{lines}\n{_HINT}"
    )


def _subschema(root: Mapping, key: str) -> Mapping:
    schema = root
    for part in key.split("."):
        schema = _resolve(schema, root).get("properties", {}).get(part)
        if schema is None:
            raise KeyError(f"the config schema has no key {key!r}")
    return _resolve(schema, root)


def _problems(value: Any, schema: Mapping, root: Mapping, prefix: str = "") -> list[str]:
    """One line per problem. A key of the wrong type gets only that message, and a string that
    breaks its pattern only that one (whose description says all a string must be): further
    complaints about the same value would be noise."""
    validator = _Validator(root)
    if schema is not root:
        # evolve() would swap in the stock validator named by the root's $schema, losing the
        # type checks above; a subschema carries no $schema, so it keeps them.
        validator = validator.evolve(schema=schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    only: dict[tuple, str] = {}
    for e in errors:
        if e.validator in ("type", "pattern") and only.get(tuple(e.absolute_path)) != "type":
            only[tuple(e.absolute_path)] = e.validator
    return [
        _describe(e, prefix)
        for e in errors
        if only.get(tuple(e.absolute_path), e.validator) == e.validator
    ]


def _scatter_problems(set_scatter: Mapping[str, int], schema: Mapping) -> list[str]:
    problems = []
    for name, count in set_scatter.items():
        key = SCATTER_KEYS.get(name)
        if key is None:
            problems.append(
                f"--set-scatter {name}={count}: this workflow has no scatter step {name!r}; "
                f"it has: {', '.join(SCATTER_KEYS)}"
            )
            continue
        for problem in _problems(count, _subschema(schema, key), schema, prefix=key):
            problems.append(
                f"--set-scatter {name}={count} (which overrides {problem}); "
                f"give --set-scatter {name}=N with a valid N, or leave it out to use {key}"
            )
    return problems


def _dataset_problems(config: Mapping, schema: Mapping) -> list[str]:
    problems = []
    if config["dataset"] not in config["datasets"]:
        problems.append(
            f"config key 'dataset' is {config['dataset']!r}, but 'datasets' has no entry for it "
            f"(it has: {', '.join(config['datasets']) or 'none'}). "
            f"Add datasets.{config['dataset']} with its mirrors and files, or choose one of those."
        )
    for name, dataset in config["datasets"].items():
        where = f"datasets.{name}.files"
        order = list(_subschema(schema, where)["properties"])  # train_images first, as documented
        files = {key: dataset["files"][key] for key in order}
        for a, b in _same(files, "name"):
            problems.append(
                f"config keys '{where}.{a}.name' and '{where}.{b}.name' are both "
                f"{files[a]['name']!r}: each archive is a file of its own, and one of these "
                f"would be read in place of the other. Give {a} and {b} their own file names "
                "and pins."
            )
        for a, b in _same(files, "sha256"):
            problems.append(
                f"config keys '{where}.{a}.sha256' and '{where}.{b}.sha256' are the same: two "
                "different archives cannot have the same bytes, so one of them pins the wrong "
                "file. Pin each archive with its own SHA-256 (sha256sum *.gz on the mirror)."
            )
    return problems + _bundle_problems(config["datasets"])


def _bundle_problems(datasets: Mapping[str, Mapping]) -> list[str]:
    """Datasets naming one bundle file share its download, so they must pin it alike."""
    first: dict[str, str] = {}  # bundle file name -> the first dataset naming it
    problems = []
    for name, dataset in datasets.items():
        if "bundle" not in dataset:
            continue
        bundle = dataset["bundle"]
        other = first.setdefault(bundle["name"], name)
        differ = [k for k in ("size", "sha256") if bundle[k] != datasets[other]["bundle"][k]]
        if differ:
            problems.append(
                f"config keys 'datasets.{other}.bundle' and 'datasets.{name}.bundle' both name "
                f"{bundle['name']!r} but pin it with different {' and '.join(differ)}: the file "
                "is downloaded once for both datasets and can have only one. Give both the same "
                "size and sha256 (those of the zip the mirrors serve), or another file name."
            )
    return problems


def _model_problems(config: Mapping) -> list[str]:
    """model.weights: book needs models.book, and a dataset of as many classes as the book's."""
    if config["model"]["weights"] != BOOK_WEIGHTS:
        return []
    problems = []
    if BOOK_WEIGHTS not in config["models"]:
        problems.append(
            f"config key 'model.weights' is {BOOK_WEIGHTS!r}, but 'models' has no entry "
            f"{BOOK_WEIGHTS!r}: add models.{BOOK_WEIGHTS} with the mirrors and pins of the book's "
            "weights (config/config.yaml ships them), or set model.weights to a path or null."
        )
    dataset = config["dataset"]
    classes = config["datasets"].get(dataset, {}).get("classes")
    if classes is not None and len(classes) != BOOK_CLASSES:
        problems.append(
            f"config key 'model.weights' is {BOOK_WEIGHTS!r}: the book's weights have "
            f"{BOOK_CLASSES} outputs, but dataset {dataset!r} has {len(classes)} classes "
            f"(datasets.{dataset}.classes). Choose a dataset of {BOOK_CLASSES} classes, or set "
            "model.weights to null to train a model for this one."
        )
    return problems


def _same(files: Mapping[str, Mapping], field: str) -> Iterable[tuple[str, str]]:
    """Pairs of archive keys whose `field` is given and equal, each pair once, in the order of
    `files` (a member of a bundle may leave its pins out)."""
    keys = [key for key in files if field in files[key]]
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            if files[a][field] == files[b][field]:
                yield a, b


_KINDS = {"integer": "a number", "number": "a number", "boolean": "true or false", "null": "null"}


def given_as_text(value: Any, types: Iterable[str]) -> str:
    """What to say of `value` if it is text that YAML reads as a value of one of the JSON Schema
    `types` (a number, true or false, null), "" otherwise. Such text comes from a quoted value,
    or from snakemake --config, which reads every value nested in {...} as text."""
    if not isinstance(value, str):
        return ""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return ""
    kinds = [_KINDS[t] for t in types if t in _KINDS and _Validator.TYPE_CHECKER.is_type(parsed, t)]
    if isinstance(parsed, str) or not kinds:
        return ""
    return (
        f"text, not {kinds[0]} (snakemake --config reads values nested in {{...}} as text, and "
        "quotes make text in YAML); write it unquoted in the config file or a --configfile "
        "overlay"
    )


def _key(error: ValidationError, prefix: str) -> str:
    return ".".join(
        [prefix, *map(str, error.absolute_path)] if prefix else map(str, error.absolute_path)
    )


def _describe(error: ValidationError, prefix: str = "") -> str:
    key, found = _key(error, prefix) or "(top level)", error.instance
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(found) - set(allowed))
        where = f"under '{key}'" if key != "(top level)" else "at the top level"
        return f"unknown key {', '.join(map(repr, unknown))} {where}; allowed: {', '.join(allowed)}"
    if error.validator == "required":
        return f"config key '{key}': {error.message}"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"config key '{key}': expected one of {allowed}; found {found!r}"
    if error.validator == "type":
        expected = error.validator_value
        expected = expected if isinstance(expected, list) else [expected]
        if isinstance(found, float) and not math.isfinite(found) and "number" in expected:
            return f"config key '{key}': expected a finite number; found {found!r}"
        message = f"config key '{key}': expected {' or '.join(expected)}; found {found!r}"
        message += f" ({type(found).__name__})"
        if "integer" in expected and isinstance(found, float) and found.is_integer():
            message += f": write {int(found)}, without a decimal point"
        elif text := given_as_text(found, expected):
            message += f": {text}"
        elif "string" in expected and isinstance(found, bool):
            message += (
                ": YAML reads yes, no, on, off, true and false unquoted as booleans: put the text "
                "in quotes"
            )
        elif "string" in expected and isinstance(found, int | float):
            message += f": YAML reads {found!r} unquoted as a number: write '{found!r}', in quotes"
        return message
    if error.validator in ("pattern", "minLength", "maxLength") and "description" in error.schema:
        return f"config key '{key}': {error.message}; expected {error.schema['description']}"
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
