"""The serving engine: one :class:`~schemas.ServeResponse` per :class:`~schemas.ServeRequest`.

Per request (pure async logic, no Kafka):

1. capture the serving pair (adapter + router) once; it is used to the end even if a hot swap
   happens meanwhile;
2. route with the pair's router (``serving.mode = all_large`` sends everything large);
3. small route: first the template tier (``templates.enabled``): a call assembled from the
   request's slots by its template's live program, validated like a model's call, answered with
   ``served_by = "template"`` (a miss falls through, counted by reason); with no adapter (a router
   served alone) the request goes large, and so it does with a function the adapter is trusted with
   neither by the trainer nor by serving's own probes (:mod:`odia_stream.serving.earned_trust`: the
   small model is then probed on it in the background, when the small path is idle); else render the prompt
   (the trainer's format) and apply the small path's admission policy
   (:mod:`odia_stream.serving.small_path`): while the small path is not faster than the large
   model the request goes large (``small_not_faster``, but for probes), and when its generations
   and queue are full it goes large at once (``small_busy``);
4. admitted: generate with the pair's adapter within the latency budget, parse, map aliases back
   and validate against the offered tools; any failure is escalated
   (:mod:`odia_stream.serving.escalation`) and counted. If no answer came within the hedge delay
   (0 while the small path is unmeasured, and for probes), the large call starts beside the
   generation and the first valid answer wins (a large win has route reason ``hedged``);
5. large route or escalation: ask the large model;
6. served by a template or small: maybe start a shadow check (off the critical path; a program's
   disagreements spend its own error budget).

So a large-routed request never waits for the small model, and no request waits longer than the
hedge delay plus the large model's own latency (the small path's queue wait counts in the delay).

Every path returns exactly one response: errors become a response with ``error`` set and
``served_by = "none"``, built by this module alone.

:meth:`ServeEngine.answer_raw` takes a request as it came off the wire (value, key, position):
a message that cannot be read (:func:`~odia_stream.serving.requests.parse_request`) is answered
with an error response (``route_reason = "malformed_request"``, counted as a ``malformed`` error),
a readable one by :meth:`ServeEngine.answer`. Either way the answer says where to send it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

from odia_stream.evaluation.tool_schema import ToolSchemaError
from odia_stream.generation.calls import CheckedCall, call_from, request_for
from odia_stream.generation.protocol import SmallGenerator
from odia_stream.large_model.protocol import LargeModel, LargeModelAnswer, LargeModelError
from odia_stream.prompting import RenderedPrompt, render_prompt
from odia_stream.serving.earned_trust import FUNCTION_TRUST_EARNED, EarnedTrust, TrustProber
from odia_stream.serving.escalation import Escalation, escalation_for
from odia_stream.serving.metrics import ServingMetrics
from odia_stream.serving.requests import parse_request
from odia_stream.serving.router_api import RouteDecision
from odia_stream.serving.shadow import ShadowChecker, ShadowSampler
from odia_stream.serving.small_path import (
    HEDGED,
    SMALL_BUSY,
    SMALL_NOT_FASTER,
    LatencyGate,
    SmallPathCapacity,
    small_path_limits,
)
from odia_stream.serving.versions import ActiveVersion, VersionHolder
from odia_stream.settings import OdiaSettings
from schemas import FunctionCall, LatencyBreakdown, ServeRequest, ServeResponse
from schemas.serving import ServedBy

__all__ = ["FUNCTION_TRUST_EARNED", "MALFORMED_REQUEST", "RawAnswer", "ServeEngine"]

log = logging.getLogger(__name__)

#: Route reasons of the engine itself (the router's own reasons pass through unchanged).
NO_GENERATOR = "no_generator"
ALL_LARGE = "all_large"
ROUTER_ERROR = "router_error"
#: Routed small with a function the paired adapter is not trusted with, and no template answered.
FUNCTION_NOT_TRUSTED = "function_not_trusted"
#: Routed small while a router serves with no adapter (a ``RouterUpdate``), and no template answered.
NO_ADAPTER = "no_adapter"
#: Route reason of the answer to a message that is not a readable request.
MALFORMED_REQUEST = "malformed_request"
#: Seconds to wait for the losing call of a hedge to finish cancelling.
CANCEL_WAIT_S = 1.0


def _ms(since: float) -> float:
    return max(0.0, (time.perf_counter() - since) * 1000.0)


def _error_response(
    request_id: str,
    error: str,
    *,
    route_reason: str,
    adapter_version: str | None = None,
    router_version: str | None = None,
    latency: LatencyBreakdown | None = None,
) -> ServeResponse:
    """A response that says ``error`` (no call, ``served_by = "none"``)."""
    return ServeResponse(
        request_id=request_id,
        call=None,
        served_by="none",
        route_reason=route_reason,
        adapter_version=adapter_version,
        router_version=router_version,
        latency=latency or LatencyBreakdown(route_ms=0, generate_ms=0, validate_ms=0, total_ms=0),
        error=error,
    )


@dataclass
class _Clock:
    started: float
    route_ms: float = 0.0
    template_ms: float = 0.0
    generate_ms: float = 0.0
    validate_ms: float = 0.0

    def breakdown(self) -> LatencyBreakdown:
        return LatencyBreakdown(
            route_ms=self.route_ms,
            template_ms=self.template_ms,
            generate_ms=self.generate_ms,
            validate_ms=self.validate_ms,
            total_ms=_ms(self.started),
        )


@dataclass(frozen=True)
class RawAnswer:
    """The answer to one request message: the response, where to send it (``None``: the
    responses topic), and whether the message was unreadable (then ``response`` says why)."""

    response: ServeResponse
    reply_topic: str | None
    malformed: bool


@dataclass(frozen=True)
class _SmallAnswer:
    call: FunctionCall | None
    escalation: Escalation | None


@dataclass(frozen=True)
class _LargeAnswer:
    answer: LargeModelAnswer | None
    error: str | None
    ms: float


class ServeEngine:
    """Answers requests with the small generator or the large model (see the module docstring)."""

    def __init__(
        self,
        settings: OdiaSettings,
        *,
        generator: SmallGenerator, large_model: LargeModel, versions: VersionHolder,
        metrics: ServingMetrics | None = None,
        shadow: ShadowChecker | None = None,
        recent_prompts: int = 16,
        small_limits: tuple[int, int] | None = None,
    ) -> None:
        self.settings = settings
        #: The two models, and the version pair new requests start on.
        self.generator = generator
        self.large_model = large_model
        self.versions = versions
        self.shadow = shadow
        self.metrics = metrics or ServingMetrics()
        #: Prompts of recent small-routed requests (hot-swap warm-up uses real traffic's shape).
        self.recent_prompts: deque[RenderedPrompt] = deque(maxlen=recent_prompts)
        concurrency, queue = small_limits or small_path_limits(settings)
        #: The small path's own capacity: ``(concurrency, queue)``, sized to the engine by default.
        self.capacity = SmallPathCapacity(concurrency, queue)
        #: Latency estimates of both paths, the latency gate and the hedge delay.
        self.gate = LatencyGate(settings)
        s = settings.serving
        #: Per-function trust earned in serving (probes, then shadow checks), and the probes.
        self.trust = EarnedTrust(settings.trainer.function_accuracy_target, settings.router.calibration_z)
        self.prober = TrustProber(
            generator, self.trust, self.capacity, ShadowSampler(s.trust_probe_share, s.shadow_seed),
            max_new_tokens=settings.small_answer_tokens, check_required=s.require_all_arguments, metrics=self.metrics,
            observe_latency=self.gate.observe_small,
        )

    async def answer_raw(
        self, value: bytes | None, key: bytes | None, topic: str, partition: int, offset: int
    ) -> RawAnswer:
        """Exactly one response for a request message (its value and key, read at ``offset`` of
        ``topic``/``partition``): unreadable ones get an error response (see the module docstring)."""
        incoming = parse_request(value, key, topic, partition, offset)
        if incoming.request is None:
            self.metrics.errors.labels("malformed").inc()
            response = _error_response(
                incoming.request_id, incoming.error or "malformed request", route_reason=MALFORMED_REQUEST
            )
            self.metrics.observe(response)
            return RawAnswer(response, incoming.reply_topic, malformed=True)
        return RawAnswer(await self.answer(incoming.request), incoming.reply_topic, malformed=False)

    async def answer(self, request: ServeRequest) -> ServeResponse:
        """Exactly one response for ``request``, on every path (errors included)."""
        clock = _Clock(time.perf_counter())
        self.metrics.in_flight.inc()
        try:
            with self.versions.acquire() as active:
                try:
                    response = await self._answer(request, active, clock)
                except Exception as exc:  # every request gets a response, whatever broke
                    log.exception("request %s failed", request.request_id)
                    self.metrics.errors.labels("internal").inc()
                    response = _error_response(
                        request.request_id,
                        f"internal error: {type(exc).__name__}: {exc}",
                        route_reason="internal_error",
                        adapter_version=active.adapter_version,
                        router_version=active.router_version,
                        latency=clock.breakdown(),
                    )
        finally:
            self.metrics.in_flight.dec()
        self.metrics.observe(response)
        return response

    async def _answer(self, request: ServeRequest, active: ActiveVersion, clock: _Clock) -> ServeResponse:
        if self.settings.serving.mode == "all_large":
            return await self._large(request, active, clock, ALL_LARGE)
        if active.router is None:
            return await self._large(request, active, clock, NO_GENERATOR)
        started = time.perf_counter()
        try:
            decision = active.router.decide(request)
        except Exception as exc:
            log.exception("router %s failed on %s", active.router_version, request.request_id)
            clock.route_ms = _ms(started)
            return await self._large(request, active, clock, ROUTER_ERROR, detail=str(exc))
        clock.route_ms = _ms(started)
        if decision.route != "small":
            return await self._large(request, active, clock, str(decision.reason))
        if self.settings.templates.enabled:
            answered = self._template(request, active, decision, clock)
            if answered is not None:
                return answered
        if active.adapter is None:
            return await self._large(request, active, clock, NO_ADAPTER)
        reason = str(decision.reason)
        if not active.router.model_answers(decision.function):
            if not self.trust.earned(active.adapter_version, decision.function):
                return await self._probed_large(request, active, decision, clock)
            reason = FUNCTION_TRUST_EARNED
        try:
            prompt = self._render(request, decision.function)
        except (ValueError, ToolSchemaError) as exc:
            return await self._escalate(request, active, clock, Escalation("prompt_error", str(exc)))
        self.recent_prompts.append(prompt)
        chars = prompt.chars
        gate = self.gate.decide(chars)
        self.metrics.set_small_path(self.gate.open, gate.small_p50_ms, gate.large_p50_ms)
        if not gate.small_ok:
            return await self._large(request, active, clock, SMALL_NOT_FASTER)
        if not self.capacity.try_admit():
            return await self._large(request, active, clock, SMALL_BUSY)
        return await self._small_or_hedged(request, active, decision, clock, prompt, chars, gate.probe, reason)

    def _render(self, request: ServeRequest, function: str | None) -> RenderedPrompt:
        """The small model's prompt for ``request`` with ``function`` given (raises ``ValueError`` or
        :class:`ToolSchemaError` when the request's tools cannot be rendered)."""
        return render_prompt(request.tools, request.history, request.query, self.settings.prompt, function)

    async def _probed_large(
        self, request: ServeRequest, active: ActiveVersion, decision: RouteDecision, clock: _Clock
    ) -> ServeResponse:
        """The large model's answer to a request whose function the adapter is not trusted with; the
        small model is then probed on it in the background, when the small path is idle."""
        response = await self._large(request, active, clock, FUNCTION_NOT_TRUSTED)
        if response.call is not None and active.adapter is not None:

            def render() -> RenderedPrompt | None:  # only when a probe will run
                try:
                    return self._render(request, decision.function)
                except (ValueError, ToolSchemaError):
                    return None  # the small model could not be asked this one either

            self.prober.submit(request, render, active.adapter, response.call)
        return response

    async def _small_or_hedged(
        self,
        request: ServeRequest,
        active: ActiveVersion,
        decision: RouteDecision,
        clock: _Clock,
        prompt: RenderedPrompt,
        chars: int,
        probe: bool,
        reason: str,
    ) -> ServeResponse:
        """The admitted small generation, with the large call started beside it after the hedge delay
        (at once for a ``probe`` of the closed gate and while the small path is unmeasured)."""
        generating = time.perf_counter()

        async def admitted() -> _SmallAnswer:
            # In a small-path slot; the latency (queue wait included) feeds the gate, also when
            # the generation is abandoned.
            try:
                async with self.capacity.running():
                    return await self._small(request, active, decision, clock, prompt)
            finally:
                self.gate.observe_small(_ms(generating), chars)

        small_task = asyncio.ensure_future(admitted())
        large_task: asyncio.Future[_LargeAnswer] | None = None
        try:
            delay = self.gate.hedge_delay_s(probe)
            if delay is None or delay > 0:
                await asyncio.wait({small_task}, timeout=delay)
            if small_task.done():
                return await self._served_small(request, active, decision, clock, small_task.result(), reason)
            large_task = asyncio.ensure_future(self._large_call(request))
            done, _ = await asyncio.wait({small_task, large_task}, return_when=asyncio.FIRST_COMPLETED)
            if small_task in done:
                small = small_task.result()
                if small.escalation is None:
                    self.metrics.hedges.labels("small").inc()
                    return await self._served_small(request, active, decision, clock, small, reason)
                large = await large_task  # the small answer failed; the large call already runs
                clock.generate_ms = _ms(generating)
                self.metrics.hedges.labels("large" if large.answer is not None else "none").inc()
                self.metrics.escalations.labels(small.escalation.reason).inc()
                return self._large_response(request, active, clock, small.escalation.route_reason, large)
            large = large_task.result()
            if large.answer is not None:
                clock.generate_ms = _ms(generating)
                self.metrics.hedges.labels("large").inc()
                return self._large_response(request, active, clock, HEDGED, large)
            small = await small_task  # the large model failed: the small answer is all there is
            clock.generate_ms = _ms(generating)
            if small.escalation is None:
                self.metrics.hedges.labels("small").inc()
                return await self._served_small(request, active, decision, clock, small, reason)
            self.metrics.hedges.labels("none").inc()
            self.metrics.escalations.labels(small.escalation.reason).inc()
            return self._large_response(request, active, clock, small.escalation.route_reason, large)
        finally:
            # The loser is cancelled; waiting (briefly) for it gives its small-path place back
            # before the answer leaves.
            losers = {t for t in (small_task, large_task) if t is not None and not t.done()}
            for task in losers:
                task.cancel()
            if losers:
                await asyncio.wait(losers, timeout=CANCEL_WAIT_S)

    async def _served_small(
        self,
        request: ServeRequest,
        active: ActiveVersion,
        decision: RouteDecision,
        clock: _Clock,
        small: _SmallAnswer,
        reason: str,
    ) -> ServeResponse:
        """The response to a finished small generation: served, or escalated to the large model.
        A shadow check's outcome also counts towards the function's trust earned in serving."""
        if small.escalation is not None:
            return await self._escalate(request, active, clock, small.escalation)
        assert small.call is not None
        if self.shadow is not None:
            version, function = active.adapter_version, decision.function

            def earned_trust(agreed: bool) -> None:
                if version is not None and function is not None:
                    self.trust.record_and_log(version, function, agreed, "shadow checks")

            self.shadow.submit(request, small.call, decision.cluster_id, active.router, earned_trust)
        return self._response(request, active, clock, small.call, "small", reason)

    async def _escalate(
        self, request: ServeRequest, active: ActiveVersion, clock: _Clock, escalation: Escalation
    ) -> ServeResponse:
        self.metrics.escalations.labels(escalation.reason).inc()
        log.debug("request %s escalated: %s", request.request_id, escalation.detail)
        return await self._large(request, active, clock, escalation.route_reason)

    def _template(
        self, request: ServeRequest, active: ActiveVersion, decision: RouteDecision, clock: _Clock
    ) -> ServeResponse | None:
        """The template tier's response, or ``None`` (counted by reason) to go on to the small model."""
        assert active.router is not None
        answer = active.router.template_answer(
            request, decision.function, check_required=self.settings.serving.require_all_arguments
        )
        clock.template_ms = answer.assemble_ms
        if answer.call is None:
            self.metrics.template_misses.labels(str(answer.miss)).inc()
            if answer.detail:
                log.debug("request %s not answered from its template (%s): %s", request.request_id, answer.miss,
                          answer.detail)
            return None
        if self.shadow is not None:
            self.shadow.submit(request, answer.call, answer.program, active.router)
        return self._response(request, active, clock, answer.call, "template", str(decision.reason),
                              program=answer.program)

    async def _small(
        self, request: ServeRequest, active: ActiveVersion, decision: RouteDecision, clock: _Clock,
        prompt: RenderedPrompt,
    ) -> _SmallAnswer:
        budget_ms = self.settings.serving.small_latency_budget_ms
        remaining_s = (budget_ms - _ms(clock.started)) / 1000.0
        started = time.perf_counter()
        try:
            if remaining_s <= 0:
                raise TimeoutError
            gen_request = request_for(prompt, active.adapter, self.settings.small_answer_tokens)
            results = await asyncio.wait_for(self.generator.generate([gen_request]), remaining_s)
        except TimeoutError:
            clock.generate_ms += _ms(started)
            return _SmallAnswer(
                None, Escalation("timeout", f"no small-model answer within {budget_ms:.0f} ms")
            )
        except Exception as exc:
            clock.generate_ms += _ms(started)
            log.warning("small generation failed for %s: %s", request.request_id, exc)
            return _SmallAnswer(None, Escalation("generation_error", f"{type(exc).__name__}: {exc}"))
        clock.generate_ms += _ms(started)
        result = results[0]
        if result.adapter_version != active.adapter_version:
            return _SmallAnswer(
                None,
                Escalation(
                    "generation_error",
                    f"generated with adapter {result.adapter_version}, requested {active.adapter_version}",
                ),
            )
        started = time.perf_counter()
        checked: CheckedCall = call_from(
            result, prompt, check_required=self.settings.serving.require_all_arguments
        )
        escalation = escalation_for(checked, decision.function)
        clock.validate_ms = _ms(started)
        return _SmallAnswer(checked.call if escalation is None else None, escalation)

    async def _large_call(self, request: ServeRequest) -> _LargeAnswer:
        """Ask the large model; its latency feeds the gate when it answers."""
        started = time.perf_counter()
        try:
            answer = await self.large_model.call(request)
        except LargeModelError as exc:
            return _LargeAnswer(None, str(exc), _ms(started))
        ms = _ms(started)
        self.gate.observe_large(ms)
        return _LargeAnswer(answer, None, ms)

    async def _large(
        self,
        request: ServeRequest,
        active: ActiveVersion,
        clock: _Clock,
        reason: str,
        *,
        detail: str | None = None,
    ) -> ServeResponse:
        large = await self._large_call(request)
        clock.generate_ms += large.ms
        if detail:
            log.info("request %s went large (%s): %s", request.request_id, reason, detail)
        return self._large_response(request, active, clock, reason, large)

    def _large_response(
        self, request: ServeRequest, active: ActiveVersion, clock: _Clock, reason: str, large: _LargeAnswer
    ) -> ServeResponse:
        if large.answer is None:
            self.metrics.errors.labels("large_model").inc()
            return _error_response(
                request.request_id,
                f"large model failed: {large.error}",
                route_reason=reason,
                adapter_version=active.adapter_version,
                router_version=active.router_version,
                latency=clock.breakdown(),
            )
        return self._response(request, active, clock, large.answer.call, "large", reason,
                              large_model=large.answer.model)

    @staticmethod
    def _response(
        request: ServeRequest,
        active: ActiveVersion,
        clock: _Clock,
        call: FunctionCall | None,
        served_by: ServedBy,
        reason: str,
        *,
        large_model: str | None = None,
        program: str | None = None,
    ) -> ServeResponse:
        return ServeResponse(
            request_id=request.request_id,
            call=call,
            served_by=served_by,
            route_reason=reason,
            adapter_version=active.adapter_version,
            router_version=active.router_version,
            program=program,
            large_model=large_model,
            latency=clock.breakdown(),
        )
