"""The serving engine's template tier with real parts: the app's router with live programs, the
HF backend with a trained adapter, the replay large model. A template answer needs no model; a call
the offered schema refuses falls through; disagreeing shadow checks demote the program. With a
router served alone (no adapter yet) templates answer and the rest goes large."""

from __future__ import annotations

import uuid

import pytest

from odia_stream.routing import Router
from schemas import FCLogEvent, FunctionCall, ServeRequest
from tests.serving.support import RouterFixture, replay_large, template_router

pytestmark = pytest.mark.slow

def _request(ev: FCLogEvent) -> ServeRequest:
    return ServeRequest(request_id=f"t-{uuid.uuid4().hex[:10]}", app=ev.app, query=ev.query, tools=ev.tools)


def _answerable(router: Router, events: list[FCLogEvent]) -> FCLogEvent:
    """A record the router sends small and its template tier answers."""
    for ev in events:
        d = router.decide(_request(ev))
        if d.route == "small" and router.template_answer(_request(ev), d.function).call is not None:
            return ev
    raise AssertionError("no record of the app is answered from a template")


async def test_a_template_answer_needs_no_model(make_runtime, app_router: RouterFixture) -> None:
    fixture = template_router(app_router)
    runtime = await make_runtime(router=fixture)
    ev = _answerable(fixture.load(), app_router.events)
    resp = await runtime.engine.answer(_request(ev))
    assert resp.served_by == "template" and resp.error is None and resp.call is not None
    assert resp.program is not None and resp.program.startswith("p")
    assert resp.latency.generate_ms == 0 and resp.latency.template_ms > 0
    assert runtime.metrics.value("odia_serving_requests_total", {"served_by": "template", "reason": resp.route_reason}) == 1
    disabled = await make_runtime(router=fixture, templates=False)
    assert (await disabled.engine.answer(_request(ev))).served_by in ("small", "large"), "the setting turns the tier off"


async def test_with_no_adapter_templates_answer_and_the_rest_goes_large(
    make_runtime, app_router: RouterFixture
) -> None:
    fixture = template_router(app_router)
    runtime = await make_runtime(router=fixture, adapter=False)
    router = fixture.load()
    ev = _answerable(router, app_router.events)
    resp = await runtime.engine.answer(_request(ev))
    assert resp.served_by == "template" and resp.adapter_version is None and resp.router_version == fixture.version
    other = next(e for e in app_router.held_out if (d := router.decide(_request(e))).route == "small"
                 and router.template_answer(_request(e), d.function).call is None)
    resp = await runtime.engine.answer(_request(other))
    assert resp.served_by == "large" and resp.route_reason == "no_adapter" and resp.error is None
    assert resp.latency.template_ms > 0, "the template tier was asked first"


async def test_a_call_the_schema_refuses_falls_through_to_the_small_model(
    make_runtime, app_router: RouterFixture
) -> None:
    ev = _answerable(template_router(app_router).load(), app_router.events)
    runtime = await make_runtime(router=template_router(app_router, corrupt=True))
    resp = await runtime.engine.answer(_request(ev))
    assert resp.served_by in ("small", "large") and resp.program is None
    assert runtime.metrics.value("odia_serving_template_misses_total", {"reason": "invalid_call"}) == 1


async def test_disagreeing_shadow_checks_demote_the_program(make_runtime, app_router: RouterFixture) -> None:
    fixture = template_router(app_router)
    ev = _answerable(fixture.load(), app_router.events)
    # A large model that has come to disagree: for these queries it now calls another function.
    disagreeing = [
        e.model_copy(update={"call": FunctionCall(name="SomethingElse", arguments={})}) if e.call else e
        for e in app_router.events
    ]
    runtime = await make_runtime(replay_large(disagreeing), router=fixture, shadow_share=1.0, shadow_max_concurrency=2)
    router = runtime.versions.current.router
    assert router is not None
    program = None
    for _ in range(60):
        resp = await runtime.engine.answer(_request(ev))
        if resp.served_by != "template":
            break
        program = resp.program
        assert await runtime.shadow.drain(30)
    else:
        pytest.fail("the program was never demoted")
    assert program is not None and not router.budget.allows(program)
    assert runtime.metrics.value("odia_serving_template_misses_total", {"reason": "error_budget"}) == 1
    assert runtime.metrics.value("odia_serving_shadow_checks_total", {"outcome": "disagree"}) >= 1
