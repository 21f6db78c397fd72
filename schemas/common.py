"""Shapes shared by several topics: OpenAI-style tools, calls and chat messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1


def utc_now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


class WireModel(BaseModel):
    """Base of every wire model: strict about unknown keys, immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FunctionSpec(WireModel):
    """A function the model may call: name, description and JSON-Schema parameters."""

    name: str = Field(min_length=1, max_length=256)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    @field_validator("name")
    @classmethod
    def _name_is_trimmed(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError("function name must not start or end with whitespace")
        return value

    def required_arguments(self) -> tuple[str, ...]:
        """Names listed in ``parameters.required``."""
        required = self.parameters.get("required", [])
        return tuple(r for r in required if isinstance(r, str)) if isinstance(required, list) else ()

    def argument_names(self) -> tuple[str, ...]:
        """Names listed in ``parameters.properties``."""
        props = self.parameters.get("properties", {})
        return tuple(props) if isinstance(props, dict) else ()


class ToolSpec(WireModel):
    """An offered tool in the OpenAI ``tools`` shape.

    Accepts ``{"type": "function", "function": {...}}`` or the bare function object
    ``{"name", "description", "parameters"}`` and always serialises the wrapped form.
    """

    type: Literal["function"] = "function"
    function: FunctionSpec

    @model_validator(mode="before")
    @classmethod
    def _accept_bare_function(cls, data: Any) -> Any:
        if isinstance(data, dict) and "function" not in data and "name" in data:
            return {"type": "function", "function": data}
        return data

    @property
    def name(self) -> str:
        """The function's name."""
        return self.function.name


class FunctionCall(WireModel):
    """A call as the model made it: ``{"name", "arguments"}``.

    ``arguments`` may arrive as a JSON string (as OpenAI sends it); it is parsed into an object.
    """

    name: str = Field(min_length=1, max_length=256)
    arguments: dict[str, Any] = Field(default_factory=dict)

    @field_validator("arguments", mode="before")
    @classmethod
    def _parse_json_arguments(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return {}
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"arguments is a string but not JSON: {exc.msg}") from exc
            if not isinstance(parsed, dict):
                raise ValueError("arguments JSON must be an object")
            return parsed
        return value


class ToolCall(WireModel):
    """One entry of an assistant message's ``tool_calls`` (OpenAI shape)."""

    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(WireModel):
    """A history message: user or assistant text, an assistant's tool calls, or a tool result."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _has_something(self) -> ChatMessage:
        if self.content is None and not self.tool_calls:
            raise ValueError("a message needs content or tool_calls")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        return self

    def called_functions(self) -> tuple[str, ...]:
        """Names of the functions this message called (empty unless an assistant tool call)."""
        return tuple(tc.function.name for tc in self.tool_calls or ())


def check_call_offered(call: FunctionCall | None, tools: list[ToolSpec]) -> None:
    """Raise ``PydanticCustomError('unknown_function')`` when ``call`` names no offered tool."""
    from pydantic_core import PydanticCustomError

    if call is None:
        return
    names = {t.name for t in tools}
    if call.name not in names:
        raise PydanticCustomError(
            "unknown_function",
            "call names function '{name}', which is not among the offered tools",
            {"name": call.name},
        )
