"""Validate the workflow configuration against its JSON schema, filling in defaults.

Snakemake's own ``validate`` reports the first error in jsonschema's words; users get more from
one message listing every wrong key by its dotted path and what is allowed there.
"""

from __future__ import annotations

import os
from typing import Any

import jsonschema
import yaml


class ConfigError(ValueError):
    """The configuration does not match the schema; the message names each offending key."""


def _with_defaults(validator_class: type[jsonschema.protocols.Validator]) -> type:
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # type: ignore[no-untyped-def]
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    # Copy, so that one default dict is never shared between two configs.
                    instance[name] = yaml.safe_load(yaml.safe_dump(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _describe(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        return f"config key {path}: {error.message}; allowed keys here: {', '.join(allowed)}"
    if error.validator == "enum":
        allowed = schema["enum"]
        return f"config key {path}: {error.instance!r} is not allowed; expected one of {allowed}"
    if error.validator == "oneOf" and "tissues" in path:
        return (
            f"config key {path}: expected 'all' or a list of tissue labels, got {error.instance!r}"
        )
    return f"config key {path}: {error.message}"


def validate_config(config: dict[str, Any], schema_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check ``config`` in place against the schema at ``schema_path`` and fill in defaults.

    Raises ConfigError listing every problem, each with its dotted key path.
    """
    with open(schema_path) as handle:
        schema = yaml.safe_load(handle)
    validator_class = _with_defaults(jsonschema.Draft202012Validator)
    validator = validator_class(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    problems = [_describe(error) for error in errors] or _combination_problems(config)
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise ConfigError(f"invalid configuration ({len(problems)} problem(s)):\n{lines}")
    return config


def _combination_problems(config: dict[str, Any]) -> list[str]:
    """Values that are each allowed but not together (checked once the schema holds)."""
    problems = []
    saliency = config.get("saliency", {})
    method, methods = saliency.get("method"), saliency.get("methods", [])
    if method == "auto" and config.get("split", {}).get("val_fraction") == 0:
        problems.append(
            "config key saliency.method: 'auto' chooses on validation samples, but "
            "split.val_fraction is 0; set saliency.method to one of "
            f"{methods} or keep a validation split"
        )
    if method not in (None, "auto") and method not in methods:
        problems.append(
            f"config key saliency.method: {method!r} is not computed; add it to "
            f"saliency.methods {methods} or choose one of them"
        )
    return problems
