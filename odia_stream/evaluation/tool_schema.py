"""Offered tools' parameter schemas as standard JSON Schema.

Logs carry Python-ish type names (HammerBench offers ``"type": "float"``), which JSON Schema
does not know. :func:`parameters_schema` maps them (``float`` → ``number``, ``int`` →
``integer`` ...) throughout a schema, checks the result is a valid JSON Schema, and raises
:class:`ToolSchemaError` for what cannot be mapped.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from schemas import FunctionSpec

#: The types JSON Schema knows.
JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
#: Non-standard type names seen in logs, and their JSON Schema type (``None``: any type).
TYPE_ALIASES: dict[str, str | None] = {
    "str": "string",
    "text": "string",
    "float": "number",
    "double": "number",
    "int": "integer",
    "long": "integer",
    "bool": "boolean",
    "list": "array",
    "tuple": "array",
    "dict": "object",
    "any": None,
}
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SCHEMA_ONES = ("items", "additionalProperties", "not", "contains", "propertyNames")


class ToolSchemaError(ValueError):
    """An offered tool's parameter schema is not usable JSON Schema."""


def _json_type(name: Any, where: str) -> str | None:
    if not isinstance(name, str):
        raise ToolSchemaError(f"{where}: type must be a string, got {name!r}")
    key = name.strip().lower()
    if key in JSON_TYPES:
        return key
    if key in TYPE_ALIASES:
        return TYPE_ALIASES[key]
    raise ToolSchemaError(
        f"{where}: unknown type {name!r} (JSON Schema types: {', '.join(sorted(JSON_TYPES))})"
    )


def normalize_schema(schema: Any, where: str = "parameters") -> Any:
    """A copy of ``schema`` with every ``type`` mapped to a JSON Schema type (booleans pass as is)."""
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, dict):
        raise ToolSchemaError(f"{where}: a schema must be an object, got {type(schema).__name__}")
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            names = value if isinstance(value, list) else [value]
            mapped = [_json_type(n, where) for n in names]
            if None in mapped:
                continue  # "any": no type constraint
            unique = list(dict.fromkeys(t for t in mapped if t is not None))
            out["type"] = unique[0] if len(unique) == 1 else unique
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: normalize_schema(v, f"{where}.{k}") for k, v in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [normalize_schema(v, f"{where}.{key}[{i}]") for i, v in enumerate(value)]
        elif key in _SCHEMA_ONES and isinstance(value, (dict, bool)):
            out[key] = normalize_schema(value, f"{where}.{key}")
        else:
            out[key] = value
    return out


@lru_cache(maxsize=4096)
def _checked(function_name: str, parameters_json: str) -> str:
    where = f"function {function_name!r} parameters"
    schema = normalize_schema(json.loads(parameters_json), where)
    if "type" not in schema:
        schema["type"] = "object"
    if schema["type"] != "object":
        raise ToolSchemaError(f"{where}: must be an object schema, got type {schema['type']!r}")
    props = schema.get("properties", {})
    if not isinstance(props, dict):
        raise ToolSchemaError(f"{where}: properties must be an object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ToolSchemaError(f"{where}: not a valid JSON Schema: {exc.message}") from exc
    return json.dumps(schema, ensure_ascii=False)


def parameters_schema(function: FunctionSpec) -> dict[str, Any]:
    """``function.parameters`` as a valid JSON Schema of an object (a fresh copy, key order kept;
    cached by content)."""
    text = json.dumps(function.parameters, ensure_ascii=False)
    result: dict[str, Any] = json.loads(_checked(function.name, text))
    return result


def allows_extra_arguments(schema: dict[str, Any]) -> bool:
    """Whether the object schema explicitly allows arguments beyond ``properties``."""
    extra = schema.get("additionalProperties")
    return extra is True or isinstance(extra, dict)
