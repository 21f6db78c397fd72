"""The demo's promise to a user, as figures with targets (issue 15) and the paper's figures beside
them: more traffic off the large model, no loss of accuracy, lower latency, and no request slower
than the large model alone. Each target says plainly whether this run met it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from odia_stream.evaluation import ast_match
from odia_stream.serving.small_path import POLICY_REASONS
from schemas import ServeResponse

if TYPE_CHECKING:
    from odia_stream.demo.report import HeldOut

__all__ = ["Target", "promise_targets", "render_targets"]

#: Slack allowed over the large model's own latency (router time, the broker, the event loop).
SLACK_MS = 100.0


@dataclass(frozen=True)
class Target:
    """One figure of the promise: its value in this run, the target, the paper's figure."""

    name: str
    value: float | None
    target: str
    met: bool
    paper: str = "–"
    #: Why there is no value (``value`` is ``None``).
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _tool(h: HeldOut, name: str) -> Any:
    return next((t.function for t in h.request.tools if t.function.name == name), None)


def _routed_large(r: ServeResponse) -> bool:
    """Sent large by the router itself (not escalated, hedged or turned away by the small path)."""
    return r.served_by == "large" and r.route_reason not in POLICY_REASONS and not r.route_reason.startswith(
        "escalated")


def promise_targets(
    held_out: Sequence[HeldOut],
    responses: Sequence[ServeResponse],
    baseline_ms: Mapping[str, float],
    *,
    share_target: float,
    hedge_max_ms: float | None,
) -> list[Target]:
    """The figures of the promise for one run. ``baseline_ms``: request id → the large model's latency
    for it (the all-large baseline); ``hedge_max_ms``: the hedge delay's cap (``None``: hedging off,
    so no bound on a request's latency holds)."""
    by_id = {r.request_id: r for r in responses}
    pairs = [(h, by_id[h.request.request_id]) for h in held_out if h.request.request_id in by_id]
    out: list[Target] = []
    if not pairs:
        return [Target("requests answered", 0, "> 0", False, note="nothing was answered")]
    fast = [(h, r) for h, r in pairs if r.served_by in ("small", "template")]
    share = len(fast) / len(pairs)
    out.append(Target("share answered without the large model (template + small)", round(share, 4),
                      f">= {share_target:.2f}", share >= share_target))
    with_expected = [(h, r) for h, r in fast if h.expected is not None]
    precision = (sum(r.call is not None and r.call.name == h.expected.name for h, r in with_expected)  # type: ignore[union-attr]
                 / len(with_expected)) if with_expected else None
    out.append(Target("router precision (right function, served without the large model)", precision, ">= 0.99",
                      precision is not None and precision >= 0.99, note="" if precision is not None else "none served"))
    agree = (sum(ast_match(r.call, h.expected, _tool(h, h.expected.name)).ok  # type: ignore[union-attr]
                 for h, r in with_expected) / len(with_expected)) if with_expected else None
    out.append(Target("AST agreement with the recorded large-model call, served without the large model", agree,
                      ">= 0.95", agree is not None and agree >= 0.95, note="" if agree is not None else "none served"))
    total = np.asarray([r.latency.total_ms for _, r in pairs])
    base = np.asarray([baseline_ms[h.request.request_id] for h, _ in pairs])
    mean_ratio = float(total.mean() / base.mean())
    median_ratio = float(np.median(total) / np.median(base))
    out.append(Target("mean latency / all-large baseline", round(mean_ratio, 3), "<= 0.5", mean_ratio <= 0.5, "0.55"))
    out.append(Target("median latency / all-large baseline", round(median_ratio, 3), "<= 0.25", median_ratio <= 0.25,
                      "0.22"))
    routed_large = [r.latency.total_ms for _, r in pairs if _routed_large(r)]
    if routed_large:
        over = float(np.percentile(routed_large, 99) - np.percentile(base, 99))
        out.append(Target("routed large: p99 minus the baseline's p99 (ms)", round(over, 1), f"<= {SLACK_MS:.0f}",
                          over <= SLACK_MS))
    else:
        out.append(Target("routed large: p99 minus the baseline's p99 (ms)", None, f"<= {SLACK_MS:.0f}", True,
                          note="nothing routed large"))
    if hedge_max_ms is None:
        out.append(Target("requests later than hedge delay + their large-model latency + 100 ms", None, "0", False,
                          note="hedging off: no bound"))
    else:
        late = sum(1 for h, r in pairs
                   if r.latency.total_ms > hedge_max_ms + baseline_ms[h.request.request_id] + SLACK_MS)
        out.append(Target("requests later than hedge delay + their large-model latency + 100 ms", late, "0",
                          late == 0))
    return out


def render_targets(targets: Sequence[Mapping[str, Any]]) -> list[str]:
    """The targets as a Markdown table, ``MISSED`` where missed."""
    lines = ["| figure | this run | target | paper | verdict |", "|---|---|---|---|---|"]
    for t in targets:
        value = f"– ({t['note']})" if t["value"] is None else f"{t['value']}"
        lines.append(f"| {t['name']} | {value} | {t['target']} | {t['paper']} | "
                     f"{'met' if t['met'] else '**MISSED**'} |")
    return lines
