"""The OpenAI-compatible large-model client: request building, response parsing, and retries
against a real HTTP server on loopback that answers with recorded OpenAI-shaped JSON.

The end-to-end test against a real model server (vLLM's OpenAI-compatible server) is in
``tests/vllm/test_openai_large_model_on_vllm.py`` (needs the vLLM environment).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from odia_stream.datasets import load_dataset
from odia_stream.large_model import (
    LargeModelError,
    OpenAIChatLargeModel,
    build_chat_request,
    build_large_model,
    messages_for,
    parse_chat_response,
)
from odia_stream.large_model.openai_client import MISSING_RESULT
from odia_stream.settings import LargeModelSettings, OdiaSettings
from schemas import ChatMessage, FCLogEvent, FunctionCall, ServeRequest, ToolSpec

#: A tool as OpenAI's API takes it; requests must carry it back in exactly this shape.
GET_WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TOOLS = [
    ToolSpec.model_validate(GET_WEATHER),
    ToolSpec.model_validate({"name": "play_music", "parameters": {"type": "object", "properties": {}}}),
]

#: A chat completion as OpenAI's API returns it for a tool call (arguments are a JSON string).
RECORDED_TOOL_CALL: dict[str, Any] = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion",
    "created": 1735689600,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_Xy12",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99},
}

RECORDED_TEXT: dict[str, Any] = {
    "id": "chatcmpl-def456",
    "object": "chat.completion",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Which city?"}, "finish_reason": "stop"}
    ],
}


def _serve_request(**changes: object) -> ServeRequest:
    fields: dict[str, object] = {"request_id": "r1", "query": "weather in Paris?", "tools": TOOLS}
    fields.update(changes)
    return ServeRequest(**fields)  # type: ignore[arg-type]


# --- request building -------------------------------------------------------------------------


def test_messages_keep_history_calls_as_json_strings_and_answer_unanswered_calls(datasets_dir: Path) -> None:
    events = load_dataset(datasets_dir / "hammerbench" / "zh" / "HammerBench_mQmA.json")
    ev: FCLogEvent = next(e for e in events if any(m.tool_calls for m in e.history))
    msgs = messages_for(ev.history, ev.query, system_prompt="be brief")
    assert msgs[0] == {"role": "system", "content": "be brief"}
    assert msgs[-1] == {"role": "user", "content": ev.query}
    calls = [m for m in msgs if m.get("tool_calls")]
    assert calls
    for m in calls:
        idx = msgs.index(m)
        for j, tc in enumerate(m["tool_calls"]):
            assert tc["type"] == "function" and tc["id"]
            assert isinstance(tc["function"]["arguments"], str)
            json.loads(tc["function"]["arguments"])
            # HammerBench logs no tool results: each call is answered by a "not recorded" tool message.
            answer = msgs[idx + 1 + j]
            assert answer == {
                "role": "tool",
                "tool_call_id": tc["id"],
                "name": tc["function"]["name"],
                "content": MISSING_RESULT,
            }


def test_recorded_tool_results_are_kept_and_not_duplicated() -> None:
    history = [
        ChatMessage(role="user", content="play something"),
        ChatMessage(role="assistant", tool_calls=[{"function": {"name": "play_music", "arguments": {}}}]),
        ChatMessage(role="tool", tool_call_id="call_1", name="play_music", content='{"ok": true}'),
        ChatMessage(role="assistant", content="Playing."),
    ]
    msgs = messages_for(history, "louder")
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "assistant", "user"]
    assert msgs[1]["tool_calls"][0]["id"] == "call_1" and msgs[2]["content"] == '{"ok": true}'


def test_chat_request_carries_tools_in_openai_shape() -> None:
    body = build_chat_request(
        _serve_request(), "big-model", tool_choice="required", temperature=0.2, max_tokens=50
    )
    assert body["model"] == "big-model" and body["tool_choice"] == "required" and body["temperature"] == 0.2
    assert body["parallel_tool_calls"] is False and body["max_tokens"] == 50
    assert body["tools"][0] == GET_WEATHER
    no_tools = build_chat_request(_serve_request(tools=[]), "big-model")
    assert "tools" not in no_tools and "tool_choice" not in no_tools and "max_tokens" not in no_tools


# --- response parsing -------------------------------------------------------------------------


def test_parse_recorded_responses() -> None:
    call, reason = parse_chat_response(RECORDED_TOOL_CALL, TOOLS)
    assert call == FunctionCall(name="get_weather", arguments={"city": "Paris"}) and reason is None
    call, reason = parse_chat_response(RECORDED_TEXT, TOOLS)
    assert call is None and "without a call" in (reason or "") and "Which city?" in (reason or "")
    unoffered = json.loads(json.dumps(RECORDED_TOOL_CALL))
    unoffered["choices"][0]["message"]["tool_calls"][0]["function"]["name"] = "delete_everything"
    call, reason = parse_chat_response(unoffered, TOOLS)
    assert call is None and "not among the offered tools" in (reason or "")
    bad_args = json.loads(json.dumps(RECORDED_TOOL_CALL))
    bad_args["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = "{city: Paris"
    call, reason = parse_chat_response(bad_args, TOOLS)
    assert call is None and "unusable arguments" in (reason or "")
    two = json.loads(json.dumps(RECORDED_TOOL_CALL))
    two["choices"][0]["message"]["tool_calls"].append(two["choices"][0]["message"]["tool_calls"][0])
    call, reason = parse_chat_response(two, TOOLS)
    assert call is not None and "2 tool calls" in (reason or "")
    with pytest.raises(LargeModelError, match="not a chat completion"):
        parse_chat_response({"error": "nope"}, TOOLS)


# --- a real HTTP server on loopback -----------------------------------------------------------

Handler = Callable[[web.Request, int], Any]


class Scripted:
    """An aiohttp server whose n-th request is answered by ``handler(request, n)``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(await request.json())
        self.headers.append(dict(request.headers))
        return await self.handler(request, len(self.bodies))


@pytest.fixture()
async def server() -> AsyncIterator[Callable[[Handler], Any]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> tuple[str, Scripted]:
        scripted = Scripted(handler)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", scripted._handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}/v1", scripted

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_call_sends_the_request_and_parses_the_answer(server: Callable[[Handler], Any]) -> None:
    async def ok(_req: web.Request, _n: int) -> web.Response:
        return web.json_response(RECORDED_TOOL_CALL)

    url, scripted = await server(ok)
    model = OpenAIChatLargeModel(url, "gpt-4o", api_key="sk-test", max_retries=0)
    answer = await model.call(_serve_request())
    await model.aclose()
    assert answer.call == FunctionCall(name="get_weather", arguments={"city": "Paris"})
    assert answer.model == "gpt-4o" and not answer.simulated and answer.latency_ms > 0
    assert scripted.headers[0]["Authorization"] == "Bearer sk-test"
    assert scripted.bodies[0]["messages"][-1] == {"role": "user", "content": "weather in Paris?"}


async def test_retries_429_and_5xx_then_answers(server: Callable[[Handler], Any]) -> None:
    async def flaky(_req: web.Request, n: int) -> web.Response:
        if n == 1:
            return web.json_response({"error": "slow down"}, status=429, headers={"Retry-After": "0"})
        if n == 2:
            return web.json_response({"error": "overloaded"}, status=503)
        return web.json_response(RECORDED_TOOL_CALL)

    url, scripted = await server(flaky)
    model = OpenAIChatLargeModel(url, "m", max_retries=2, backoff_s=0.01)
    answer = await model.call(_serve_request())
    await model.aclose()
    assert answer.call is not None and len(scripted.bodies) == 3


async def test_gives_up_after_max_retries_with_the_last_error(server: Callable[[Handler], Any]) -> None:
    async def down(_req: web.Request, _n: int) -> web.Response:
        return web.Response(status=502, text="bad gateway")

    url, scripted = await server(down)
    model = OpenAIChatLargeModel(url, "m", max_retries=2, backoff_s=0.01)
    with pytest.raises(LargeModelError, match=r"after 3 attempt\(s\); last: HTTP 502: bad gateway"):
        await model.call(_serve_request())
    await model.aclose()
    assert len(scripted.bodies) == 3


async def test_client_errors_are_not_retried(server: Callable[[Handler], Any]) -> None:
    async def bad(_req: web.Request, _n: int) -> web.Response:
        return web.json_response({"error": {"message": "invalid tools"}}, status=400)

    url, scripted = await server(bad)
    model = OpenAIChatLargeModel(url, "m", max_retries=3, backoff_s=0.01)
    with pytest.raises(LargeModelError, match="HTTP 400.*invalid tools"):
        await model.call(_serve_request())
    await model.aclose()
    assert len(scripted.bodies) == 1


async def test_timeouts_are_retried_then_reported(server: Callable[[Handler], Any]) -> None:
    async def slow(_req: web.Request, n: int) -> web.Response:
        if n == 1:
            await asyncio.sleep(1.0)
        return web.json_response(RECORDED_TOOL_CALL)

    url, scripted = await server(slow)
    model = OpenAIChatLargeModel(url, "m", timeout_s=0.2, max_retries=1, backoff_s=0.01)
    answer = await model.call(_serve_request())
    assert answer.call is not None and len(scripted.bodies) == 2
    await model.aclose()

    async def always_slow(_req: web.Request, _n: int) -> web.Response:
        await asyncio.sleep(1.0)
        return web.json_response(RECORDED_TOOL_CALL)

    url, _ = await server(always_slow)
    model = OpenAIChatLargeModel(url, "m", timeout_s=0.2, max_retries=1, backoff_s=0.01)
    with pytest.raises(LargeModelError, match="timed out"):
        await model.call(_serve_request())
    await model.aclose()


async def test_unreachable_server_is_a_clear_error() -> None:
    model = OpenAIChatLargeModel("http://127.0.0.1:9/v1", "m", max_retries=1, backoff_s=0.01)
    with pytest.raises(LargeModelError, match="connection failed"):
        await model.call(_serve_request())
    await model.aclose()


def test_bad_configuration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="name is required"):
        OpenAIChatLargeModel("http://x/v1", "")
    with pytest.raises(ValueError, match="http"):
        OpenAIChatLargeModel("x/v1", "m")
    settings = OdiaSettings(state_dir=tmp_path).model_copy(
        update={
            "large_model": LargeModelSettings(kind="openai", model="gpt-4o", base_url="http://127.0.0.1:9/v1")
        }
    )
    model = build_large_model(settings)
    assert isinstance(model, OpenAIChatLargeModel) and model.name == "gpt-4o"
    asyncio.run(model.aclose())
