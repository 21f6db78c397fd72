"""The serving engine with real parts: the router snapshot, the HF backend with a trained adapter,
the replay large model. One response per request on every path; escalation; shadow demotion; trust
earned by probes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Awaitable, Callable

from odia_stream.large_model import OpenAIChatLargeModel, ReplaySimulatedLargeModel
from odia_stream.serving import (
    ESCALATION_REASONS,
    MALFORMED_REQUEST,
    ServingRuntime,
)
from schemas import FCLogEvent, FunctionCall, ServeRequest
from tests.serving.support import RouterFixture, large_routed, replay_large

SMALL_REASONS = {"query_match", "cluster_match", "template_match", "classifier"}


def _request(ev: FCLogEvent, **changes: object) -> ServeRequest:
    req = ServeRequest(request_id=f"r-{uuid.uuid4().hex[:10]}", app=ev.app, query=ev.query, tools=ev.tools)
    return req.model_copy(update=changes) if changes else req


def _small_routed(
    router: RouterFixture, n: int, function: str | None = None, *, with_cluster: bool = False
) -> list[FCLogEvent]:
    r = router.load()
    out = []
    for ev in router.held_out:
        d = r.decide(_request(ev))
        if (
            d.route == "small"
            and (function is None or d.function == function)
            and (d.cluster_id or not with_cluster)
        ):
            out.append(ev)
        if len(out) == n:
            return out
    raise AssertionError(f"only {len(out)} held-out requests route small")


_SERVED_SMALL: dict[str, FCLogEvent] = {}


async def _served_small(runtime: ServingRuntime, router: RouterFixture) -> FCLogEvent:
    """A held-out request (decided by a cluster match) that the adapter answers well enough to serve small.

    Greedy decoding makes this stable, so the search runs once per module.
    """
    if router.version not in _SERVED_SMALL:
        for ev in _small_routed(router, 6, function="GetWeather", with_cluster=True):
            if (await runtime.engine.answer(_request(ev))).served_by == "small":
                _SERVED_SMALL[router.version] = ev
                break
        else:
            raise AssertionError("the adapter served none of the small-routed requests")
    return _SERVED_SMALL[router.version]


async def test_every_request_gets_exactly_one_response(make_runtime, app_router: RouterFixture) -> None:  # noqa: ANN001
    runtime = await make_runtime()
    small, large = _small_routed(app_router, 2), large_routed(app_router, 3)
    unknown_app = _request(small[0], app="an-app-never-seen")
    requests = [_request(e) for e in small + large] + [unknown_app]
    responses = await asyncio.gather(*(runtime.engine.answer(r) for r in requests))
    assert [r.request_id for r in responses] == [r.request_id for r in requests]
    by_id = {r.request_id: r for r in responses}
    v1 = runtime.versions.current.adapter_version
    for req, ev in zip(requests, small + large, strict=False):
        resp = by_id[req.request_id]
        assert (
            resp.error is None and resp.adapter_version == v1 and resp.router_version == app_router.version
        )
        lat = resp.latency
        assert lat.total_ms >= max(lat.route_ms, lat.generate_ms, lat.validate_ms)
        if resp.served_by == "small":
            assert resp.route_reason in SMALL_REASONS and resp.call is not None and resp.large_model is None
        else:
            assert resp.served_by == "large" and resp.large_model == "replay-simulated(snips-app)"
            assert resp.call == ev.call  # the replayed large model's answer
    for req in requests[: len(small)]:  # routed small: served small or escalated, never anything else
        reason = by_id[req.request_id].route_reason
        assert reason in SMALL_REASONS or reason.removeprefix("escalated:") in ESCALATION_REASONS
    for req in requests[len(small) : len(small) + len(large)]:
        assert by_id[req.request_id].route_reason not in SMALL_REASONS
    assert by_id[unknown_app.request_id].route_reason == "unknown_tools"
    m = runtime.metrics
    total = sum(
        m.value("odia_serving_requests_total", {"served_by": r.served_by, "reason": r.route_reason})
        for r in {(x.served_by, x.route_reason): x for x in responses}.values()
    )
    assert total == len(requests)
    assert m.value("odia_serving_latency_seconds_count", {"stage": "total", "served_by": "large"}) == sum(
        1 for r in responses if r.served_by == "large"
    )


async def test_a_failing_large_model_still_answers_with_an_error(
    make_runtime, app_router: RouterFixture
) -> None:  # noqa: ANN001
    unreachable = OpenAIChatLargeModel("http://127.0.0.1:9/v1", "large", max_retries=0, timeout_s=2.0)
    runtime = await make_runtime(large_model=unreachable)
    req = _request(large_routed(app_router, 1)[0])
    resp = await runtime.engine.answer(req)
    assert resp.request_id == req.request_id and resp.served_by == "none" and resp.call is None
    assert resp.error is not None and "large model failed" in resp.error
    assert runtime.metrics.value("odia_serving_errors_total", {"kind": "large_model"}) == 1


async def test_a_timeout_escalates_to_the_large_model(make_runtime, app_router: RouterFixture) -> None:  # noqa: ANN001
    runtime = await make_runtime(small_latency_budget_ms=1.0)
    ev = _small_routed(app_router, 1)[0]
    resp = await runtime.engine.answer(_request(ev))
    assert resp.served_by == "large" and resp.route_reason == "escalated:timeout" and resp.call == ev.call
    assert runtime.metrics.value("odia_serving_escalations_total", {"reason": "timeout"}) == 1


async def test_a_cut_off_answer_escalates(make_runtime, app_router: RouterFixture) -> None:  # noqa: ANN001
    runtime = await make_runtime(max_new_tokens=2)
    ev = _small_routed(app_router, 1)[0]
    resp = await runtime.engine.answer(_request(ev))
    assert resp.served_by == "large" and resp.route_reason == "escalated:truncated"
    assert resp.adapter_version == runtime.versions.current.adapter_version
    assert runtime.metrics.value("odia_serving_escalations_total", {"reason": "truncated"}) == 1


async def test_the_kill_switch_sends_everything_large(make_runtime, app_router: RouterFixture) -> None:  # noqa: ANN001
    runtime = await make_runtime(mode="all_large")
    ev = _small_routed(app_router, 1)[0]
    resp = await runtime.engine.answer(_request(ev))
    assert resp.served_by == "large" and resp.route_reason == "all_large"


async def test_shadow_disagreement_demotes_the_cluster(make_runtime, app_router: RouterFixture) -> None:  # noqa: ANN001
    # A large model that has come to disagree: for these queries it now calls the other function.
    other = {"GetWeather": "PlayMusic", "PlayMusic": "GetWeather"}
    disagreeing = [
        e.model_copy(update={"call": FunctionCall(name=other[e.call.name], arguments={})}) if e.call else e
        for e in app_router.events
    ]
    runtime = await make_runtime(large_model=replay_large(disagreeing), shadow_share=1.0, shadow_max_concurrency=2)
    router = runtime.versions.current.router
    assert router is not None
    served = await _served_small(runtime, app_router)
    cluster = router.decide(_request(served)).cluster_id
    assert cluster is not None
    demoted = None
    for _ in range(15):
        assert await runtime.shadow.drain(30)
        resp = await runtime.engine.answer(_request(served))
        if resp.route_reason == "error_budget":
            demoted = resp
            break
        assert resp.served_by == "small", resp.route_reason  # greedy decoding: the same answer each time
    assert demoted is not None and demoted.served_by == "large"
    stats = runtime.shadow.by_cluster[cluster]
    assert stats.checks >= 1 and stats.agreed == 0
    assert runtime.metrics.value("odia_serving_shadow_checks_total", {"outcome": "disagree"}) == stats.checks
    assert not router.budget.allows(cluster)


async def test_requests_are_concurrent_a_slow_large_call_does_not_block_small_answers(
    make_runtime,
    app_router: RouterFixture,  # noqa: ANN001
) -> None:
    served = await _served_small(await make_runtime(), app_router)
    slow = ReplaySimulatedLargeModel(
        app_router.events, dataset_name="slow", median_ms=60_000, p90_ms=90_000, seed=2
    )
    runtime = await make_runtime(large_model=slow)
    large_task = asyncio.create_task(runtime.engine.answer(_request(large_routed(app_router, 1)[0])))
    await asyncio.sleep(0.05)
    small = await asyncio.wait_for(runtime.engine.answer(_request(served)), 300)
    assert small.served_by == "small" and small.error is None
    assert not large_task.done()  # the large call is still running: it did not hold the small answer back
    large_task.cancel()


async def test_a_raw_message_is_answered_readable_or_not(
    make_runtime: Callable[..., Awaitable[ServingRuntime]], app_router: RouterFixture
) -> None:
    runtime = await make_runtime(mode="all_large")
    ev = large_routed(app_router, 1)[0]
    value = _request(ev, reply_topic="client.replies").model_dump_json().encode()
    ok = await runtime.engine.answer_raw(value, None, "odia.requests", 0, 1)
    assert not ok.malformed and ok.reply_topic == "client.replies"
    assert ok.response.served_by == "large" and ok.response.error is None and ok.response.call == ev.call
    bad = json.dumps({"request_id": "bad-1", "query": "", "reply_topic": "client.replies"}).encode()
    for raw, key, rid, reply in (
        (b"{not json", b"key-1", "key-1", None),
        (None, None, "odia.requests:0:3", None),
        (bad, b"key-2", "bad-1", "client.replies"),
    ):
        got = await runtime.engine.answer_raw(raw, key, "odia.requests", 0, 3)
        assert got.malformed and got.reply_topic == reply
        resp = got.response
        assert resp.request_id == rid and resp.served_by == "none" and resp.call is None
        assert resp.route_reason == MALFORMED_REQUEST and (resp.error or "").startswith("malformed request")
    m = runtime.metrics
    assert m.value("odia_serving_errors_total", {"kind": "malformed"}) == 3
    assert m.value("odia_serving_requests_total", {"served_by": "none", "reason": MALFORMED_REQUEST}) == 3


async def test_a_function_not_trusted_earns_trust_from_probes_on_real_parts(
    make_runtime, app_router: RouterFixture  # noqa: ANN001
) -> None:
    # The small model's own answer to a request, recorded as the large model's call: probes of it agree.
    served = await _served_small(await make_runtime(), app_router)
    answer = (await (await make_runtime(templates=False)).engine.answer(_request(served))).call
    assert answer is not None
    recorded = [e.model_copy(update={"call": answer}) if e.event_id == served.event_id else e for e in app_router.events]
    runtime = await make_runtime(large_model=replay_large(recorded), templates=False)
    router = runtime.versions.current.router
    assert router is not None
    router.snapshot = dataclasses.replace(router.snapshot, model_functions=())  # the trainer trusted nothing
    # One agreeing probe proves a 0.5 target at z = 0 (the defaults need 25: test_small_path.py).
    runtime.engine.trust.target, runtime.engine.trust.z = 0.5, 0.0
    first = await runtime.engine.answer(_request(served))
    assert (first.served_by, first.route_reason, first.call) == ("large", "function_not_trusted", answer)
    assert await runtime.engine.prober.drain(120)
    assert runtime.metrics.value("odia_serving_trust_probes_total", {"outcome": "agree"}) == 1
    again = await runtime.engine.answer(_request(served))
    assert (again.served_by, again.route_reason, again.call) == ("small", "function_trust_earned", answer)
    assert runtime.engine.trust.functions(runtime.versions.current.adapter_version) == [answer.name]
