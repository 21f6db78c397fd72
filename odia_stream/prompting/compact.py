"""How the offered tools are written into the system prompt: full JSON schemas, or compact lines.

Full (the usual function-calling prompt): one OpenAI tool object per line, as JSON.
Compact: one line per function and one per argument, no JSON syntax, string types implied::

    AddToPlaylist: Add to playlist ...
     a: The artist as the user said it ...
     d*: The playlist ...
     e integer: ...  [one of: x|y]

With aliases, argument names are replaced by their alias; an argument without a description
then shows its real name as description, so the model never loses what it means.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from odia_stream.evaluation.tool_schema import parameters_schema
from odia_stream.prompting.aliases import ArgumentAliases
from schemas import ToolSpec


def _unique(tools: Sequence[ToolSpec]) -> list[ToolSpec]:
    seen: set[str] = set()
    out = []
    for t in tools:
        if t.name not in seen:
            seen.add(t.name)
            out.append(t)
    return out


def shorten(text: str, max_chars: int = 0) -> str:
    """``text`` on one line; longer than ``max_chars`` (when > 0): cut at a word boundary, with "…"."""
    line = " ".join(text.split())
    if max_chars <= 0 or len(line) <= max_chars:
        return line
    cut = line[:max_chars]
    if " " in cut and not line[max_chars].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.") + "…"


def type_label(schema: Any) -> str:
    """A short type name: ``integer``, ``array of number``, ``string|null`` ... (empty for plain strings)."""
    if not isinstance(schema, dict):
        return ""
    t = schema.get("type")
    if isinstance(t, list):
        label = "|".join(str(x) for x in t)
    elif t == "array":
        inner = type_label(schema.get("items")) or ("string" if isinstance(schema.get("items"), dict) else "")
        label = f"array of {inner}" if inner else "array"
    elif t == "object" and isinstance(schema.get("properties"), dict):
        label = "object " + json.dumps(schema["properties"], ensure_ascii=False, separators=(",", ":"))
    elif t is None and ("anyOf" in schema or "oneOf" in schema):
        options = schema.get("anyOf") or schema.get("oneOf") or []
        label = "|".join(type_label(s) or "string" for s in options)
    else:
        label = str(t) if t else ""
    return "" if label == "string" else label


def render_tools_compact(
    tools: Sequence[ToolSpec], aliases: ArgumentAliases, max_description_chars: int = 0
) -> str:
    """Compact lines for every offered function (normalised JSON types; ``*`` marks required;
    descriptions cut to ``max_description_chars`` when > 0)."""
    lines: list[str] = []
    for tool in _unique(tools):
        fn = tool.function
        schema = parameters_schema(fn)
        props: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        about = shorten(fn.description, max_description_chars)
        lines.append(f"{fn.name}: {about}" if about else fn.name)
        for real, spec in props.items():
            shown = aliases.alias(fn.name, real)
            spec = spec if isinstance(spec, dict) else {}
            head = shown + ("*" if real in required else "")
            kind = type_label(spec)
            if kind:
                head += " " + kind
            desc = shorten(str(spec.get("description", "")), max_description_chars)
            if not desc and shown != real:
                desc = real
            line = f" {head}: {desc}" if desc else f" {head}"
            if "enum" in spec:
                line += (
                    " [one of: "
                    + "|".join(json.dumps(v, ensure_ascii=False).strip('"') for v in spec["enum"])
                    + "]"
                )
            if "default" in spec:
                line += " [default: " + json.dumps(spec["default"], ensure_ascii=False) + "]"
            lines.append(line)
    return "\n".join(lines)


def render_tools_json(tools: Sequence[ToolSpec], aliases: ArgumentAliases) -> str:
    """One OpenAI tool object per line, with aliased argument names (schemas otherwise as offered)."""
    lines: list[str] = []
    for tool in _unique(tools):
        data = tool.model_dump()
        params = data["function"]["parameters"]
        props = params.get("properties")
        if isinstance(props, dict):
            renamed: dict[str, Any] = {}
            for real, spec in props.items():
                shown = aliases.alias(tool.name, real)
                if shown != real and isinstance(spec, dict) and not spec.get("description"):
                    spec = {**spec, "description": real}
                renamed[shown] = spec
            params["properties"] = renamed
            if isinstance(params.get("required"), list):
                params["required"] = [
                    aliases.alias(tool.name, r) if r in props else r for r in params["required"]
                ]
        lines.append(json.dumps(data, ensure_ascii=False))
    return "\n".join(lines)
