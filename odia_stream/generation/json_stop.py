"""Where a generated JSON object ends, and how many tokens an arguments object may need.

The small model's output is one JSON object (a call, or with the function given only its arguments).
A backend without a grammar stops at the end-of-turn token; :func:`json_object_end` lets it stop
as soon as the object closes instead (a model that goes on writing after the closing brace costs
a decode step per token). :func:`arguments_token_budget` bounds the generation by what the
function's argument schema can need, so a model that repeats itself inside a string value is cut
off early (the cut output fails to parse and the request is escalated, never answered wrongly).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["arguments_token_budget", "json_object_end"]

#: Tokens allowed per value of each JSON type (strings: the setting's ``string_tokens``).
_VALUE_TOKENS = {"integer": 8, "number": 10, "boolean": 2, "null": 2}
#: An argument's name (an alias or a word), its quotes, the colon and the comma.
_PER_ARGUMENT = 6


def json_object_end(text: str) -> int | None:
    """The index just past the first complete top-level JSON object in ``text`` (anything before
    its ``{`` is skipped, e.g. a ``<tool_call>`` tag), or ``None`` while it is still open.

    >>> json_object_end('{"a":"x}"}\\n<|im_end|>')
    10
    >>> json_object_end('<tool_call>\\n{"f":{"a":[1,{"b":2}]}} more') == len('<tool_call>\\n{"f":{"a":[1,{"b":2}]}}')
    True
    >>> json_object_end('{"a":"still \\\\" open')
    """
    depth = 0
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"' and depth:
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]" and depth:
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def arguments_token_budget(schema: Mapping[str, Any], string_tokens: int) -> int:
    """The most tokens an arguments object of ``schema`` should take: per argument its name and
    punctuation plus its value (``string_tokens`` for a free string, the longest value for an enum),
    braces and the end-of-turn token.

    >>> arguments_token_budget({"type": "object", "properties": {"a": {"type": "string"},
    ...     "b": {"type": "integer"}, "c": {"enum": ["jazz", "rock"]}}}, string_tokens=24)
    58
    """
    total = 3  # braces and the end-of-turn token
    for spec in (schema.get("properties") or {}).values():
        total += _PER_ARGUMENT + _value_tokens(spec if isinstance(spec, Mapping) else {}, string_tokens)
    return total


def _value_tokens(spec: Mapping[str, Any], string_tokens: int) -> int:
    if "enum" in spec or "const" in spec:
        values = spec.get("enum") or [spec.get("const")]
        return 2 + max(len(str(v)) for v in values) // 2 + 1
    kind = spec.get("type")
    if isinstance(kind, list):
        return max(_value_tokens({**spec, "type": k}, string_tokens) for k in kind)
    if kind in _VALUE_TOKENS:
        return _VALUE_TOKENS[kind]
    if kind == "array":
        items = spec.get("items")
        return 2 + 4 * _value_tokens(items if isinstance(items, Mapping) else {}, string_tokens)
    if kind == "object":
        return arguments_token_budget(spec, string_tokens)
    if "anyOf" in spec or "oneOf" in spec:
        options = spec.get("anyOf") or spec.get("oneOf") or []
        return max((_value_tokens(o, string_tokens) for o in options if isinstance(o, Mapping)), default=string_tokens)
    return string_tokens  # a string, or a value of any type
