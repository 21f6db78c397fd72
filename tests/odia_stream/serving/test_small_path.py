"""The small path's admission policy: capacity, latency estimates, the gate and the hedge delay
(pure logic), and the engine applying them (hedging: small wins, large wins, both fail; the queue
bound; large-routed requests never waiting for the small model).

The engine tests use scripted test doubles of the small generator, the large model and the router
(their latencies and answers are the point here); the real ones are exercised in test_serve_engine.py
and tests/serving."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from odia_stream.generation.protocol import AdapterRef, GenerationRequest, GenerationResult
from odia_stream.large_model.protocol import LargeModelAnswer, LargeModelError
from odia_stream.prompting import render_prompt
from odia_stream.prompting.format import render_target
from odia_stream.routing.template_tier import TemplateAnswer
from odia_stream.serving.backends import resolve_backend
from odia_stream.serving.engine import FUNCTION_NOT_TRUSTED, FUNCTION_TRUST_EARNED, ServeEngine
from odia_stream.serving.shadow import AgreementStats, ShadowChecker, ShadowSampler
from odia_stream.serving.small_path import (
    HEDGED,
    LLAMACPP_QUEUE,
    SMALL_BUSY,
    SMALL_NOT_FASTER,
    LatencyGate,
    LatencyWindow,
    SmallPathCapacity,
    small_path_limits,
)
from odia_stream.serving.versions import ActiveVersion, VersionHolder
from odia_stream.settings import OdiaSettings
from schemas import FunctionCall, ServeRequest, ServeResponse, ToolSpec

TOOL = ToolSpec.model_validate({
    "name": "play_music",
    "description": "Play a song",
    "parameters": {"type": "object", "properties": {"song": {"type": "string"}}, "required": ["song"]},
})
CALL = FunctionCall(name="play_music", arguments={"song": "yesterday"})


def _settings(**serving: object) -> OdiaSettings:
    s = OdiaSettings()
    return s.model_copy(update={
        "serving": s.serving.model_copy(update={"small_latency_budget_ms": 60_000.0, **serving}),
        "templates": s.templates.model_copy(update={"enabled": False}),
    })


def _request(n: int, query: str = "play yesterday") -> ServeRequest:
    return ServeRequest(request_id=f"r{n}", query=query, tools=[TOOL])


@dataclass
class _Decision:
    route: str
    function: str | None
    reason: str
    cluster_id: Hashable | None = None


class _Router:
    """Routes a query starting with ``large`` large, everything else small; the adapter is trusted
    with ``play_music`` unless ``trusted`` is off."""

    version = "router-test"

    def __init__(self, *, trusted: bool = True) -> None:
        self.trusted = trusted

    def decide(self, request: ServeRequest) -> _Decision:
        if request.query.startswith("large"):
            return _Decision("large", None, "below_threshold")
        if request.query.startswith("untrusted"):  # a function the adapter is not trusted with
            return _Decision("small", "stop_music", "cluster_match", "c2")
        return _Decision("small", CALL.name, "cluster_match", "c1")

    def model_answers(self, function: str | None) -> bool:
        return self.trusted and function == CALL.name

    def template_answer(self, request: ServeRequest, function: str | None, *, check_required: bool = True
                        ) -> TemplateAnswer:
        raise AssertionError("the template tier is off in these tests")

    def record_agreement(self, cluster_id: Hashable, agreed: bool) -> None:
        pass


@dataclass
class _ScriptedSmall:
    """A small generator that answers after ``delay_s`` with the right call (or ``text``), and
    waits for ``gate`` first when one is set."""

    delay_s: float = 0.0
    text: str | None = None
    gate: asyncio.Event | None = None
    base_model: str = "scripted-test-double"
    enforces_json_schema: bool = False
    started: int = 0
    cancelled: int = 0
    in_flight: int = 0
    most_in_flight: int = 0

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.started += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1
        prompt = render_prompt([TOOL], [], "play yesterday", _settings().prompt, CALL.name)  # as serving renders
        text = self.text if self.text is not None else render_target(CALL, prompt)
        return [GenerationResult(text=text, adapter_version="a1", prompt_tokens=10, output_tokens=5, ms=1.0)
                for _ in requests]

    async def load_adapter(self, ref: AdapterRef) -> None:
        pass

    async def unload_adapter(self, version: str) -> None:
        pass

    async def aclose(self) -> None:
        pass


@dataclass
class _ScriptedLarge:
    """A large model that answers ``CALL`` after ``delay_s`` (or fails when ``fail``)."""

    delay_s: float = 0.0
    fail: bool = False
    calls: int = 0
    cancelled: int = 0
    finished: list[str] = field(default_factory=list)

    async def call(self, request: ServeRequest) -> LargeModelAnswer:
        self.calls += 1
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.fail:
            raise LargeModelError("scripted failure")
        self.finished.append(request.request_id)
        return LargeModelAnswer(call=CALL, model="scripted-test-double", latency_ms=self.delay_s * 1000,
                                simulated=True)


def _engine(small: _ScriptedSmall, large: _ScriptedLarge, *, limits: tuple[int, int] = (4, 4),
            measured_small_ms: float | None = None, router: _Router | None = None, **serving: object) -> ServeEngine:
    """An engine over the test doubles; ``measured_small_ms``: the small path has already been
    measured (``latency_min_samples`` latencies of that many ms), so the hedge delay applies."""
    adapter = AdapterRef("a1", Path("/nonexistent"), "0" * 64, "scripted-test-double")
    engine = ServeEngine(
        _settings(**serving), generator=small, large_model=large,  # type: ignore[arg-type]
        versions=VersionHolder(ActiveVersion(adapter=adapter, router=router or _Router())),  # type: ignore[arg-type]
        small_limits=limits,
    )
    for _ in range(engine.gate.min_samples if measured_small_ms is not None else 0):
        engine.gate.observe_small(float(measured_small_ms), 10)  # type: ignore[arg-type]
    return engine


# --- pure logic -----------------------------------------------------------------------------------


def test_limits_are_sized_to_the_engine_unless_set() -> None:
    s = OdiaSettings()
    assert small_path_limits(s, "hf") == (s.generator.max_batch_size, s.generator.max_batch_size)
    assert small_path_limits(s, "vllm") == (s.vllm.max_num_seqs, s.vllm.max_num_seqs)
    set_ = _settings(small_max_concurrency=3, small_max_queue=0)
    assert small_path_limits(set_, "hf") == (3, 0)
    assert small_path_limits(s, "llamacpp") == (1, LLAMACPP_QUEUE)  # one generation at a time, a short queue
    assert small_path_limits(set_, "llamacpp") == (3, 0)
    assert small_path_limits(s) == small_path_limits(s, resolve_backend("auto"))  # auto: the engine it picks


async def test_capacity_turns_away_past_concurrency_plus_queue_and_gives_places_back() -> None:
    cap = SmallPathCapacity(concurrency=1, queue=1)
    assert cap.try_admit() and cap.try_admit()
    assert not cap.try_admit() and cap.full
    release = asyncio.Event()

    async def hold() -> None:
        async with cap.running():
            await release.wait()

    first, second = asyncio.create_task(hold()), asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    second.cancel()  # cancelled while waiting for the slot: its place comes back
    await asyncio.gather(second, return_exceptions=True)
    assert cap.admitted == 1 and cap.try_admit()
    release.set()
    await first
    assert cap.admitted == 1
    with pytest.raises(ValueError):
        SmallPathCapacity(0, 1)


def test_window_quantiles() -> None:
    w = LatencyWindow(3)
    assert w.quantile(0.5) is None
    for ms in (100, 1, 2, 3):  # the oldest falls out
        w.add(ms)
    assert len(w) == 3 and w.quantile(0.5) == 2.0


def test_gate_closes_when_the_small_path_is_not_faster_and_probes_while_closed() -> None:
    gate = LatencyGate(_settings(latency_min_samples=5, small_faster_ratio=0.5, gate_probe_share=0.25))
    assert gate.decide(100).small_ok, "no estimates yet: open"
    for _ in range(5):
        gate.observe_small(1200.0, 100)
        gate.observe_large(2000.0)
    d = gate.decide(100)
    assert not d.small_ok and not d.probe and not gate.open
    assert (d.small_p50_ms, d.large_p50_ms) == (1200.0, 2000.0)
    decisions = [gate.decide(100) for _ in range(7)]
    assert [x.probe for x in decisions] == [False, False, True, False, False, False, True]
    assert all(x.small_ok == x.probe for x in decisions)
    for _ in range(200):  # faster again: the gate reopens
        gate.observe_small(300.0, 100)
    assert gate.decide(100).small_ok and gate.open


def test_gate_uses_the_prompt_size_class_once_it_has_samples() -> None:
    gate = LatencyGate(_settings(latency_min_samples=3))
    for _ in range(3):
        gate.observe_large(1000.0)
        gate.observe_small(100.0, 200)  # short prompts: fast
        gate.observe_small(900.0, 9000)  # long prompts: slow
    assert gate.decide(200).small_ok
    assert not gate.decide(9000).small_ok
    assert gate.small_estimate(3000) == gate.small_all.quantile(0.5), "an unseen size class uses every size"


def test_cost_mode_keeps_the_small_path() -> None:
    gate = LatencyGate(_settings(latency_min_samples=1, latency_gate="cost"))
    gate.observe_small(5000.0, 10)
    gate.observe_large(100.0)
    assert gate.decide(10).small_ok


def test_hedge_delay_is_the_small_quantile_capped() -> None:
    gate = LatencyGate(_settings(latency_min_samples=10, hedge_quantile=0.9, hedge_max_delay_ms=800))
    assert gate.hedge_delay_s() == 0.0, "too few samples: both calls start at once"
    for ms in range(10, 110, 10):
        gate.observe_small(float(ms), 10)
    assert gate.hedge_delay_s() == pytest.approx(0.091)
    assert gate.hedge_delay_s(probe=True) == 0.0, "a probe of the closed gate races the large call"
    for _ in range(100):
        gate.observe_small(5000.0, 10)
    assert gate.hedge_delay_s() == pytest.approx(0.8)
    assert LatencyGate(_settings(hedge=False)).hedge_delay_s() is None


# --- the engine -----------------------------------------------------------------------------------


async def test_a_small_answer_within_the_hedge_delay_never_calls_the_large_model() -> None:
    small, large = _ScriptedSmall(delay_s=0.01), _ScriptedLarge(delay_s=0.5)
    engine = _engine(small, large, hedge_max_delay_ms=500, latency_min_samples=1, measured_small_ms=1000)
    r = await engine.answer(_request(1))
    assert (r.served_by, r.call) == ("small", CALL)
    assert large.calls == 0 and engine.metrics.value("odia_serving_hedges_total", {"winner": "small"}) == 0


async def test_a_function_the_adapter_is_not_trusted_with_goes_large_without_the_small_model() -> None:
    small, large = _ScriptedSmall(), _ScriptedLarge(delay_s=0.01)
    engine = _engine(small, large)
    r = await engine.answer(_request(1, "untrusted: stop the music"))
    assert r.served_by == "large" and r.route_reason == FUNCTION_NOT_TRUSTED
    assert small.started == 0 and large.calls == 1
    trusted = await engine.answer(_request(2))
    assert trusted.served_by == "small" and small.started == 1


async def _answer_untrusted(engine: ServeEngine, n: int) -> list[ServeResponse]:
    out = []
    for i in range(n):  # one at a time, each probe finished before the next request
        out.append(await engine.answer(_request(i)))
        assert await engine.prober.drain(5)
    return out


async def test_probes_that_agree_with_the_large_model_earn_the_function_its_trust() -> None:
    # The large model far slower than the scripted small one: the latency gate (which the probes'
    # latencies feed) stays open.
    small, large = _ScriptedSmall(), _ScriptedLarge(delay_s=0.05)
    engine = _engine(small, large, router=_Router(trusted=False))
    # At the defaults (target 0.9, z 1.645) 25 agreeing probes are the fewest that prove the target.
    assert (engine.trust.target, engine.trust.z) == (0.9, 1.645)
    before = await _answer_untrusted(engine, 25)
    assert {(r.served_by, r.route_reason) for r in before} == {("large", FUNCTION_NOT_TRUSTED)}
    assert small.started == 25 and large.calls == 25
    assert engine.metrics.value("odia_serving_trust_probes_total", {"outcome": "agree"}) == 25
    assert engine.trust.functions("a1") == [CALL.name]
    after = await engine.answer(_request(99))
    assert (after.served_by, after.route_reason, after.call) == ("small", FUNCTION_TRUST_EARNED, CALL)
    assert large.calls == 25 and small.started == 26, "served by the small model alone"
    assert len(engine.gate.small_all) == 26, "the probes' latencies measured the small path"


async def test_probes_that_disagree_earn_nothing_and_a_probe_share_of_zero_never_probes() -> None:
    wrong = _ScriptedSmall(text='{"a":"let it be"}')  # valid, but not the large model's call
    engine = _engine(wrong, _ScriptedLarge(), router=_Router(trusted=False))
    answers = await _answer_untrusted(engine, 40)
    assert {r.served_by for r in answers} == {"large"} and wrong.started == 40
    assert engine.trust.stats("a1", CALL.name) == AgreementStats(checks=40, agreed=0)
    assert engine.metrics.value("odia_serving_trust_probes_total", {"outcome": "disagree"}) == 40
    off = _ScriptedSmall()
    engine = _engine(off, _ScriptedLarge(), router=_Router(trusted=False), trust_probe_share=0.0)
    await _answer_untrusted(engine, 5)
    assert off.started == 0


async def test_a_probe_takes_only_an_idle_small_path() -> None:
    small = _ScriptedSmall()
    engine = _engine(small, _ScriptedLarge(), router=_Router(trusted=False), limits=(1, 3))
    release = asyncio.Event()
    assert engine.capacity.try_admit()

    async def real_request_in_flight() -> None:
        async with engine.capacity.running():
            await release.wait()

    holder = asyncio.create_task(real_request_in_flight())
    r = await engine.answer(_request(1))
    assert r.served_by == "large" and small.started == 0 and engine.prober.running == 0
    assert engine.metrics.value("odia_serving_trust_probes_total", {"outcome": "skipped"}) == 1
    release.set()
    await holder
    await engine.answer(_request(2))
    assert await engine.prober.drain(5)
    assert small.started == 1 and engine.capacity.admitted == 0, "the probe gave its place back"


async def test_shadow_checks_of_small_answers_count_towards_earned_trust() -> None:
    small, large = _ScriptedSmall(), _ScriptedLarge(delay_s=0.05)
    engine = _engine(small, large, router=_Router(trusted=False))
    engine.shadow = ShadowChecker(large, ShadowSampler(1.0), max_concurrency=4)  # type: ignore[arg-type]
    await _answer_untrusted(engine, 25)
    served = await engine.answer(_request(100))
    assert served.route_reason == FUNCTION_TRUST_EARNED
    assert await engine.shadow.drain(5)
    assert engine.trust.stats("a1", CALL.name) == AgreementStats(checks=26, agreed=26)


async def test_hedge_large_wins_and_the_small_generation_is_cancelled() -> None:
    small, large = _ScriptedSmall(delay_s=5.0), _ScriptedLarge(delay_s=0.05)
    engine = _engine(small, large, hedge_max_delay_ms=50, latency_min_samples=1, measured_small_ms=100)
    t0 = time.perf_counter()
    r = await engine.answer(_request(1))
    took = time.perf_counter() - t0
    assert (r.served_by, r.route_reason, r.call) == ("large", HEDGED, CALL)
    assert took < 2.0, "answered at hedge delay + large latency, not the small model's 5 s"
    assert r.latency.generate_ms >= 90
    await asyncio.sleep(0)
    assert small.cancelled == 1 and engine.capacity.admitted == 0
    assert engine.metrics.value("odia_serving_hedges_total", {"winner": "large"}) == 1
    assert len(engine.gate.small_all) == 2, "abandoned: still measured"
    assert (engine.gate.small_all.quantile(0.5) or 0) >= 90


async def test_an_unmeasured_small_path_races_the_large_model_from_the_start() -> None:
    """Nothing says yet that the small model is faster: the large call starts with it, so the
    request measuring the small path is answered at the large model's latency, not after the cap."""
    small, large = _ScriptedSmall(delay_s=5.0), _ScriptedLarge(delay_s=0.05)
    engine = _engine(small, large, hedge_max_delay_ms=5000)
    t0 = time.perf_counter()
    r = await engine.answer(_request(1))
    assert (r.served_by, r.route_reason) == ("large", HEDGED) and large.calls == 1
    assert time.perf_counter() - t0 < 2.5, "not after the 5 s hedge cap"
    await asyncio.sleep(0)
    assert small.cancelled == 1 and len(engine.gate.small_all) == 1, "the abandoned small call is measured"
    fast = _engine(_ScriptedSmall(delay_s=0.0), _ScriptedLarge(delay_s=1.0), hedge_max_delay_ms=5000)
    r = await fast.answer(_request(2))
    assert r.served_by == "small" and fast.metrics.value("odia_serving_hedges_total", {"winner": "small"}) == 1


async def test_hedge_small_wins_and_the_large_call_is_cancelled() -> None:
    small, large = _ScriptedSmall(delay_s=0.15), _ScriptedLarge(delay_s=5.0)
    engine = _engine(small, large, hedge_max_delay_ms=20, latency_min_samples=1, measured_small_ms=100)
    r = await engine.answer(_request(1))
    assert (r.served_by, r.call) == ("small", CALL)
    await asyncio.sleep(0)
    assert large.calls == 1 and large.cancelled == 1
    assert engine.metrics.value("odia_serving_hedges_total", {"winner": "small"}) == 1


async def test_hedge_small_fails_and_the_running_large_call_answers() -> None:
    small, large = _ScriptedSmall(delay_s=0.1, text="not a call"), _ScriptedLarge(delay_s=0.2)
    engine = _engine(small, large, hedge_max_delay_ms=20, latency_min_samples=1, measured_small_ms=100)
    t0 = time.perf_counter()
    r = await engine.answer(_request(1))
    assert (r.served_by, r.route_reason) == ("large", "escalated:parse_error")
    assert large.calls == 1, "the large call started at the hedge is the one answering"
    assert time.perf_counter() - t0 < 0.2 + 0.02 + 1.0
    assert engine.metrics.value("odia_serving_escalations_total", {"reason": "parse_error"}) == 1


async def test_hedge_both_fail_gives_one_error_response() -> None:
    small, large = _ScriptedSmall(delay_s=0.1, text="not a call"), _ScriptedLarge(delay_s=0.01, fail=True)
    engine = _engine(small, large, hedge_max_delay_ms=20, latency_min_samples=1, measured_small_ms=100)
    r = await engine.answer(_request(1))
    assert r.served_by == "none" and r.call is None and r.error and "large model failed" in r.error
    assert r.route_reason == "escalated:parse_error"
    assert engine.metrics.value("odia_serving_hedges_total", {"winner": "none"}) == 1


async def test_large_fails_first_and_the_small_answer_is_served() -> None:
    small, large = _ScriptedSmall(delay_s=0.1), _ScriptedLarge(delay_s=0.01, fail=True)
    engine = _engine(small, large, hedge_max_delay_ms=20, latency_min_samples=1, measured_small_ms=100)
    r = await engine.answer(_request(1))
    assert (r.served_by, r.call) == ("small", CALL)
    assert engine.metrics.value("odia_serving_hedges_total", {"winner": "small"}) == 1


async def test_a_full_small_path_sends_requests_large_at_once_and_large_routes_never_wait() -> None:
    blocked = asyncio.Event()
    small, large = _ScriptedSmall(gate=blocked), _ScriptedLarge(delay_s=0.02)
    engine = _engine(small, large, limits=(1, 1), hedge=False)
    held = [asyncio.create_task(engine.answer(_request(n))) for n in range(2)]  # one generating, one queued
    await asyncio.sleep(0.02)
    assert small.started == 1 and engine.capacity.full
    t0 = time.perf_counter()
    busy = await engine.answer(_request(2))
    routed_large = await engine.answer(_request(3, query="large request"))
    assert time.perf_counter() - t0 < 1.0
    assert (busy.served_by, busy.route_reason) == ("large", SMALL_BUSY)
    assert (routed_large.served_by, routed_large.route_reason) == ("large", "below_threshold")
    blocked.set()
    answers = await asyncio.gather(*held)
    assert [a.served_by for a in answers] == ["small", "small"] and small.most_in_flight == 1
    assert engine.capacity.admitted == 0


async def test_a_closed_gate_routes_small_requests_large() -> None:
    small, large = _ScriptedSmall(delay_s=0.0), _ScriptedLarge(delay_s=0.0)
    engine = _engine(small, large, latency_min_samples=2, gate_probe_share=0.0)
    for _ in range(2):
        engine.gate.observe_small(3000.0, 100)
        engine.gate.observe_large(1000.0)
    r = await engine.answer(_request(1))
    assert (r.served_by, r.route_reason) == ("large", SMALL_NOT_FASTER) and small.started == 0
    assert engine.metrics.value("odia_serving_small_path_open") == 0
    assert engine.metrics.value("odia_serving_latency_estimate_seconds", {"path": "small"}) == 3.0


async def test_a_probe_of_the_closed_gate_starts_the_large_call_at_once() -> None:
    small, large = _ScriptedSmall(delay_s=5.0), _ScriptedLarge(delay_s=0.05)
    engine = _engine(small, large, latency_min_samples=2, gate_probe_share=1.0, hedge_max_delay_ms=5000)
    for _ in range(2):
        engine.gate.observe_small(3000.0, 100)
        engine.gate.observe_large(1000.0)
    t0 = time.perf_counter()
    r = await engine.answer(_request(1))
    assert (r.served_by, r.route_reason) == ("large", HEDGED) and small.started == 1
    assert time.perf_counter() - t0 < 2.5, "the probe did not wait for the hedge cap"
