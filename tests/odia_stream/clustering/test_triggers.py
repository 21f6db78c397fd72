"""The retrain-trigger policy (counts per app, thresholds, saved state) and manual triggers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from odia_stream.clustering import OnlineClusterLearner
from odia_stream.clustering.records import Cluster
from odia_stream.clustering.triggers import (
    DueTrigger,
    RetrainTriggerPolicy,
    flipped_by_app,
    manual_trigger,
    new_training_examples,
    retrain_trigger,
)
from odia_stream.keys import cluster_key
from odia_stream.settings import TriggerSettings
from schemas import FCLogEvent, FunctionCall, ToolSpec

MakeLearner = Callable[..., OnlineClusterLearner]
TOOLS = [ToolSpec(function={"name": "play"}), ToolSpec(function={"name": "stop"})]


def _policy(new: int = 10, flips: int = 2) -> RetrainTriggerPolicy:
    return RetrainTriggerPolicy(TriggerSettings(min_new_examples=new, min_label_flips=flips))


def _cluster(cid: int, app: str, label: str, dominant: str | None) -> Cluster:
    c = Cluster(cid, f"app:{app}", app, np.zeros(2, np.float32))
    c.label, c.dominant_function = label, dominant
    return c


def _event(i: int, app: str, fn: str | None) -> FCLogEvent:
    return FCLogEvent(event_id=f"e{i}", app=app, query=f"q{i}", tools=TOOLS, call=FunctionCall(name=fn) if fn else None)


def test_new_examples_fire_and_restart_the_apps_counts() -> None:
    policy = _policy()
    assert policy.record({"a": 4, "b": 9}, {}) == []
    due = policy.record({"a": 6, "b": 0}, {})
    assert due == [DueTrigger("a", "new_examples", 10, ())]
    assert policy.record({"a": 9}, {}) == []  # a starts again from 0
    assert policy.record({"b": 1}, {}) == [DueTrigger("b", "new_examples", 10, ())]


def test_label_flips_count_distinct_clusters_across_batches() -> None:
    policy = _policy(new=1000, flips=2)
    assert policy.record({}, {"a": ["c2"]}) == []
    assert policy.record({}, {"a": ["c2"]}) == []  # the same cluster flipping back counts once
    assert policy.record({"a": 3}, {"a": ["c1"]}) == [DueTrigger("a", "labels_changed", 3, ("c1", "c2"))]


def test_new_examples_win_when_both_thresholds_are_reached_and_apps_come_sorted() -> None:
    policy = _policy(new=2, flips=1)
    due = policy.record({"z": 1, "m": 5}, {"z": ["c9"], "m": ["c8"]})
    assert [(d.app, d.reason) for d in due] == [("m", "new_examples"), ("z", "labels_changed")]


def test_the_counts_survive_a_restart_through_their_json() -> None:
    policy = _policy()
    policy.record({"a": 4}, {"a": ["c1"]})
    saved = policy.to_json()
    assert saved == '{"a": {"flipped": ["c1"], "new": 4}}'
    again = _policy()
    again.restore(saved)
    assert again.to_json() == saved
    assert again.record({"a": 6}, {}) == policy.record({"a": 6}, {})
    again.restore("")
    assert again.to_json() == "{}"


def test_only_simple_clusters_records_of_their_dominant_function_are_new_examples() -> None:
    simple = _cluster(1, "a", "simple", "play")
    other = _cluster(2, "b", "simple", "stop")
    mixed = _cluster(3, "c", "complex", "play")
    counts = new_training_examples([
        (simple, [_event(0, "a", "play"), _event(1, "a", "stop"), _event(2, "a", None), _event(3, "a", "play")]),
        (other, [_event(4, "b", "play")]),
        (mixed, [_event(5, "c", "play")]),
    ])
    assert dict(counts) == {"a": 2, "b": 0}  # b's simple cluster was touched: counted, with 0
    assert flipped_by_app([simple, other, _cluster(4, "a", "undecided", None)]) == {
        "a": [cluster_key(1), cluster_key(4)], "b": [cluster_key(2)],
    }


def test_triggers_carry_the_apps_figures_and_manual_ones_the_stores(
    as_items: Callable[..., list], make_learner: MakeLearner, snips_events: list[FCLogEvent]
) -> None:
    learner = make_learner()
    learner.process_batch(as_items(snips_events[:300]))
    simple = [c for c in learner.clusters.values() if c.label == "simple"]
    assert simple
    t = retrain_trigger(learner, DueTrigger("snips", "labels_changed", 7, ("c1",)))
    assert (t.trigger_id, t.app, t.reason, t.new_examples, t.flipped_clusters) == (
        f"snips:{learner.store_version}", "snips", "labels_changed", 7, ["c1"],
    )
    assert t.simple_clusters == len(simple) and t.total_examples == sum(learner.training_examples(c) for c in simple)
    assert (t.store_version, t.embedder_id) == (learner.store_version, learner.embedder_id)

    summary = learner.summary()
    m = manual_trigger(learner, "snips")
    assert m.trigger_id.startswith("manual-") and len(m.trigger_id) == len("manual-") + 12
    assert (m.app, m.reason, m.new_examples, m.flipped_clusters) == ("snips", "manual", 0, [])
    assert (m.total_examples, m.simple_clusters) == (summary.training_examples, summary.simple)
    assert (m.store_version, m.embedder_id) == (learner.store_version, learner.embedder_id)
    assert m.created_at <= datetime.now(UTC)
    assert manual_trigger(learner, trigger_id="mine").trigger_id == "mine"
    assert manual_trigger(learner).app == "default"
