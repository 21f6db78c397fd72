"""Judging routing decisions against what the large model actually called.

* **precision**: among requests routed small, the share whose predicted function is the recorded
  call's function (a request recorded with no call and routed small is an error);
* **coverage** (recall): requests routed small *and* right, over all requests with a recorded call;
* **recall of truly simple**: the same over the requests that are *truly simple*: their query
  group, in a learner trained on all the data, sits in a simple cluster whose function they call;
* **small share**: requests routed small over all requests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from odia_stream.keys import group_key_of
from odia_stream.labels import NO_CALL
from odia_stream.routing.builder import LearnerState
from odia_stream.routing.decision import Decision
from schemas import FCLogEvent, ServeRequest


def request_of(event: FCLogEvent) -> ServeRequest:
    """The serving request an FC log stands for (same app, query, history and tools)."""
    return ServeRequest(request_id=event.event_id, app=event.app, query=event.query, history=event.history, tools=event.tools)


def recorded_function(event: FCLogEvent) -> str:
    """The function the large model called (``<none>`` for no call)."""
    return event.call.name if event.call else NO_CALL


@dataclass(frozen=True)
class RoutingEvaluation:
    """Figures of a set of decisions (definitions in the module doc)."""

    requests: int
    with_call: int
    routed_small: int
    correct_small: int
    precision: float
    coverage: float
    small_share: float
    truly_simple: int | None
    recall_truly_simple: float | None
    #: Requests with history (follow-up turns) and how many of them went small.
    context_dependent: int
    context_dependent_small: int
    reasons: dict[str, int] = field(default_factory=dict)
    #: Per deciding stage of small decisions: routed and right.
    by_stage: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def context_small_share(self) -> float:
        """Share of follow-up turns routed small."""
        return self.context_dependent_small / self.context_dependent if self.context_dependent else 0.0


def evaluate_decisions(
    events: Sequence[FCLogEvent], decisions: Sequence[Decision], truly_simple: Sequence[bool] | None = None
) -> RoutingEvaluation:
    """Score ``decisions`` (one per event, same order) against the events' recorded calls."""
    if len(events) != len(decisions) or (truly_simple is not None and len(truly_simple) != len(events)):
        raise ValueError("need exactly one decision (and truly-simple flag) per event")
    routed = correct = with_call = ctx = ctx_small = ts_n = ts_hit = 0
    reasons: Counter[str] = Counter()
    stages: dict[str, dict[str, int]] = {}
    for i, (ev, d) in enumerate(zip(events, decisions, strict=True)):
        reasons[d.reason.value] += 1
        right = d.route == "small" and d.function == recorded_function(ev)
        with_call += ev.call is not None
        if d.route == "small":
            routed += 1
            correct += right
            st = stages.setdefault(d.stage, {"routed": 0, "correct": 0})
            st["routed"] += 1
            st["correct"] += right
        if ev.history:
            ctx += 1
            ctx_small += d.route == "small"
        if truly_simple is not None and truly_simple[i]:
            ts_n += 1
            ts_hit += right
    return RoutingEvaluation(
        requests=len(events),
        with_call=with_call,
        routed_small=routed,
        correct_small=correct,
        precision=correct / routed if routed else float("nan"),
        coverage=correct / with_call if with_call else 0.0,
        small_share=routed / len(events) if events else 0.0,
        truly_simple=ts_n if truly_simple is not None else None,
        recall_truly_simple=(ts_hit / ts_n if ts_n else 0.0) if truly_simple is not None else None,
        context_dependent=ctx,
        context_dependent_small=ctx_small,
        reasons=dict(reasons.most_common()),
        by_stage=stages,
    )


def truly_simple_flags(state: LearnerState, events: Sequence[FCLogEvent]) -> list[bool]:
    """Per event: its query group in ``state`` (a learner trained on all data) is in a simple
    cluster whose dominant function the event calls."""
    by_key = {g.key: g for g in state.groups.values()}
    mode = state.settings.scope
    flags = []
    for ev in events:
        g = by_key.get(group_key_of(ev, mode))
        if g is None:
            flags.append(False)
            continue
        c = state.clusters[g.cluster_id]
        flags.append(c.label == "simple" and ev.call is not None and ev.call.name == c.dominant_function)
    return flags
