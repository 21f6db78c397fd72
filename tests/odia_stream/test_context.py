"""Scopes: tool sets and conversational context."""

from __future__ import annotations

from odia_stream.context import context_signature, previous_call, scope_key, tools_fingerprint
from schemas import ChatMessage, ToolSpec

A, B = ToolSpec(function={"name": "a"}), ToolSpec(function={"name": "b"})
CALL_A = ChatMessage.model_validate({"role": "assistant", "tool_calls": [{"function": {"name": "a", "arguments": {}}}]})
ASK = ChatMessage(role="assistant", content="which city?")


def test_fingerprint_ignores_order_and_duplicates() -> None:
    assert tools_fingerprint([A, B]) == tools_fingerprint([B, A, A])
    assert tools_fingerprint([A]) != tools_fingerprint([A, B])


def test_previous_call_and_follow_up_marker() -> None:
    assert previous_call([]) is None
    assert previous_call([ChatMessage(role="user", content="hi"), CALL_A, ASK]) == "a"
    assert context_signature([CALL_A, ASK]) == "ctx:a:ask"
    assert context_signature([]) == "ctx:-"


def test_scope_modes() -> None:
    assert scope_key("m", [A], [CALL_A], "app") == "app:m"
    assert scope_key("m", [A], [CALL_A], "context") == "app:m|ctx:a"
    assert scope_key("m", [A], [], "tools+context") == f"app:m|{tools_fingerprint([A])}|ctx:-"
    assert scope_key("m", [A], [], "tools") != scope_key("m", [B], [], "tools")
