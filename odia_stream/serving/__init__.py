"""The serving domain (no Kafka): route, generate, validate, escalate, shadow-check, hot-swap, metrics.

The Kafka consumer in ``serving/`` feeds request messages to :meth:`ServeEngine.answer_raw`, and
the update chosen by :func:`choose_update` to :meth:`HotSwapper.apply`.
"""

from odia_stream.serving.backends import build_generator, resolve_backend
from odia_stream.serving.coalescing import CoalescingGenerator
from odia_stream.serving.engine import MALFORMED_REQUEST, RawAnswer, ServeEngine
from odia_stream.serving.escalation import ESCALATION_REASONS, Escalation, EscalationReason, escalation_for
from odia_stream.serving.hot_swap import HotSwapper, SwapOutcome, fixed_warmup_prompt
from odia_stream.serving.metrics import ServingMetrics
from odia_stream.serving.offsets import OffsetTracker
from odia_stream.serving.requests import IncomingRequest, parse_request
from odia_stream.serving.router_api import RouteDecision, RouterLike, RouterLoader
from odia_stream.serving.runtime import ServingRuntime, build_runtime
from odia_stream.serving.shadow import AgreementStats, ShadowChecker, ShadowSampler
from odia_stream.serving.updates import UpdateChoice, choose_update
from odia_stream.serving.versions import ActiveVersion, VersionHolder

__all__ = [
    "ESCALATION_REASONS",
    "MALFORMED_REQUEST",
    "ActiveVersion",
    "AgreementStats",
    "CoalescingGenerator",
    "Escalation",
    "EscalationReason",
    "HotSwapper",
    "IncomingRequest",
    "OffsetTracker",
    "RawAnswer",
    "RouteDecision",
    "RouterLike",
    "RouterLoader",
    "ServeEngine",
    "ServingMetrics",
    "ServingRuntime",
    "ShadowChecker",
    "ShadowSampler",
    "SwapOutcome",
    "UpdateChoice",
    "VersionHolder",
    "build_generator",
    "build_runtime",
    "choose_update",
    "escalation_for",
    "fixed_warmup_prompt",
    "parse_request",
    "resolve_backend",
]
