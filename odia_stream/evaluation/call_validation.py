"""Check a call against the offered tools' schemas before it is served.

A small-model call is served only when it names an offered function, gives every required
argument, gives no argument the function does not declare, and every value has the declared
JSON-Schema type, enum and constraints. Anything else is escalated to the large model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from jsonschema import Draft202012Validator

from odia_stream.evaluation.tool_schema import ToolSchemaError, allows_extra_arguments, parameters_schema
from schemas import FunctionCall, ToolSpec

IssueCode = Literal[
    "unknown_function",
    "invalid_tool_schema",
    "missing_required",
    "unknown_argument",
    "wrong_type",
    "not_in_enum",
    "schema_violation",
]


@dataclass(frozen=True)
class CallIssue:
    """One reason a call is not valid for the offered tools."""

    code: IssueCode
    message: str
    argument: str | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of :func:`validate_call`: ``ok`` when there are no errors."""

    call: FunctionCall
    errors: tuple[CallIssue, ...] = ()

    @property
    def ok(self) -> bool:
        """No error was found."""
        return not self.errors

    @property
    def codes(self) -> tuple[IssueCode, ...]:
        """The error codes, in the order found."""
        return tuple(e.code for e in self.errors)


@lru_cache(maxsize=8192)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def _value_issues(argument: str, value: Any, schema: Any) -> list[CallIssue]:
    validator = _validator(json.dumps(schema, sort_keys=True, ensure_ascii=False))
    issues: list[CallIssue] = []
    for err in sorted(validator.iter_errors(value), key=lambda e: (list(e.absolute_path), e.validator)):
        where = argument + "".join(f"[{p!r}]" for p in err.absolute_path)
        if err.validator == "type":
            code: IssueCode = "wrong_type"
            message = f"argument {where!r}: {value_repr(err.instance)} is not of type {err.validator_value!r}"
        elif err.validator in ("enum", "const"):
            code = "not_in_enum"
            allowed = err.validator_value if err.validator == "enum" else [err.validator_value]
            message = f"argument {where!r}: {value_repr(err.instance)} is not one of {allowed!r}"
        else:
            code = "schema_violation"
            message = f"argument {where!r}: {err.message}"
        issues.append(CallIssue(code, message, argument))
    return issues


def value_repr(value: Any, limit: int = 60) -> str:
    """A short JSON rendering of a value for messages."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_call(
    call: FunctionCall, tools: Sequence[ToolSpec], *, check_required: bool = True
) -> ValidationResult:
    """Check ``call`` against the offered ``tools``.

    Errors: the function is not offered; its schema is unusable; a required argument is missing
    (unless ``check_required`` is false: logs whose large model calls with partial arguments
    and asks for the rest, like HammerBench's, are valid there); an argument the function does
    not declare (unless its schema sets ``additionalProperties``); a value of the wrong type,
    outside its enum, or breaking another JSON-Schema constraint. ``null`` is a value like any
    other (wrong unless the schema allows it).
    """
    tool = next((t for t in tools if t.name == call.name), None)
    if tool is None:
        offered = ", ".join(sorted({t.name for t in tools})) or "none"
        return ValidationResult(
            call,
            (CallIssue("unknown_function", f"function {call.name!r} is not offered (offered: {offered})"),),
        )
    try:
        schema = parameters_schema(tool.function)
    except ToolSchemaError as exc:
        return ValidationResult(call, (CallIssue("invalid_tool_schema", str(exc)),))
    props: dict[str, Any] = schema.get("properties", {})
    issues: list[CallIssue] = []
    if check_required:
        for name in schema.get("required", []):
            if name not in call.arguments:
                issues.append(CallIssue("missing_required", f"required argument {name!r} is missing", name))
    extra_ok = allows_extra_arguments(schema)
    for name, value in call.arguments.items():
        if name in props:
            issues.extend(_value_issues(name, value, props[name]))
        elif extra_ok:
            extra = schema["additionalProperties"]
            if isinstance(extra, dict):
                issues.extend(_value_issues(name, value, extra))
        else:
            known = ", ".join(props) or "none"
            issues.append(
                CallIssue(
                    "unknown_argument",
                    f"argument {name!r} is not declared by {call.name!r} (declared: {known})",
                    name,
                )
            )
    return ValidationResult(call, tuple(issues))
