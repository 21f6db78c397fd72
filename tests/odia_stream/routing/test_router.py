"""``Router.decide`` on a real learner: each stage, each safety rule, error budgets, timings."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from odia_stream.embedding import Embedder
from odia_stream.keys import parse_cluster_key
from odia_stream.routing import Decision, Reason, Router, Threshold, open_router, publish_router
from odia_stream.routing.calibration import Threshold as _T
from odia_stream.settings import OdiaSettings
from schemas import ChatMessage, FCLogEvent, FunctionCall, ServeRequest, ToolCall
from shop_app import APP, TOOLS, feed, shop_events, tool

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Built


def ask(router: Router, query: str, *, tools: list = TOOLS, app: str = APP, history: list | None = None) -> Decision:
    return router.decide(ServeRequest(request_id="r", app=app, query=query, tools=tools, history=history or []))


@pytest.fixture()
def router(shop: Built, embedder: Embedder) -> Router:
    """A fresh router (its own error budget) on the shop snapshot, the query match off: the tests
    that use it ask queries the learner has seen, to exercise the stages after it."""
    return _without(shop, embedder, "query")


def _without(built: Built, embedder: Embedder, *stages: str) -> Router:
    off = {k: (_T.disabled() if k in stages else v) for k, v in built.snapshot.thresholds.items()}
    return Router(dataclasses.replace(built.snapshot, thresholds=off), embedder, built.settings.router)


def test_stage_one_matches_a_simple_cluster(router: Router) -> None:
    d = ask(router, "play Lover by Adele")
    assert (d.route, d.reason, d.function, d.stage) == ("small", Reason.CLUSTER_MATCH, "play_music", "match")
    assert d.cluster_id is not None and d.cluster_id.startswith("c") and d.score is not None
    assert d.score >= router.match_threshold
    assert 0 < d.embed_ms <= d.decide_ms and d.router_version == router.version


def test_a_close_complex_cluster_goes_large(router: Router) -> None:
    d = ask(router, "help me with this")
    assert (d.route, d.reason, d.stage) == ("large", Reason.COMPLEX_CLUSTER, "match")


def test_a_known_query_goes_to_its_function_without_embedding(shop: Built, embedder: Embedder) -> None:
    r = Router(shop.snapshot, embedder, shop.settings.router)
    t = shop.snapshot.thresholds["query"]
    assert t.enabled and t.lower_bound >= shop.snapshot.target_precision and shop.snapshot.queries
    known = {(q.scope, q.norm): q for q in shop.snapshot.queries}
    seen = next(g for g in shop.learner.groups.values() if (g.scope, g.norm) in known and g.query.startswith("pay "))
    d = ask(r, seen.query)
    entry = known[(seen.scope, seen.norm)]
    assert (d.route, d.reason, d.function, d.stage) == ("small", Reason.QUERY_MATCH, "pay", "query")
    assert d.embed_ms == 0 and d.cluster_id == entry.key and d.score == entry.lower_bound >= r.query_threshold
    # Nor templated: the match needs only the scope and the normalised query.
    def no_templating(request: object) -> None:
        raise AssertionError("a known query was templated")

    r.prepare = no_templating  # type: ignore[method-assign]
    assert [x.reason for x in (ask(r, seen.query), *r.decide_many([ServeRequest(request_id="m", app=APP, query=seen.query, tools=TOOLS)]))] == [
        Reason.QUERY_MATCH, Reason.QUERY_MATCH]
    del r.prepare
    # Spaces and case are normalised, as the learner keys its groups; an unseen query goes on to stage 1.
    assert ask(r, "  " + seen.query.upper() + " ").reason == Reason.QUERY_MATCH
    assert ask(r, "pay 21 dollars to Bob").stage != "query"
    # Vague requests the large model answered with three functions are not known queries.
    assert ask(r, "help me with this").reason == Reason.COMPLEX_CLUSTER
    # Safety rules and the query's own error budget still apply.
    strict = Router(shop.snapshot, embedder, shop.settings.router.model_copy(update={"never_small": ["pay"]}))
    assert ask(strict, seen.query).reason == Reason.NEVER_SMALL
    for _ in range(60):
        r.record_agreement(entry.key, agreed=False)
    assert (ask(r, seen.query).reason, ask(r, seen.query).stage) == (Reason.ERROR_BUDGET, "query")


def test_the_template_stage_answers_when_stage_one_does_not(shop: Built, embedder: Embedder) -> None:
    r = _without(shop, embedder, "query", "match")
    r.template_threshold = 0.5  # the shop snapshot calibrates no template threshold: stage 1 takes all
    d = ask(r, "play Red Bean by Bruno Mars")
    assert (d.route, d.reason, d.function, d.stage) == ("small", Reason.TEMPLATE_MATCH, "play_music", "template")
    assert d.cluster_id is not None and d.cluster_id.startswith("t")


def test_the_classifier_answers_unseen_phrasings(shop: Built, embedder: Embedder) -> None:
    r = _without(shop, embedder, "query", "match", "template")
    assert math.isfinite(r.classifier_threshold)
    d = ask(r, "could you play Grenade by Faye Wong")
    assert (d.route, d.function, d.stage) == ("small", "play_music", "classifier")
    assert d.score is not None and d.score >= r.classifier_threshold
    unrelated = ask(r, "explain general relativity in simple terms")
    assert unrelated.route == "large" and unrelated.reason in (Reason.BELOW_THRESHOLD, Reason.PREDICTED_COMPLEX)


def test_never_small_functions_always_go_large(shop: Built, embedder: Embedder, router: Router) -> None:
    assert ask(router, "pay 20 dollars to Bob").route == "small"
    strict = Router(shop.snapshot, embedder, shop.settings.router.model_copy(update={"never_small": ["pay"]}))
    d = ask(strict, "pay 20 dollars to Bob")
    assert (d.route, d.reason, d.function) == ("large", Reason.NEVER_SMALL, "pay")


def test_a_function_that_is_not_offered_goes_large(shop_context: Built, embedder: Embedder) -> None:
    r = Router(shop_context.snapshot, embedder, shop_context.settings.router)
    assert ask(r, "play Lover by Adele").route == "small"
    d = ask(r, "play Lover by Adele", tools=[t for t in TOOLS if t.name != "play_music"])
    assert (d.route, d.reason, d.function) == ("large", Reason.FUNCTION_NOT_OFFERED, "play_music")


def test_unknown_tools_go_large(router: Router, shop_context: Built, embedder: Embedder) -> None:
    for d in (
        ask(router, "play Lover by Adele", tools=[]),
        ask(router, "play Lover by Adele", app="another-app"),
        ask(router, "play Lover by Adele", tools=TOOLS[:3]),  # a tool set the scope never saw
    ):
        assert (d.route, d.reason, d.stage) == ("large", Reason.UNKNOWN_TOOLS, "safety") and d.embed_ms == 0.0
    changed = [tool("play_music", song="string", singer="string", volume="integer"), *TOOLS[1:]]
    r = Router(shop_context.snapshot, embedder, shop_context.settings.router)
    d = ask(r, "play Lover by Adele", tools=changed)
    assert (d.route, d.reason, d.function) == ("large", Reason.UNKNOWN_TOOLS, "play_music")


def test_an_empty_query_goes_large_without_embedding(router: Router) -> None:
    d = ask(router, " ?! ")
    assert (d.route, d.reason, d.embed_ms) == ("large", Reason.NO_QUERY, 0.0)


def test_disagreements_spend_a_clusters_error_budget(router: Router) -> None:
    first = ask(router, "play Lover by Adele")
    weather = ask(router, "what's the weather in Oslo")
    assert first.route == weather.route == "small" and first.cluster_id != weather.cluster_id
    for _ in range(40):
        router.record_agreement(first.cluster_id, agreed=False)  # type: ignore[arg-type]
    d = ask(router, "play Lover by Adele")
    assert (d.route, d.reason, d.function, d.cluster_id) == ("large", Reason.ERROR_BUDGET, "play_music", first.cluster_id)
    assert ask(router, "what's the weather in Oslo").route == "small"
    router.record_agreement(parse_cluster_key(weather.cluster_id), agreed=True)  # type: ignore[arg-type]
    assert router.budget.state(weather.cluster_id).checked == 1
    with pytest.raises(ValueError):
        router.record_agreement(3.5, agreed=True)


def test_follow_ups_are_routed_in_their_context(router: Router) -> None:
    after_music = [
        ChatMessage(role="user", content="play Hello by Adele"),
        ChatMessage(role="assistant", tool_calls=[ToolCall(id="c0", function=FunctionCall(name="play_music", arguments={}))]),
    ]
    d = ask(router, "next song please", history=after_music)
    assert (d.route, d.function) == ("small", "play_music")
    # The context is part of the key: without it the words meet other clusters (or none).
    bare = ask(router, "next song please")
    assert bare.cluster_id != d.cluster_id
    after_weather = [after_music[0], ChatMessage(role="assistant", tool_calls=[ToolCall(function=FunctionCall(name="get_weather"))])]
    assert ask(router, "next song please", history=after_weather).cluster_id != d.cluster_id


def test_batches_decide_like_single_requests(router: Router) -> None:
    queries = ["play Lover by Adele", "help me with this", "pay 5 dollars to Carol", "???", "weather forecast for Lima"]
    requests = [ServeRequest(request_id=str(i), app=APP, query=q, tools=TOOLS) for i, q in enumerate(queries)]
    one = [router.decide(r) for r in requests]
    many = router.decide_many(requests)
    assert [(d.route, d.reason, d.function, d.cluster_id) for d in one] == [(d.route, d.reason, d.function, d.cluster_id) for d in many]


def test_the_store_backed_lookup_decides_like_the_matrix(shop: Built, embedder: Embedder) -> None:
    info = publish_router(shop.learner, shop.settings, embedder, adapter_version="lookup-test")
    by_matrix = open_router(shop.settings, version=info.version, embedder=embedder)
    s = shop.settings.model_copy(update={"router": shop.settings.router.model_copy(update={"lookup": "index"})})
    by_store = open_router(s, version=info.version, embedder=embedder)
    try:
        queries = ["play Lover by Adele", "help me with this", "weather forecast for Lima", "pay 5 dollars to Carol",
                   "put on Hello by Jay Chou", "will it rain in Oslo tomorrow"]
        for q in queries:
            a, b = ask(by_matrix, q), ask(by_store, q)
            assert (a.route, a.reason, a.function, a.cluster_id) == (b.route, b.reason, b.function, b.cluster_id)
    finally:
        by_store.close()


def test_thresholds_come_from_the_snapshot(router: Router) -> None:
    t: Threshold = router.snapshot.thresholds["match"]
    assert router.match_threshold == t.value and t.enabled and t.lower_bound >= router.snapshot.target_precision


def test_requests_are_keyed_exactly_like_the_learners_records(shop: Built, router: Router) -> None:
    from odia_stream.keys import TemplatedQuery, group_key_of
    from odia_stream.routing import request_of
    from shop_app import shop_events

    learner, mode = shop.learner, shop.learner.settings.scope
    groups = {g.key for g in learner.groups.values()}
    for ev in shop_events()[:200]:
        assert group_key_of(ev, mode) in groups
        assert router.prepare(request_of(ev)) == TemplatedQuery.of_record(ev, mode, learner.templater_of(ev.app))


def test_a_few_shot_function_teaches_the_classifier_only_when_it_learns_every_known_function(
    tmp_path: Path, embedder: Embedder
) -> None:
    from odia_stream.clustering.factory import open_learner
    from odia_stream.routing import COMPLEX, build_snapshot

    alarm_tools = [*TOOLS, tool("set_alarm", time="string")]
    alarms = [
        FCLogEvent(event_id=f"alarm-{i}", app=APP, query=q.format(t=t), tools=alarm_tools,
                   call=FunctionCall(name="set_alarm", arguments={"time": t}))
        for i, (q, t) in enumerate(zip(
            ["set an alarm for {t}", "wake me up at {t}", "alarm at {t} please", "ring me at {t}",
             "set my alarm to {t}", "i need an alarm at {t}", "set a wake-up alarm for {t}", "alarm for {t} tomorrow"],
            ["6 am", "7 am", "5:30", "8 am", "6:45", "9 am", "7:15", "10 am"], strict=True))
    ]
    s = OdiaSettings(state_dir=tmp_path)
    s = s.model_copy(update={"clustering": s.clustering.model_copy(update={"scope": "context"}),
                             "router": s.router.model_copy(update={"target_precision": 0.95})})
    learner = open_learner(s, embedder=embedder)
    try:
        feed(learner, shop_events() + alarms)
        assert all(c.label != "simple" for c in learner.clusters.values() if "set_alarm" in c.function_counts)
        built = {
            learns: build_snapshot(learner, s.model_copy(update={"router": s.router.model_copy(
                update={"classifier_learns": learns})}), embedder)
            for learns in ("simple", "all")
        }
    finally:
        learner.close()
    simple, every = (built[k].classifier for k in ("simple", "all"))
    assert simple is not None and every is not None
    assert "set_alarm" not in simple.classes and "set_alarm" in every.classes
    assert COMPLEX in every.classes and "play_music" in every.classes
    items = {k: b.report["classifier_training_items"] for k, b in built.items()}
    assert items["all"] > items["simple"]
