"""Validate raw topic values into ``FCLogEvent``s; every rejection carries a typed reason."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from schemas import FCLogEvent
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
