"""The promise's figures: shares, precision, agreement, latency ratios, the large-routed p99 and the
per-request bound, each met or missed."""

from __future__ import annotations

from datetime import UTC, datetime

from odia_stream.demo.report import HeldOut
from odia_stream.demo.targets import promise_targets, render_targets
from schemas import FCLogEvent, FunctionCall, LatencyBreakdown, ServeRequest, ServeResponse


def _held(events: list[FCLogEvent]) -> list[HeldOut]:
    return [HeldOut(ServeRequest(request_id=e.event_id, app=e.app, query=e.query, tools=e.tools), e.call)
            for e in events]


def _resp(h: HeldOut, served_by: str, reason: str, ms: float, call: FunctionCall | None = None) -> ServeResponse:
    return ServeResponse(
        request_id=h.request.request_id, call=call if call is not None else h.expected, served_by=served_by,  # type: ignore[arg-type]
        route_reason=reason, latency=LatencyBreakdown(route_ms=1, generate_ms=ms - 1, validate_ms=0, total_ms=ms),
        answered_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_a_fast_accurate_run_meets_every_target(snips_events: list[FCLogEvent]) -> None:
    held = _held([e for e in snips_events if e.call is not None][:10])
    base = {h.request.request_id: 1600.0 for h in held}
    responses = [_resp(h, "template", "cluster_match", 5) for h in held[:5]] + [
        _resp(held[5], "small", "cluster_match", 300), _resp(held[6], "large", "complex_cluster", 1601),
        _resp(held[7], "large", "hedged", 2500), *[_resp(h, "large", "below_threshold", 1600) for h in held[8:]]]
    targets = {t.name: t for t in promise_targets(held, responses, base, share_target=0.5, hedge_max_ms=1000)}
    assert all(t.met for t in targets.values()), [t for t in targets.values() if not t.met]
    assert targets["share answered without the large model (template + small)"].value == 0.6
    assert targets["median latency / all-large baseline"].paper == "0.22"


def test_slow_wrong_and_late_answers_are_missed(snips_events: list[FCLogEvent]) -> None:
    events = [e for e in snips_events if e.call is not None][:4]
    held = _held(events)
    wrong = FunctionCall(name=next(t.function.name for t in events[0].tools if t.function.name != events[0].call.name),
                         arguments={})
    base = {h.request.request_id: 1000.0 for h in held}
    responses = [_resp(held[0], "small", "cluster_match", 9000, wrong), _resp(held[1], "large", "below_threshold", 3000),
                 _resp(held[2], "large", "hedged", 1500), _resp(held[3], "large", "below_threshold", 1000)]
    targets = promise_targets(held, responses, base, share_target=0.5, hedge_max_ms=1000)
    missed = {t.name for t in targets if not t.met}
    assert missed == {t.name for t in targets} - set(), "every figure misses here"
    late = next(t for t in targets if t.name.startswith("requests later"))
    assert late.value == 2  # 9000 ms and 3000 ms, against 1000 + 1000 + 100
    table = "\n".join(render_targets([t.as_dict() for t in targets]))
    assert table.count("**MISSED**") == len(targets)
    off = promise_targets(held, responses, base, share_target=0.5, hedge_max_ms=None)
    assert next(t for t in off if t.name.startswith("requests later")).note == "hedging off: no bound"
