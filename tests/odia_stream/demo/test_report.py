"""The demo report's figures, from requests and responses built out of real dataset records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from odia_stream.demo.report import HeldOut, build_report, coverage_series, warmup_summary, write_report
from schemas import FCLogEvent, FunctionCall, LatencyBreakdown, ServeRequest, ServeResponse


def _held(events: list[FCLogEvent]) -> list[HeldOut]:
    return [
        HeldOut(ServeRequest(request_id=e.event_id, app=e.app, query=e.query, history=e.history, tools=e.tools), e.call)
        for e in events
    ]


def _resp(h: HeldOut, served_by: str, call: FunctionCall | None, ms: float, t: int) -> ServeResponse:
    return ServeResponse(
        request_id=h.request.request_id, call=call, served_by=served_by, route_reason="cluster_match" if served_by == "small" else "complex_cluster",  # type: ignore[arg-type]
        latency=LatencyBreakdown(route_ms=3, generate_ms=ms - 3, validate_ms=0, total_ms=ms),
        answered_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=t),
    )


def test_figures(snips_events: list[FCLogEvent], tmp_path: Path) -> None:
    events = [e for e in snips_events if e.call is not None][:10]
    held = _held(events)
    wrong = FunctionCall(name=next(t.function.name for t in events[1].tools if t.function.name != events[1].call.name),
                         arguments={})
    other_args = FunctionCall(name=events[2].call.name, arguments={"zzz": "1"})
    responses = [
        _resp(held[0], "small", events[0].call, 300, 0),  # right
        _resp(held[1], "small", wrong, 300, 1),  # wrong function
        _resp(held[2], "small", other_args, 300, 2),  # right function, wrong arguments
        *[_resp(h, "large", h.expected, 1600, 3 + i) for i, h in enumerate(held[3:9])],
    ]  # held[9] unanswered
    baseline = {h.request.request_id: 1600.0 for h in held}
    r = build_report(held, responses, baseline, large_model="replay-simulated(x)", simulated_large=True)
    assert r["answered"] == 9 and r["unanswered"] == 1
    assert r["coverage"] == pytest.approx(3 / 9, abs=1e-4)
    assert r["router_precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert r["small_ast_accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    f = r["expected_latency_formula"]
    assert f["E_L_ms"] == pytest.approx(3 / 9 * 300 + 6 / 9 * 1600, abs=0.01)
    assert f["reduction_vs_baseline"] == pytest.approx(1 - f["E_L_ms"] / 1600, abs=1e-3)
    assert r["latency_ms"]["odia"]["p50"] == 1600 and "simulated" in r["large_model_latency"]
    xs, ys = coverage_series(responses)
    assert xs[0] == 0 and ys[2] == 1.0 and ys[-1] == pytest.approx(3 / 9)
    paths = write_report(r, responses, baseline, tmp_path)
    assert all(p.stat().st_size > 0 for p in paths)
    assert json.loads(paths[0].read_text())["served_small"] == 3
    assert "simulated" in paths[1].read_text()


def test_nothing_served_small_gives_empty_figures_not_nan(snips_events: list[FCLogEvent], tmp_path: Path) -> None:
    held = _held([e for e in snips_events if e.call is not None][:4])
    responses = [_resp(h, "large", h.expected, 1600, i) for i, h in enumerate(held)]
    r = build_report(held, responses, {h.request.request_id: 1600.0 for h in held}, large_model="replay-simulated(x)",
                     simulated_large=True)
    assert r["coverage"] == 0 and r["router_precision"] is None and r["small_evaluated"] == 0
    assert r["latency_ms"]["small_routed"] == {"n": 0, "p50": None, "p90": None, "p99": None, "mean": None}
    json.dumps(r, allow_nan=False)  # standard JSON
    paths = write_report(r, responses, {h.request.request_id: 1600.0 for h in held}, tmp_path)
    assert "| small routed (n=0) | – | – | – |" in paths[1].read_text()


def test_template_answers_get_their_own_row_and_count_as_coverage(snips_events: list[FCLogEvent], tmp_path: Path) -> None:
    held = _held([e for e in snips_events if e.call is not None][:6])
    wrong = FunctionCall(name=held[1].expected.name, arguments={"zzz": "1"})  # type: ignore[union-attr]

    def template(h: HeldOut, call: FunctionCall | None, t: int) -> ServeResponse:
        return ServeResponse(
            request_id=h.request.request_id, call=call, served_by="template", route_reason="cluster_match",
            program="p0123456789abcdef",
            latency=LatencyBreakdown(route_ms=3, generate_ms=0, validate_ms=0, total_ms=4, template_ms=0.5),
            answered_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=t),
        )

    responses = [
        template(held[0], held[0].expected, 0),
        template(held[1], wrong, 1),
        _resp(held[2], "small", held[2].expected, 300, 2),
        *[_resp(h, "large", h.expected, 1600, 3 + i) for i, h in enumerate(held[3:])],
    ]
    baseline = {h.request.request_id: 1600.0 for h in held}
    r = build_report(held, responses, baseline, large_model="replay-simulated(x)", simulated_large=True)
    assert r["served_template"] == 2 and r["served_small"] == 1 and r["coverage"] == pytest.approx(3 / 6, abs=1e-4)
    assert r["template_share"] == pytest.approx(2 / 6, abs=1e-4) and r["template_ast_agreement"] == 0.5
    assert r["small_ast_accuracy"] == 1.0, "template answers are not the small model's"
    assert r["latency_ms"]["template"]["p50"] == 4 and r["latency_ms"]["template_assembly"]["p50"] == 0.5
    assert r["expected_latency_formula"]["L_small_ms"] == pytest.approx((4 + 4 + 300) / 3, abs=0.01)
    md = write_report(r, responses, baseline, tmp_path)[1].read_text()
    assert "template tier: share, AST agreement" in md and "| template (n=2) |" in md


def test_the_small_path_policy_is_counted(snips_events: list[FCLogEvent], tmp_path: Path) -> None:
    held = _held([e for e in snips_events if e.call is not None][:5])
    reasons = ["hedged", "hedged", "small_busy", "small_not_faster", "complex_cluster"]
    responses = [
        _resp(h, "large", h.expected, 1600, i).model_copy(update={"route_reason": reason})
        for i, (h, reason) in enumerate(zip(held, reasons, strict=True))
    ]
    baseline = {h.request.request_id: 1600.0 for h in held}
    r = build_report(held, responses, baseline, large_model="replay-simulated(x)", simulated_large=True)
    assert (r["hedged"], r["small_busy"], r["small_not_faster"]) == (2, 1, 1)
    md = write_report(r, responses, baseline, tmp_path)[1].read_text()
    assert "| small path: hedged (large answered first), busy, not faster than the large model | 2, 1, 1 |" in md


def test_the_warm_up_and_serving_probes_get_their_rows(snips_events: list[FCLogEvent], tmp_path: Path) -> None:
    held = _held([e for e in snips_events if e.call is not None][:4])
    earned = _resp(held[0], "small", held[0].expected, 200, 0).model_copy(update={"route_reason": "function_trust_earned"})
    warm = [earned, _resp(held[1], "large", held[1].expected, 1600, 1),
            _resp(held[2], "template", held[2].expected, 5, 2)]
    summary = warmup_summary(warm)
    assert summary["requests"] == 3 and (summary["served_small"], summary["served_template"], summary["served_large"]) == (1, 1, 1)
    assert held[0].expected is not None and summary["trust_earned"] == [held[0].expected.name]
    measured = [_resp(held[3], "large", held[3].expected, 1600, 3)]
    baseline = {held[3].request.request_id: 1600.0}
    r = build_report(held[3:], measured, baseline, large_model="replay-simulated(x)", simulated_large=True,
                     extra={"warmup": summary, "trust_probes": {"agree": 5, "disagree": 2, "skipped": 9}})
    md = write_report(r, measured, baseline, tmp_path)[1].read_text()
    assert f"| warm-up before the measured requests (not in these figures) | 3 requests: 1 small, 1 templates, 1 large; " \
           f"functions served on trust earned by serving's probes: {held[0].expected.name} |" in md
    assert "(warm-up and measured) | agree 5, disagree 2, skipped 9, error 0 |" in md
