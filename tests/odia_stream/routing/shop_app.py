"""A small synthetic app for router tests: music, weather, payments, vague requests, follow-ups."""

from __future__ import annotations

import itertools
import random

from odia_stream.clustering import OffsetAlignedBatcher, OnlineClusterLearner, SourcedItem
from schemas import ChatMessage, FCLogEvent, FunctionCall, ToolCall, ToolSpec

APP = "shop"


def tool(name: str, **params: str) -> ToolSpec:
    """A tool with string parameters."""
    props = {p: {"type": t, "description": p} for p, t in params.items()}
    return ToolSpec(function={"name": name, "description": name, "parameters": {"type": "object", "properties": props}})


TOOLS = [
    tool("play_music", song="string", singer="string"),
    tool("get_weather", city="string"),
    tool("pay", amount="number", payee="string"),
    tool("search_web", text="string"),
]
SINGERS = ["Jay Chou", "Adele", "Taylor Swift", "Eason Chan", "Ed Sheeran", "Faye Wong", "Bruno Mars"]
SONGS = ["Rice Fragrance", "Hello", "Lover", "Ten Years", "Perfect", "Red Bean", "Grenade"]
CITIES = ["Paris", "Berlin", "Tokyo", "Madrid", "Cairo", "Lima", "Oslo", "Seoul", "Dublin", "Quito"]
PAYEES = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank"]


def _event(i: int, query: str, call: FunctionCall | None, history: list[ChatMessage] | None = None) -> FCLogEvent:
    return FCLogEvent(event_id=f"shop-{i}", app=APP, query=query, tools=TOOLS, call=call, history=history or [])


def _repeated(events: list[FCLogEvent]) -> list[FCLogEvent]:
    """Each event logged 1-3 times (production traffic repeats itself)."""
    return [e.model_copy(update={"event_id": f"{e.event_id}#{r}"}) for i, e in enumerate(events) for r in range(1 + i % 3)]


def shop_events(seed: int = 0) -> list[FCLogEvent]:
    """A small app: music and weather requests (simple), payments (simple, a write action),
    vague requests answered with different functions (complex), and follow-ups after a music call."""
    rng = random.Random(seed)
    out: list[FCLogEvent] = []
    n = itertools.count()
    for singer, song in itertools.product(SINGERS, SONGS):
        q = rng.choice(["play {song} by {singer}", "put on {song} by {singer}"]).format(song=song, singer=singer)
        out.append(_event(next(n), q, FunctionCall(name="play_music", arguments={"song": song, "singer": singer})))
    for city in CITIES:
        for form in ("what's the weather in {c}", "weather forecast for {c}", "will it rain in {c} tomorrow"):
            out.append(_event(next(n), form.format(c=city), FunctionCall(name="get_weather", arguments={"city": city})))
    for payee in PAYEES:
        for amount in (5, 20, 50, 100, 250):
            out.append(_event(next(n), f"pay {amount} dollars to {payee}",
                              FunctionCall(name="pay", arguments={"amount": amount, "payee": payee})))
    vague = ["help me with this", "can you do something about it", "i need help"]
    for k in range(45):
        fn = ["search_web", "get_weather", "play_music"][(k // 3) % 3]
        args = {"text": "help"} if fn == "search_web" else ({"city": "Paris"} if fn == "get_weather" else {"song": "Hello"})
        out.append(_event(next(n), vague[k % 3], FunctionCall(name=fn, arguments=args)))
    prior = [
        ChatMessage(role="user", content="play Hello by Adele"),
        ChatMessage(role="assistant", tool_calls=[ToolCall(id="c0", function=FunctionCall(name="play_music", arguments={"song": "Hello"}))]),
    ]
    for k in range(40):
        q = ["another one", "next song please", "play something else like this"][k % 3]
        out.append(_event(next(n), q, FunctionCall(name="play_music", arguments={}), history=prior))
    out = _repeated(out)
    rng.shuffle(out)
    return out


def feed(learner: OnlineClusterLearner, events: list[FCLogEvent], batch: int = 256) -> None:
    """Process ``events`` in offset-aligned batches, as the ingest worker would."""
    batcher: OffsetAlignedBatcher[FCLogEvent] = OffsetAlignedBatcher(batch)
    for i, ev in enumerate(events):
        for ready in batcher.add(SourcedItem("fc", 0, i, ev)):
            learner.process_batch(ready)
    for ready in batcher.flush():
        learner.process_batch(ready)
