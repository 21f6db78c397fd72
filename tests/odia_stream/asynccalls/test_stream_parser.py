"""Calls out of a streaming generation: split anywhere, nested strings with braces, malformed and
truncated outputs (nothing that would not parse is ever handed out), OpenAI-style deltas, and
which calls may be dispatched early."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from odia_stream.asynccalls.stream_parser import (
    CallTextStream,
    StreamedCall,
    StreamProblem,
    ToolCallDeltas,
    early_dispatchable,
)
from schemas import FunctionCall, ToolSpec

CALLS = [
    FunctionCall(name="play_music", arguments={"song": "Lover {live}", "singer": "Ad\"ele \\ }]"}),
    FunctionCall(name="set_volume", arguments={"level": 30, "ramp": {"steps": [1, 2, {"x": "]"}]}}),
    FunctionCall(name="get_weather", arguments={"city": "北京", "when": "明天{"}),
]
TEXT = ("<tool_call>\n" + json.dumps({"name": CALLS[0].name, "arguments": CALLS[0].arguments}) + "\n</tool_call>\n"
        "<tool_call>\n" + json.dumps({CALLS[1].name: CALLS[1].arguments}, ensure_ascii=False) + "\n</tool_call>\n"
        + json.dumps({"name": CALLS[2].name, "arguments": json.dumps(CALLS[2].arguments, ensure_ascii=False)},
                     ensure_ascii=False) + "<|im_end|>")


def _run(chunks: list[str]) -> tuple[list[StreamedCall], list[StreamProblem]]:
    stream = CallTextStream()
    got = [x for chunk in chunks for x in stream.feed(chunk)] + list(stream.close())
    return [x for x in got if isinstance(x, StreamedCall)], [x for x in got if isinstance(x, StreamProblem)]


def test_every_split_point_yields_the_same_calls_at_the_same_positions() -> None:
    whole, problems = _run([TEXT])
    assert [c.call for c in whole] == CALLS and problems == [] and [c.index for c in whole] == [0, 1, 2]
    for cut in range(len(TEXT) + 1):
        calls, problems = _run([TEXT[:cut], TEXT[cut:]])
        assert calls == whole and problems == [], cut
    calls, _ = _run(list(TEXT))  # one character at a time
    assert calls == whole


def test_each_call_is_handed_out_the_moment_its_closing_brace_arrives() -> None:
    stream = CallTextStream()
    first_end = whole_end = None
    for i, ch in enumerate(TEXT):
        for item in stream.feed(ch):
            assert isinstance(item, StreamedCall)
            if item.index == 0:
                first_end = i + 1
                assert TEXT[i] == "}" and item.end == i + 1
            whole_end = i + 1
    assert first_end is not None and first_end < TEXT.index("</tool_call>") < whole_end  # type: ignore[operator]


def test_a_top_level_array_of_calls() -> None:
    text = json.dumps([{"name": c.name, "arguments": c.arguments} for c in CALLS], ensure_ascii=False)
    for cut in range(0, len(text) + 1, 7):
        calls, problems = _run([text[:cut], text[cut:]])
        assert [c.call for c in calls] == CALLS and problems == []


def test_malformed_objects_are_problems_and_scanning_goes_on() -> None:
    text = ('{"play_music": {"song": tru}} {"a": [1}, 2]} {"x": 1, "y": 2} '
            '{"name": "", "arguments": {}} ' + json.dumps({"stop": {}}))
    calls, problems = _run([text])
    assert [c.call.name for c in calls] == ["stop"] and calls[0].index == 4
    assert [p.error.split(":")[0] for p in problems] == ["not JSON", "malformed", "not a call", "not a call"]


def test_a_truncated_output_hands_out_nothing_for_the_cut_object() -> None:
    cut = TEXT[: TEXT.index("set_volume") + 20]
    calls, problems = _run([cut])
    assert [c.call for c in calls] == CALLS[:1]
    assert len(problems) == 1 and problems[0].error.startswith("truncated") and problems[0].text.startswith("{")


@settings(max_examples=120, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["play", "stop", "seek"]),
                       st.dictionaries(st.text(min_size=1, max_size=5),
                                       st.one_of(st.text(max_size=8), st.integers(), st.booleans(),
                                                 st.lists(st.text(max_size=3), max_size=3)), max_size=3)),
             min_size=1, max_size=4),
    st.sampled_from(["bare", "array", "tagged"]),
    st.integers(0, 2**32 - 1),
)
def test_any_calls_any_wrapping_any_chunks(calls: list, wrapping: str, seed: int) -> None:
    objs = [{"name": n, "arguments": a} for n, a in calls]
    if wrapping == "array":
        text = json.dumps(objs, ensure_ascii=False)
    elif wrapping == "tagged":
        text = "".join(f"<tool_call>\n{json.dumps(o, ensure_ascii=False)}\n</tool_call>\n" for o in objs)
    else:
        text = " ".join(json.dumps(o) for o in objs)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 6))))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    got, problems = _run(chunks)
    assert problems == [] and [(c.call.name, c.call.arguments) for c in got] == [(n, a) for n, a in calls]


def test_openai_deltas_complete_each_call_when_its_arguments_close() -> None:
    args = [json.dumps(c.arguments, ensure_ascii=False) for c in CALLS[:2]]
    deltas = ToolCallDeltas()
    out = deltas.feed([{"index": 0, "id": "c0", "function": {"name": "play_", "arguments": ""}}])
    out += deltas.feed([{"index": 0, "function": {"name": "music", "arguments": args[0][:9]}}])
    assert out == []
    out += deltas.feed([{"index": 1, "id": "c1", "function": {"name": "set_volume", "arguments": args[1][:5]}}])
    out += deltas.feed([{"index": 0, "function": {"arguments": args[0][9:]}}])
    assert [c.call for c in out if isinstance(c, StreamedCall)] == CALLS[:1], "call 0 done while call 1 streams"
    out += deltas.feed([{"index": 1, "function": {"arguments": args[1][5:]}}])
    out += deltas.feed([{"index": 2, "function": {"name": "list_alarms", "arguments": ""}},
                        {"index": 3, "function": {"name": "stop", "arguments": '{"now": tr'}}])
    out += deltas.close()
    calls = [c for c in out if isinstance(c, StreamedCall)]
    assert [c.call for c in calls] == [*CALLS[:2], FunctionCall(name="list_alarms", arguments={})]
    problems = [p for p in out if isinstance(p, StreamProblem)]
    assert [(p.index, p.error.split(":")[0]) for p in problems] == [(3, "truncated")]


def test_only_valid_calls_of_safe_functions_go_early() -> None:
    tools = [ToolSpec.model_validate({"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}),
             ToolSpec.model_validate({"name": "pay", "parameters": {
                 "type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]}})]
    safe = {"get_weather"}
    assert early_dispatchable(FunctionCall(name="get_weather", arguments={"city": "Oslo"}), tools, safe) == (True, "")
    ok, why = early_dispatchable(FunctionCall(name="pay", arguments={"amount": 5}), tools, safe)
    assert not ok and "not marked safe" in why, "a write function never goes early"
    ok, why = early_dispatchable(FunctionCall(name="get_weather", arguments={"city": 3}), tools, safe)
    assert not ok and why
