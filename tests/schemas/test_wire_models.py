"""The wire contract: OpenAI shapes accepted, bad values rejected, JSON Schema files fresh."""

from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import ValidationError

from schemas import TOPIC_MODELS, ChatMessage, FCLogEvent, FunctionCall, ServeResponse, ToolSpec
from schemas.export import SCHEMA_DIR, render_schemas, stale_files

PLAY = {"name": "play_song", "description": "Play a song", "parameters": {"type": "object", "properties": {"song": {"type": "string"}}, "required": ["song"]}}


def test_tool_accepts_wrapped_and_bare_function_objects() -> None:
    bare = ToolSpec.model_validate(PLAY)
    wrapped = ToolSpec.model_validate({"type": "function", "function": PLAY})
    assert bare == wrapped
    assert bare.model_dump()["type"] == "function"
    assert bare.function.required_arguments() == ("song",)


def test_call_arguments_may_arrive_as_json_string() -> None:
    assert FunctionCall(name="f", arguments='{"a": 1}').arguments == {"a": 1}
    assert FunctionCall(name="f", arguments="").arguments == {}
    with pytest.raises(ValidationError, match="not JSON"):
        FunctionCall(name="f", arguments="{oops")
    with pytest.raises(ValidationError, match="must be an object"):
        FunctionCall(name="f", arguments="[1, 2]")


def test_history_keeps_tool_calls_and_tool_results() -> None:
    msg = ChatMessage.model_validate(
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "play_song", "arguments": "{}"}}]}
    )
    assert msg.called_functions() == ("play_song",)
    ChatMessage(role="tool", content='{"ok": true}', tool_call_id="c1")
    with pytest.raises(ValidationError):
        ChatMessage(role="user")
    with pytest.raises(ValidationError, match="only assistant"):
        ChatMessage.model_validate({"role": "user", "tool_calls": [{"function": {"name": "x"}}]})


def test_event_rejects_call_to_a_tool_not_offered() -> None:
    with pytest.raises(ValidationError) as info:
        FCLogEvent(event_id="e", query="play it", tools=[PLAY], call={"name": "pay_bill"})
    assert info.value.errors()[0]["type"] == "unknown_function"


def test_event_rejects_empty_query_and_unknown_fields() -> None:
    with pytest.raises(ValidationError) as info:
        FCLogEvent(event_id="e", query=" \n ", tools=[])
    assert info.value.errors()[0]["type"] == "empty_query"
    with pytest.raises(ValidationError):
        FCLogEvent.model_validate({"event_id": "e", "query": "q", "surprise": 1})


def test_json_round_trip() -> None:
    ev = FCLogEvent(event_id="e", query="play x", tools=[PLAY], call={"name": "play_song", "arguments": {"song": "x"}})
    assert FCLogEvent.model_validate_json(ev.model_dump_json()) == ev


def test_schema_files_are_fresh() -> None:
    assert stale_files() == [], "JSON Schema files are stale: run `python -m schemas.export`"
    assert {p.name for p in SCHEMA_DIR.glob("*.schema.json")} == set(render_schemas())


@pytest.mark.parametrize("name", sorted(TOPIC_MODELS))
def test_exported_schema_validates_a_model_dump(name: str) -> None:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    examples = {
        "FCLogEvent": FCLogEvent(event_id="e", query="q", tools=[PLAY], call={"name": "play_song", "arguments": {"song": "s"}}),
        "ServeResponse": ServeResponse(
            request_id="r", call=None, served_by="large", route_reason="complex",
            latency={"route_ms": 1, "generate_ms": 2, "validate_ms": 0, "total_ms": 3},
        ),
    }
    if name in examples:
        jsonschema.validate(json.loads(examples[name].model_dump_json()), schema)
