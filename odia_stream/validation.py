"""Validate raw topic values into ``FCLogEvent``s; every rejection carries a typed reason."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import msgspec
from pydantic import TypeAdapter, ValidationError

from schemas import FCLogEvent, ToolSpec
from schemas.dead_letter import ReasonCode

#: Larger values are rejected before parsing.
MAX_EVENT_BYTES = 1_000_000


@dataclass(frozen=True)
class InvalidEvent(Exception):
    """A raw value that is not a valid ``FCLogEvent``; ``code`` is machine-readable."""

    code: ReasonCode
    reason: str
    event_id: str | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"


def _event_id_of(raw: bytes) -> str | None:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    value = data.get("event_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def _summarise(error: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in error.errors()[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "<value>"
        parts.append(f"{loc}: {err.get('msg')}")
    more = error.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse_event(raw: bytes | None, max_bytes: int = MAX_EVENT_BYTES) -> FCLogEvent:
    """Parse and validate one raw value.

    Raises :class:`InvalidEvent` with code ``too_large``, ``not_utf8``, ``not_json``,
    ``empty_query``, ``unknown_function`` (the call names no offered tool) or ``schema``.
    """
    if raw is None:
        raise InvalidEvent("schema", "value is null (a tombstone is not an event)")
    if len(raw) > max_bytes:
        raise InvalidEvent("too_large", f"value is {len(raw)} bytes, limit {max_bytes}")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent("not_utf8", f"value is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    try:
        return FCLogEvent.model_validate_json(raw)
    except ValidationError as exc:
        types = {e["type"] for e in exc.errors()}
        event_id = _event_id_of(raw)
        if "json_invalid" in types or "json_type" in types:
            raise InvalidEvent("not_json", _summarise(exc), event_id) from exc
        if "empty_query" in types:
            raise InvalidEvent("empty_query", "query is empty or whitespace", event_id) from exc
        if "unknown_function" in types:
            raise InvalidEvent("unknown_function", _summarise(exc), event_id) from exc
        raise InvalidEvent("schema", _summarise(exc), event_id) from exc


_TOOLS = TypeAdapter(list[ToolSpec])
_FIELDS = msgspec.json.Decoder(dict[str, msgspec.Raw])
_VALUE = msgspec.json.Decoder()


class EventParser:
    """:func:`parse_event` with the offered tools validated once per distinct tool list.

    Production logs repeat the same few tool lists (kilobytes of JSON Schema each) on every
    event, so the parser keeps the validated tools keyed by their exact JSON bytes (an LRU of
    ``max_tool_lists``) and validates only the rest of each event. The result is the same
    event :func:`parse_event` returns; anything the fast path cannot take goes through
    :func:`parse_event` itself, so rejections carry exactly its codes and reasons.
    """

    def __init__(self, max_bytes: int = MAX_EVENT_BYTES, max_tool_lists: int = 4096) -> None:
        self.max_bytes = max_bytes
        self.max_tool_lists = max_tool_lists
        self._tools: OrderedDict[bytes, tuple[ToolSpec, ...]] = OrderedDict()
        #: Events answered from the tools cache / sent through the full path.
        self.fast = 0
        self.full = 0

    def parse(self, raw: bytes | None) -> FCLogEvent:
        """Parse and validate one raw value (raises :class:`InvalidEvent`)."""
        event = self._fast(raw) if raw is not None and len(raw) <= self.max_bytes else None
        if event is not None:
            self.fast += 1
            return event
        self.full += 1
        return parse_event(raw, self.max_bytes)

    def _fast(self, raw: bytes) -> FCLogEvent | None:
        try:
            raw.decode("utf-8")
            fields = _FIELDS.decode(raw)
            tools_raw = fields.pop("tools", None)
            data: dict[str, Any] = {k: _VALUE.decode(v) for k, v in fields.items()}
            if tools_raw is not None:
                data["tools"] = self._tools_of(bytes(tools_raw))
            return FCLogEvent.model_validate(data)
        except (UnicodeDecodeError, msgspec.DecodeError, ValidationError, ValueError, TypeError):
            return None

    def _tools_of(self, raw: bytes) -> tuple[ToolSpec, ...]:
        tools = self._tools.get(raw)
        if tools is None:
            tools = tuple(_TOOLS.validate_json(raw))
            self._tools[raw] = tools
            if len(self._tools) > self.max_tool_lists:
                self._tools.popitem(last=False)
        else:
            self._tools.move_to_end(raw)
        return tools
