"""The demo report: coverage, router precision, template-tier and small-model accuracy and latency
against an all-large baseline, the paper's expected-latency formula with measured values, and plots.

Everything here is computed from what a user could collect: the held-out requests with the call
the large model recorded for them, the responses serving published, and the latency the large
model takes for each request. With the replay large model that latency is **simulated** (drawn
from its configured distribution); the report says so.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from odia_stream.demo.targets import promise_targets, render_targets
from odia_stream.evaluation import ast_match
from odia_stream.figures import save_figure
from odia_stream.serving.earned_trust import FUNCTION_TRUST_EARNED
from odia_stream.serving.small_path import HEDGED, SMALL_BUSY, SMALL_NOT_FASTER
from schemas import FunctionCall, ServeRequest, ServeResponse


@dataclass(frozen=True)
class HeldOut:
    """A held-out request and the call the large model made for it in the log (``None``: no call)."""

    request: ServeRequest
    expected: FunctionCall | None


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    if not values:  # None, not NaN: the JSON stays standard
        return {"n": 0, "p50": None, "p90": None, "p99": None, "mean": None}
    a = np.asarray(values, dtype=float)
    return {
        "n": int(a.size),
        "p50": round(float(np.percentile(a, 50)), 2),
        "p90": round(float(np.percentile(a, 90)), 2),
        "p99": round(float(np.percentile(a, 99)), 2),
        "mean": round(float(a.mean()), 2),
    }


def _tool(request: ServeRequest, name: str) -> Any:
    return next((t.function for t in request.tools if t.function.name == name), None)


def warmup_summary(responses: Sequence[ServeResponse]) -> dict[str, Any]:
    """What serving did with the warm-up requests (answered before the measured ones, not in the
    report's figures): who answered, why, and the functions it served on trust earned by its probes.

    >>> from schemas import LatencyBreakdown
    >>> lat = LatencyBreakdown(route_ms=0, generate_ms=0, validate_ms=0, total_ms=1)
    >>> r = ServeResponse(request_id="w1", call=FunctionCall(name="play", arguments={}), served_by="small",
    ...                   route_reason="function_trust_earned", latency=lat)
    >>> warmup_summary([r])["trust_earned"]
    ['play']
    """
    return {
        "requests": len(responses),
        "served_small": sum(r.served_by == "small" for r in responses),
        "served_template": sum(r.served_by == "template" for r in responses),
        "served_large": sum(r.served_by == "large" for r in responses),
        "route_reasons": dict(sorted(Counter(r.route_reason for r in responses).items())),
        "trust_earned": sorted({r.call.name for r in responses if r.route_reason == FUNCTION_TRUST_EARNED and r.call}),
    }


def build_report(
    held_out: Sequence[HeldOut],
    responses: Sequence[ServeResponse],
    baseline_ms: Mapping[str, float],
    *,
    large_model: str,
    simulated_large: bool,
    clusters: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    share_target: float = 0.4,
    hedge_max_ms: float | None = None,
) -> dict[str, Any]:
    """The report as a JSON-ready dict. ``baseline_ms``: request id → the large model's latency for it;
    ``share_target`` and ``hedge_max_ms``: see :func:`~odia_stream.demo.targets.promise_targets`."""
    by_id = {r.request_id: r for r in responses}
    missing = [h.request.request_id for h in held_out if h.request.request_id not in by_id]
    answered = [(h, by_id[h.request.request_id]) for h in held_out if h.request.request_id in by_id]
    small = [(h, r) for h, r in answered if r.served_by == "small"]
    template = [(h, r) for h, r in answered if r.served_by == "template"]
    fast = small + template  # answered without the large model
    large = [(h, r) for h, r in answered if r.served_by == "large"]
    errors = [(h, r) for h, r in answered if r.error is not None]
    right_function = sum(1 for h, r in fast if r.call is not None and h.expected is not None and r.call.name == h.expected.name)

    def ast_ok(pairs: Sequence[tuple[HeldOut, ServeResponse]]) -> int:
        return sum(
            1 for h, r in pairs
            if h.expected is not None and ast_match(r.call, h.expected, _tool(h.request, h.expected.name)).ok
        )

    truly_callable = [h for h, _ in answered if h.expected is not None]
    total = [r.latency.total_ms for _, r in answered]
    base = [baseline_ms[h.request.request_id] for h, _ in answered if h.request.request_id in baseline_ms]
    small_ms = [r.latency.total_ms for _, r in small]
    fast_ms = [r.latency.total_ms for _, r in fast]
    template_ms = [r.latency.total_ms for _, r in template]
    large_ms = [r.latency.total_ms for _, r in large]
    route_ms = [r.latency.route_ms for _, r in answered]
    coverage = len(fast) / len(answered) if answered else 0.0
    mean_small = float(np.mean(fast_ms)) if fast_ms else 0.0
    mean_large = float(np.mean(large_ms)) if large_ms else (float(np.mean(base)) if base else 0.0)
    expected_formula = coverage * mean_small + (1 - coverage) * mean_large
    reasons = Counter(r.route_reason for _, r in answered)
    report: dict[str, Any] = {
        "requests": len(held_out),
        "answered": len(answered),
        "unanswered": len(missing),
        "errors": len(errors),
        "coverage": round(coverage, 4),
        "served_small": len(small),
        "served_template": len(template),
        "served_large": len(large),
        "coverage_of_callable": round(len(fast) / len(truly_callable), 4) if truly_callable else 0.0,
        "router_precision": round(right_function / len(fast), 4) if fast else None,
        "small_ast_accuracy": round(ast_ok(small) / len(small), 4) if small else None,
        "small_evaluated": len(small),
        "template_share": round(len(template) / len(answered), 4) if answered else 0.0,
        "template_ast_agreement": round(ast_ok(template) / len(template), 4) if template else None,
        "route_reasons": dict(sorted(reasons.items())),
        "escalated": sum(1 for _, r in answered if r.route_reason.startswith("escalated")),
        # The small path's admission policy (odia_stream/serving/small_path.py): answered first by the
        # large call started beside a slow small generation; sent large because the small path was full;
        # sent large because the small path was not faster than the large model.
        "hedged": reasons.get(HEDGED, 0),
        "small_busy": reasons.get(SMALL_BUSY, 0),
        "small_not_faster": reasons.get(SMALL_NOT_FASTER, 0),
        "latency_ms": {
            "odia": _stats(total),
            "all_large_baseline": _stats(base),
            "small_routed": _stats(small_ms),
            "template": _stats(template_ms),
            "template_assembly": _stats([r.latency.template_ms for _, r in template]),
            "large_routed": _stats(large_ms),
            "route": _stats(route_ms),
        },
        "expected_latency_formula": {
            "formula": "E[L] = c * L_small + (1 - c) * L_large   (router time included in both terms; "
            "c and L_small count template answers with the small model's)",
            "c": round(coverage, 4),
            "L_small_ms": round(mean_small, 2),
            "L_large_ms": round(mean_large, 2),
            "E_L_ms": round(expected_formula, 2),
            "measured_mean_ms": _stats(total)["mean"],
            "baseline_mean_ms": _stats(base)["mean"],
            "reduction_vs_baseline": round(1 - expected_formula / float(np.mean(base)), 4) if base else None,
        },
        "large_model": large_model,
        "large_model_latency": "simulated (replayed dataset calls, latency drawn from a distribution)"
        if simulated_large else "measured",
        "clusters": dict(clusters or {}),
        "targets": [t.as_dict() for t in promise_targets(held_out, responses, baseline_ms, share_target=share_target,
                                                         hedge_max_ms=hedge_max_ms)],
    }
    if base and total:
        report["median_reduction_vs_baseline"] = round(1 - float(np.median(total)) / float(np.median(base)), 4)
        report["mean_reduction_vs_baseline"] = round(1 - float(np.mean(total)) / float(np.mean(base)), 4)
    report.update(extra or {})
    return report


def coverage_series(responses: Sequence[ServeResponse]) -> tuple[list[float], list[float]]:
    """(seconds since the first answer, cumulative share served without the large model: by the
    small model or a template) in answer order."""
    ordered = sorted(responses, key=lambda r: r.answered_at)
    if not ordered:
        return [], []
    t0 = ordered[0].answered_at
    xs, ys, small = [], [], 0
    for i, r in enumerate(ordered, start=1):
        small += r.served_by in ("small", "template")
        xs.append((r.answered_at - t0).total_seconds())
        ys.append(small / i)
    return xs, ys


def write_report(
    report: Mapping[str, Any], responses: Sequence[ServeResponse], baseline_ms: Mapping[str, float], out_dir: Path
) -> list[Path]:
    """``report.json``, ``report.md``, ``latency_cdf.png`` and ``coverage.png`` in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json", out_dir / "report.md", out_dir / "latency_cdf.png", out_dir / "coverage.png"]
    paths[0].write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    paths[1].write_text(render_markdown(report), encoding="utf-8")

    fig, ax = plt.subplots(figsize=(7, 4))
    sim = " (simulated)" if "simulated" in str(report.get("large_model_latency")) else ""
    for label, values in (
        ("odia-stream", [r.latency.total_ms for r in responses]),
        (f"all-large baseline{sim}", list(baseline_ms.values())),
    ):
        if values:
            v = np.sort(np.asarray(values, dtype=float))
            ax.plot(v, np.arange(1, v.size + 1) / v.size, label=label)
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("share of requests")
    ax.set_title("Latency CDF")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, paths[2])

    xs, ys = coverage_series(responses)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(xs, ys)
    ax.set_ylim(0, 1)
    ax.set_xlabel("seconds since the first response")
    ax.set_ylabel("share served small or by a template")
    ax.set_title("Coverage over time (cumulative)")
    ax.grid(alpha=0.3)
    save_figure(fig, paths[3])
    return paths


def _warmup_row(warmup: Mapping[str, Any] | None) -> list[str]:
    if not warmup:
        return []
    trusted = ", ".join(warmup["trust_earned"]) or "none"
    return [f"| warm-up before the measured requests (not in these figures) | {warmup['requests']} requests: "
            f"{warmup['served_small']} small, {warmup['served_template']} templates, {warmup['served_large']} large; "
            f"functions served on trust earned by serving's probes: {trusted} |"]


def _probes_row(probes: Mapping[str, int] | None) -> list[str]:
    if probes is None:
        return []
    counts = ", ".join(f"{k} {probes.get(k, 0)}" for k in ("agree", "disagree", "skipped", "error"))
    return [f"| serving's probes of functions the adapter is not trusted with (warm-up and measured) | {counts} |"]


def render_markdown(report: Mapping[str, Any]) -> str:
    """A human-readable summary of the report."""
    lat = report["latency_ms"]
    f = report["expected_latency_formula"]

    def pct(x: Any) -> str:
        return "n/a" if x is None else f"{100 * float(x):.1f}%"

    lines = [
        "# odia-stream demo report",
        "",
        f"Large model: `{report['large_model']}`; its latency is {report['large_model_latency']}.",
        "",
        "## The promise: targets and this run",
        "",
        *render_targets(report.get("targets", [])),
        "",
        "## Figures",
        "",
        "| figure | value |",
        "|---|---|",
        f"| requests answered | {report['answered']} / {report['requests']} (errors: {report['errors']}) |",
        f"| coverage (served small or by a template) | {pct(report['coverage'])} |",
        f"| template tier: share, AST agreement vs the large model's calls | {pct(report['template_share'])}, "
        f"{pct(report['template_ast_agreement'])} (on {report['served_template']}) |",
        f"| router precision (right function when small or template) | {pct(report['router_precision'])} |",
        f"| small-model AST accuracy vs the large model's calls | {pct(report['small_ast_accuracy'])} "
        f"(on {report['small_evaluated']}) |",
        f"| escalated small → large | {report['escalated']} |",
        f"| small path: hedged (large answered first), busy, not faster than the large model | "
        f"{report['hedged']}, {report['small_busy']}, {report['small_not_faster']} |",
        f"| route reasons | {', '.join(f'{k}: {v}' for k, v in report['route_reasons'].items()) or '–'} |",
        *_warmup_row(report.get("warmup")),
        *_probes_row(report.get("trust_probes")),
        "",
        "| latency (ms) | p50 | p90 | mean |",
        "|---|---|---|---|",
    ]
    for name in ("odia", "all_large_baseline", "small_routed", "template", "template_assembly", "large_routed", "route"):
        s = lat[name]
        cells = " | ".join("–" if s[k] is None else str(s[k]) for k in ("p50", "p90", "mean"))
        lines.append(f"| {name.replace('_', ' ')} (n={s['n']}) | {cells} |")
    lines += [
        "",
        f"Expected latency (paper): {f['formula']}",
        f"with c = {f['c']}, L_small = {f['L_small_ms']} ms, L_large = {f['L_large_ms']} ms:"
        f" E[L] = {f['E_L_ms']} ms (measured mean {f['measured_mean_ms']} ms; all-large baseline "
        f"{f['baseline_mean_ms']} ms; reduction {pct(f['reduction_vs_baseline'])}).",
        "",
        "![latency CDF](latency_cdf.png)",
        "",
        "![coverage over time](coverage.png)",
        "",
    ]
    return "\n".join(lines)
