"""The serving engine: one :class:`~schemas.ServeResponse` per :class:`~schemas.ServeRequest`.

Per request (pure async logic, no Kafka):

1. capture the serving pair (adapter + router) once; it is used to the end even if a hot swap
   happens meanwhile;
2. route with the pair's router (``serving.mode = all_large`` sends everything large);
3. small route: first the template tier (``templates.enabled``): a call assembled from the
   request's slots by its template's live program, validated like a model's call, answered with
   ``served_by = "template"`` (a miss falls through, counted by reason); else render the prompt (the trainer's format), generate with the pair's adapter within
   the latency budget, parse, map aliases back and validate against the offered tools; any failure
   is escalated (:mod:`odia_stream.serving.escalation`) and counted;
4. large route or escalation: ask the large model;
5. served by a template or small: maybe start a shadow check (off the critical path; a program's
   disagreements spend its own error budget).

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
from odia_stream.large_model.protocol import LargeModel, LargeModelError
from odia_stream.prompting import RenderedPrompt, render_prompt
from odia_stream.serving.escalation import Escalation, escalation_for
from odia_stream.serving.metrics import ServingMetrics
from odia_stream.serving.requests import parse_request
from odia_stream.serving.router_api import RouteDecision
from odia_stream.serving.shadow import ShadowChecker
from odia_stream.serving.versions import ActiveVersion, VersionHolder
from odia_stream.settings import OdiaSettings
from schemas import FunctionCall, LatencyBreakdown, ServeRequest, ServeResponse
from schemas.serving import ServedBy

__all__ = ["MALFORMED_REQUEST", "RawAnswer", "ServeEngine"]

log = logging.getLogger(__name__)

#: Route reasons of the engine itself (the router's own reasons pass through unchanged).
NO_GENERATOR = "no_generator"
ALL_LARGE = "all_large"
ROUTER_ERROR = "router_error"
#: Route reason of the answer to a message that is not a readable request.
MALFORMED_REQUEST = "malformed_request"


def _ms(since: float) -> float:
    return max(0.0, (time.perf_counter() - since) * 1000.0)


def _error_response(
    request_id: str,
    error: str,
    *,
    route_reason: str,
    generator_version: str | None = None,
    router_version: str | None = None,
    latency: LatencyBreakdown | None = None,
) -> ServeResponse:
    """A response that says ``error`` (no call, ``served_by = "none"``)."""
    return ServeResponse(
        request_id=request_id,
        call=None,
        served_by="none",
        route_reason=route_reason,
        generator_version=generator_version,
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


class ServeEngine:
    """Answers requests with the small generator or the large model (see the module docstring)."""

    def __init__(
        self,
        settings: OdiaSettings,
        *,
        generator: SmallGenerator,
        large_model: LargeModel,
        versions: VersionHolder,
        metrics: ServingMetrics | None = None,
        shadow: ShadowChecker | None = None,
        recent_prompts: int = 16,
    ) -> None:
        self.settings = settings
        self.generator = generator
        self.large_model = large_model
        self.versions = versions
        self.metrics = metrics or ServingMetrics()
        self.shadow = shadow
        #: Prompts of recent small-routed requests (hot-swap warm-up uses real traffic's shape).
        self.recent_prompts: deque[RenderedPrompt] = deque(maxlen=recent_prompts)

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
                        generator_version=active.generator_version,
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
        if not active.can_route_small:
            return await self._large(request, active, clock, NO_GENERATOR)
        assert active.router is not None
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
        small = await self._small(request, active, decision, clock)
        if small.escalation is not None:
            self.metrics.escalations.labels(small.escalation.reason).inc()
            log.debug("request %s escalated: %s", request.request_id, small.escalation.detail)
            return await self._large(request, active, clock, small.escalation.route_reason)
        assert small.call is not None
        if self.shadow is not None:
            self.shadow.submit(request, small.call, decision.cluster_id, active.router)
        return self._response(request, active, clock, small.call, "small", str(decision.reason))

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
        self, request: ServeRequest, active: ActiveVersion, decision: RouteDecision, clock: _Clock
    ) -> _SmallAnswer:
        budget_ms = self.settings.serving.small_latency_budget_ms
        try:
            prompt = render_prompt(request.tools, request.history, request.query, self.settings.prompt)
        except (ValueError, ToolSchemaError) as exc:
            return _SmallAnswer(None, Escalation("prompt_error", str(exc)))
        self.recent_prompts.append(prompt)
        remaining_s = (budget_ms - _ms(clock.started)) / 1000.0
        started = time.perf_counter()
        try:
            if remaining_s <= 0:
                raise TimeoutError
            gen_request = request_for(prompt, active.adapter, self.settings.serving.max_new_tokens)
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
        if result.adapter_version != active.generator_version:
            return _SmallAnswer(
                None,
                Escalation(
                    "generation_error",
                    f"generated with adapter {result.adapter_version}, requested {active.generator_version}",
                ),
            )
        started = time.perf_counter()
        checked: CheckedCall = call_from(
            result, prompt, check_required=self.settings.serving.require_all_arguments
        )
        escalation = escalation_for(checked, decision.function)
        clock.validate_ms = _ms(started)
        return _SmallAnswer(checked.call if escalation is None else None, escalation)

    async def _large(
        self,
        request: ServeRequest,
        active: ActiveVersion,
        clock: _Clock,
        reason: str,
        *,
        detail: str | None = None,
    ) -> ServeResponse:
        started = time.perf_counter()
        try:
            answer = await self.large_model.call(request)
        except LargeModelError as exc:
            clock.generate_ms += _ms(started)
            self.metrics.errors.labels("large_model").inc()
            return _error_response(
                request.request_id,
                f"large model failed: {exc}",
                route_reason=reason,
                generator_version=active.generator_version,
                router_version=active.router_version,
                latency=clock.breakdown(),
            )
        clock.generate_ms += _ms(started)
        if detail:
            log.info("request %s went large (%s): %s", request.request_id, reason, detail)
        return self._response(request, active, clock, answer.call, "large", reason, large_model=answer.model)

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
            generator_version=active.generator_version,
            router_version=active.router_version,
            program=program,
            large_model=large_model,
            latency=clock.breakdown(),
        )
