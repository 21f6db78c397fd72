"""Raw values → events or typed rejections."""

from __future__ import annotations

import json

import pytest

from odia_stream.validation import InvalidEvent, parse_event

TOOLS = [{"name": "play_song", "parameters": {"type": "object", "properties": {"song": {"type": "string"}}}}]


def _raw(**fields: object) -> bytes:
    base: dict[str, object] = {"event_id": "e1", "query": "play x", "tools": TOOLS, "call": {"name": "play_song", "arguments": {"song": "x"}}}
    base.update(fields)
    return json.dumps(base).encode()


def test_valid_event_parses() -> None:
    assert parse_event(_raw()).call.arguments == {"song": "x"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"not json", "not_json"),
        (b"\xff\xfe\x00", "not_utf8"),
        (b"[1,2]", "schema"),
        (None, "schema"),
        (_raw(query="   "), "empty_query"),
        (_raw(call={"name": "transfer_money"}), "unknown_function"),
        (_raw(event_id=""), "schema"),
        (_raw(tools="nope"), "schema"),
    ],
)
def test_rejections_carry_a_code_and_reason(raw: bytes | None, code: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw)
    assert info.value.code == code
    assert info.value.reason


def test_event_id_is_kept_on_rejection_when_readable() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(_raw(query=""))
    assert info.value.event_id == "e1"


def test_oversized_values_are_rejected_before_parsing() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(b"x" * 100, max_bytes=10)
    assert info.value.code == "too_large"
