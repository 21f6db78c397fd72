"""The keys the learner and the router share: ids, their text forms, and the query chain."""

from __future__ import annotations

import pytest

from odia_stream import keys
from odia_stream.context import ScopeMode, scope_key
from odia_stream.keys import TemplatedQuery
from odia_stream.normalize import normalize_query
from odia_stream.templates import EntityDictionary, QueryTemplater
from schemas import ChatMessage, FCLogEvent, FunctionCall, ServeRequest, ToolCall, ToolSpec

TOOLS = [ToolSpec(function={"name": "play_music"}), ToolSpec(function={"name": "get_weather"})]
HISTORY = [
    ChatMessage(role="user", content="play something"),
    ChatMessage(role="assistant", tool_calls=[ToolCall(id="1", function=FunctionCall(name="play_music"))]),
]


def _templater() -> QueryTemplater:
    d = EntityDictionary()
    for etype, value in [("singer", "Jay Chou"), ("song", "Rice Fragrance"), ("city", "Paris")]:
        d.add(etype, value)
    return QueryTemplater(d)


@pytest.mark.parametrize("cluster_id", [0, 1, 255, 2**63 - 1, keys.stable_id("cluster", "app:a", "q")])
def test_cluster_keys_round_trip(cluster_id: int) -> None:
    key = keys.cluster_key(cluster_id)
    assert len(key) == 17 and key[0] == "c"
    assert keys.parse_cluster_key(key) == cluster_id


@pytest.mark.parametrize("key", ["", "c", "c00ff", "t00000000000000ff", "C00000000000000ff", "c00000000000000fg", "c00000000000000ff "])
def test_other_text_is_not_a_cluster_key(key: str) -> None:
    with pytest.raises(ValueError):
        keys.parse_cluster_key(key)


def test_budget_keys_name_clusters_and_template_clusters() -> None:
    t = keys.template_cluster_key("shop", "app:shop", "play <song>")
    assert keys.budget_key(255) == keys.cluster_key(255) == keys.budget_key(keys.cluster_key(255))
    assert keys.budget_key(t) == t and t[0] == "t" and len(t) == 17
    for bad in (3.5, "x12", None):
        with pytest.raises(ValueError):
            keys.budget_key(bad)


def test_template_cluster_keys_depend_on_every_part() -> None:
    parts = ("shop", "app:shop", "play <song>")
    assert keys.template_cluster_key(*parts) == keys.template_cluster_key(*parts)
    variants = {
        keys.template_cluster_key(*parts),
        keys.template_cluster_key("x", *parts[1:]),
        keys.template_cluster_key(parts[0], "x", parts[2]),
        keys.template_cluster_key(*parts[:2], "x"),
    }
    assert len(variants) == 4


def test_ids_are_63_bit_and_differ_between_groups_and_clusters() -> None:
    g, c = keys.group_id_for("app:a", "play jazz"), keys.cluster_id_for("app:a", "play jazz")
    assert g != c and 0 <= g < 2**63 and 0 <= c < 2**63
    assert g == keys.stable_id("group", "app:a", "play jazz")
    assert c == keys.stable_id("cluster", "app:a", "play jazz")
    assert keys.group_id_for("app:b", "play jazz") != g


@pytest.mark.parametrize("mode", ["tools+context", "context", "tools", "app"])
def test_a_log_and_a_request_with_the_same_content_get_the_same_keys(mode: ScopeMode) -> None:
    log = FCLogEvent(event_id="e", app="music", query="  Play Jay Chou's RICE FRAGRANCE!", tools=TOOLS, history=HISTORY)
    request = ServeRequest(request_id="r", app="music", query=log.query, tools=TOOLS, history=HISTORY)
    assert keys.group_key_of(log, mode) == keys.group_key_of(request, mode)
    assert keys.group_key_of(log, mode) == (
        scope_key("music", TOOLS, HISTORY, mode),
        normalize_query(log.query),
    )
    templater = _templater()
    a = TemplatedQuery.of_record(log, mode, templater)
    b = TemplatedQuery.of_record(request, mode, templater)
    assert a == b
    assert a.scope == keys.group_key_of(log, mode)[0]
    assert a.text == "play <singer>'s <song>"
    assert a.slots == (("singer", "jay chou"), ("song", "rice fragrance"))
    assert a.template_key == ("music", a.scope, a.text)


def test_a_query_without_entities_has_no_template_key() -> None:
    q = TemplatedQuery.of("music", "app:music", _templater().template("What's on?"))
    assert (q.text, q.has_entities, q.slots, q.template_key) == ("what's on", False, (), None)
