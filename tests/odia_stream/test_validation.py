"""Raw values → events or typed rejections."""

from __future__ import annotations

import json

import pytest

from odia_stream.validation import EventParser, InvalidEvent, parse_event
from schemas import FCLogEvent

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


def _bad_values() -> list[bytes | None]:
    return [
        b"not json", b"\xff\xfe\x00", b"[1,2]", None, b"{}", b'{"event_id": "e1"}',
        _raw(query="   "), _raw(call={"name": "transfer_money"}), _raw(event_id=""), _raw(tools="nope"),
        _raw(tools=[{"name": " padded "}]), _raw(call={"name": "play_song", "arguments": "{not json"}),
        _raw(unexpected=1), _raw(schema_version=2), _raw(history=[{"role": "user"}]),
    ]


@pytest.mark.parametrize("raw", _bad_values())
def test_event_parser_rejects_exactly_like_parse_event(raw: bytes | None) -> None:
    parser = EventParser()
    parser.parse(_raw())  # the valid tool list is now cached: rejections must not lean on it
    with pytest.raises(InvalidEvent) as expected:
        parse_event(raw)
    with pytest.raises(InvalidEvent) as got:
        parser.parse(raw)
    assert (got.value.code, got.value.reason, got.value.event_id) == (
        expected.value.code, expected.value.reason, expected.value.event_id
    )


def test_event_parser_equals_parse_event_on_dataset_records(snips_events: list[FCLogEvent], hammerbench_events: list[FCLogEvent]) -> None:
    raws = [e.model_dump_json().encode() for e in [*snips_events[:300], *hammerbench_events[:300]]]
    parser = EventParser()
    assert [parser.parse(r) for r in raws] == [parse_event(r) for r in raws]
    assert parser.fast == len(raws) and parser.full == 0
    # Bare function objects and string arguments (as OpenAI sends them) take the same path.
    raw = json.dumps(
        {"event_id": "o1", "timestamp": "2026-01-02T03:04:05Z", "query": "play x", "tools": TOOLS, "call": {"name": "play_song", "arguments": '{"song": "x"}'}}
    ).encode()
    assert parser.parse(raw) == parse_event(raw)


def test_event_parser_validates_each_tool_list_once_and_stays_bounded() -> None:
    parser = EventParser(max_tool_lists=2)
    first = parser.parse(_raw(event_id="a"))
    second = parser.parse(_raw(event_id="b"))
    assert first.tools[0] is second.tools[0]  # validated once, shared
    for i in range(5):
        tools = [{"name": f"f{i}", "parameters": {"type": "object", "properties": {}}}]
        parser.parse(_raw(event_id=f"t{i}", tools=tools, call={"name": f"f{i}"}))
    assert len(parser._tools) == 2
    with pytest.raises(InvalidEvent, match="unknown_function"):
        parser.parse(_raw(event_id="c", tools=[{"name": "f4"}]))  # a cached list still checks the call
