"""What makes two records comparable: the offered-tool set and the conversational context.

A follow-up turn such as "the city is Guangzhou" means different things after different
calls, so the function the previous turn called (and whether the assistant was asking for
something) is part of a record's *scope*; clusters never mix scopes.

>>> from schemas import ToolSpec
>>> tools_fingerprint([ToolSpec(function={"name": "b"}), ToolSpec(function={"name": "a"})])
'tools:687d6199'
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal, Protocol

from schemas import ChatMessage, ToolSpec

ScopeMode = Literal["tools+context", "context", "tools", "app"]


class Turn(Protocol):
    """A user turn in its context: the query, the recent history and the offered tools
    (``FCLogEvent``, ``ServeRequest`` and training records all fit)."""

    @property
    def query(self) -> str: ...

    @property
    def history(self) -> Sequence[ChatMessage]: ...

    @property
    def tools(self) -> Sequence[ToolSpec]: ...


def tools_fingerprint(tools: Sequence[ToolSpec]) -> str:
    """A short stable hash of the offered tools' names (order-insensitive)."""
    names = "\x1f".join(sorted({t.name for t in tools}))
    return "tools:" + hashlib.sha1(names.encode("utf-8")).hexdigest()[:8]


def previous_call(history: Sequence[ChatMessage]) -> str | None:
    """The function called last in ``history`` (an assistant ``tool_calls`` message), if any."""
    for message in reversed(history):
        called = message.called_functions()
        if called:
            return called[-1]
    return None


def context_signature(history: Sequence[ChatMessage]) -> str:
    """``ctx:<previous function>`` (or ``ctx:-``), plus ``:ask`` when the last message is the
    assistant asking the user something (a slot-filling follow-up)."""
    prev = previous_call(history)
    sig = f"ctx:{prev or '-'}"
    last = history[-1] if history else None
    if last is not None and last.role == "assistant" and not last.tool_calls and last.content:
        sig += ":ask"
    return sig


def scope_key(app: str, tools: Sequence[ToolSpec], history: Sequence[ChatMessage], mode: ScopeMode) -> str:
    """The scope a record is clustered in, according to ``mode``."""
    parts = [f"app:{app}"]
    if mode in ("tools+context", "tools"):
        parts.append(tools_fingerprint(tools))
    if mode in ("tools+context", "context"):
        parts.append(context_signature(history))
    return "|".join(parts)
