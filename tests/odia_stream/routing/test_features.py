"""Context features: history, previous call, assistant question, markers, tool count."""

from __future__ import annotations

import numpy as np
import pytest

from odia_stream.routing import CONTEXT_FEATURES, context_features, has_reference_marker
from odia_stream.routing.features import feature_matrix
from schemas import ChatMessage, FunctionCall, ToolCall


@pytest.mark.parametrize(
    "query", ["this one", "more of these", "play another one", "换一首", "这个多少钱", "先前说错了. 应该是 车险", "I meant Berlin"]
)
def test_reference_markers_are_found(query: str) -> None:
    assert has_reference_marker(query)


@pytest.mark.parametrize("query", ["play jazz", "what's the weather in Paris", "播放周杰伦的稻香", "these days", "italian"])
def test_plain_queries_have_no_marker_except_whole_word_ones(query: str) -> None:
    assert has_reference_marker(query) == (query == "these days")


def test_context_features_of_a_follow_up_after_a_call_and_a_question() -> None:
    history = [
        ChatMessage(role="user", content="book a table"),
        ChatMessage(role="assistant", tool_calls=[ToolCall(function=FunctionCall(name="book", arguments={}))]),
        ChatMessage(role="assistant", content="For how many people?"),
    ]
    f = dict(zip(CONTEXT_FEATURES, context_features("four of us", history, 1).tolist(), strict=True))
    assert f["has_history"] == f["has_previous_call"] == f["assistant_asked"] == f["single_tool"] == 1.0
    assert f["reference_marker"] == 0.0 and 0 < f["tools_log"] < 1
    assert sum(v for k, v in f.items() if k.startswith("previous_call_")) == 1.0
    plain = context_features("book a table", [], 0)
    assert plain.sum() == 0.0 and plain.dtype == np.float32


def test_previous_call_buckets_tell_functions_apart_and_bad_input_is_refused() -> None:
    def after(fn: str) -> np.ndarray:
        return context_features("ok", [ChatMessage(role="assistant", tool_calls=[ToolCall(function=FunctionCall(name=fn))])], 2)

    assert not np.array_equal(after("play_music"), after("get_weather"))
    with pytest.raises(ValueError):
        context_features("q", [], -1)
    with pytest.raises(ValueError):
        feature_matrix(np.zeros((2, 4)), np.zeros((3, len(CONTEXT_FEATURES))))
    assert feature_matrix(np.ones((2, 4)), np.zeros((2, len(CONTEXT_FEATURES)))).shape == (2, 4 + len(CONTEXT_FEATURES))
