"""JSON Schema of the small model's output, built from a request's offered tools.

Given to a structured-output decoder (vLLM ``guided_json`` / ``structured_outputs``), it makes
every output a well-formed call of one offered function with declared arguments of the right
types. Two shapes:

* keyed (default): ``{"<function>": {<arguments>}}``: no constant ``"name"``/``"arguments"`` tokens;
* name/arguments: ``{"name": "<function>", "arguments": {<arguments>}}``.

Argument names appear as their aliases when an alias lookup is given. Required arguments are
*not* forced by default: a decoder forced to emit them makes values up, while a call that lacks
them fails :func:`~odia_stream.evaluation.validate_call` and is escalated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from odia_stream.evaluation.tool_schema import ToolSchemaError, allows_extra_arguments, parameters_schema
from schemas import ToolSpec

#: Keys that only annotate a schema; dropped to keep the decoding grammar small.
_ANNOTATIONS = frozenset({"description", "title", "examples", "$comment", "default", "deprecated"})


class AliasLookup(Protocol):
    """Maps a function's real argument name to the name used in the output."""

    def alias(self, function: str, argument: str) -> str:
        """The output name of ``argument`` of ``function``."""
        ...


def strip_annotations(schema: Any) -> Any:
    """``schema`` without descriptions, titles, examples and defaults (recursively)."""
    if isinstance(schema, dict):
        out: dict[str, Any] = {}
        for k, v in schema.items():
            if k in _ANNOTATIONS:
                continue
            if k in ("properties", "patternProperties", "$defs", "definitions") and isinstance(v, dict):
                out[k] = {name: strip_annotations(s) for name, s in v.items()}
            elif k in ("enum", "const"):
                out[k] = v
            else:
                out[k] = strip_annotations(v)
        return out
    if isinstance(schema, list):
        return [strip_annotations(s) for s in schema]
    return schema


def arguments_schema(
    tool: ToolSpec, aliases: AliasLookup | None = None, *, require_required: bool = False
) -> dict[str, Any]:
    """The schema of one function's arguments object, with aliased names and no extra keys."""
    params = parameters_schema(tool.function)
    props: dict[str, Any] = params.get("properties", {})
    name = tool.name

    def out_name(arg: str) -> str:
        return aliases.alias(name, arg) if aliases is not None else arg

    schema: dict[str, Any] = {
        "type": "object",
        "properties": {out_name(arg): strip_annotations(s) for arg, s in props.items()},
    }
    if require_required:
        schema["required"] = [out_name(r) for r in params.get("required", []) if r in props]
    schema["additionalProperties"] = (
        strip_annotations(params["additionalProperties"]) if allows_extra_arguments(params) else False
    )
    return schema


def build_output_schema(
    tools: Sequence[ToolSpec],
    *,
    aliases: AliasLookup | None = None,
    keyed: bool = True,
    require_required: bool = False,
) -> dict[str, Any]:
    """An ``anyOf`` over the offered functions (first spec wins for a repeated name).

    Raises :class:`ToolSchemaError` when no tool is offered or a tool's schema is unusable.
    """
    if not tools:
        raise ToolSchemaError("no tools offered: there is no call to constrain the output to")
    seen: set[str] = set()
    options: list[dict[str, Any]] = []
    for tool in tools:
        if tool.name in seen:
            continue
        seen.add(tool.name)
        args = arguments_schema(tool, aliases, require_required=require_required)
        if keyed:
            options.append(
                {
                    "type": "object",
                    "properties": {tool.name: args},
                    "required": [tool.name],
                    "additionalProperties": False,
                }
            )
        else:
            options.append(
                {
                    "type": "object",
                    "properties": {"name": {"const": tool.name}, "arguments": args},
                    "required": ["name", "arguments"],
                    "additionalProperties": False,
                }
            )
    return {"anyOf": options}
