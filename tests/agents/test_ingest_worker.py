"""The ingest worker end to end: real broker, the worker in its own process, real embedder and
store, real datasets. Slow by nature (each worker start loads the embedder)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest

from kafka_runtime.topics import ensure_topics
from odia.replay_producer import ReplayProducer
from odia.runner import WorkerProcess, group_lag, wait_caught_up
from odia_stream.clustering.audit import audit_totals
from odia_stream.clustering.factory import open_learner
from odia_stream.settings import OdiaSettings
from schemas import INGEST_SUMMARY_KEY, ClusterState, DeadLetter, FCLogEvent, IngestSummary

pytestmark = pytest.mark.slow

MALFORMED: list[bytes | None] = [
    b"not json at all",
    b"\xff\xfe binary",
    b'{"event_id": "bad-1", "query": "   ", "tools": []}',
    b'{"event_id": "bad-2", "query": "pay", "tools": [], "call": {"name": "transfer_money"}}',
    b'{"event_id": "bad-3"}',
    None,
]


def run_worker_to_completion(settings: OdiaSettings, name: str) -> None:
    worker = WorkerProcess(settings, settings.state_dir / f"{name}.log")
    worker.start()
    try:
        wait_caught_up(settings, worker, timeout_s=600)
    finally:
        rc = worker.stop()
    assert rc == 0, worker.log_tail()


def test_ingest_end_to_end_with_dead_letters_and_idempotent_replay(
    read_topic: Callable[..., list],
    make_settings: Callable[..., OdiaSettings],
    snips_events: list[FCLogEvent],
    hammerbench_events: list[FCLogEvent],
) -> None:
    settings = make_settings(scope="app", batch_timeout_s=1.0)
    ensure_topics(settings.kafka, settings.topics.all())
    valid = snips_events + hammerbench_events[:1200]
    with ReplayProducer(settings.kafka, settings.topics.fc_logs.name) as producer:
        assert producer.publish(valid).ok
        assert producer.publish_raw(MALFORMED).ok
    run_worker_to_completion(settings, "first")

    learner = open_learner(settings)
    snapshot = learner.snapshot()
    summary = learner.summary()
    audit = learner.audit()
    learner.close()
    # Every input is accounted for: accepted into the store, or in the DLQ with a reason.
    letters = [DeadLetter.model_validate_json(v) for _, v in read_topic(settings.kafka.bootstrap_servers, settings.topics.dead_letters.name)]
    assert summary.events == len(valid)
    assert len(letters) == len(MALFORMED)
    assert Counter(d.reason_code for d in letters) == Counter(
        {"not_json": 1, "not_utf8": 1, "empty_query": 1, "unknown_function": 1, "schema": 2}
    )
    assert {d.raw() for d in letters} == {m or b"" for m in MALFORMED}
    assert all(d.reason and d.source_topic == settings.topics.fc_logs.name for d in letters)
    # ... and the audit adds up: one outcome per record, every offset accounted for.
    assert all(a.adds_up for a in audit), audit
    totals = audit_totals(audit)
    assert totals["read"] == totals["accepted"] + sum(
        n for k, n in totals.items() if k.startswith("dead_letter:")
    ) == len(valid) + len(MALFORMED)
    assert {k.removeprefix("dead_letter:"): n for k, n in totals.items() if k.startswith("dead_letter:")} == Counter(
        d.reason_code for d in letters
    )

    # The cluster-state topic carries the latest state of every cluster, and the worker's summary:
    # its last one (published on shutdown) has the learner's totals and the audit, adding up.
    latest: dict[str, ClusterState] = {}
    summaries: list[IngestSummary] = []
    for key, value in read_topic(settings.kafka.bootstrap_servers, settings.topics.cluster_state.name):
        if key == INGEST_SUMMARY_KEY.encode():
            summaries.append(IngestSummary.model_validate_json(value))
            continue
        state = ClusterState.model_validate_json(value)
        assert key == state.cluster_id.encode()
        if state.cluster_id not in latest or latest[state.cluster_id].version <= state.version:
            latest[state.cluster_id] = state
    assert len(latest) == summary.clusters
    assert summaries, "no IngestSummary on the cluster-state topic"
    last = summaries[-1]
    assert last.adds_up and last.totals == dict(totals) and last.events == summary.events
    assert last.clusters == summary.clusters and [a.partition for a in last.audit] == [a.partition for a in audit]
    snips_simple = [s for s in latest.values() if s.app == "snips" and s.label == "simple"]
    assert len({s.dominant_function for s in snips_simple}) >= 5
    in_simple = sum(s.size for s in snips_simple)
    assert in_simple > len(snips_events) / 2
    assert sum(s.function_counts[s.dominant_function] for s in snips_simple) / in_simple >= 0.97  # type: ignore[index]
    # Query-only scope ("app"): context-dependent follow-ups pool across functions and are not all simple.
    hb_decided = [s for s in latest.values() if s.app == "hammerbench" and s.label != "undecided"]
    assert hb_decided and any(s.label == "complex" for s in hb_decided)

    # Replaying the same events (new offsets, same event ids) changes nothing.
    with ReplayProducer(settings.kafka, settings.topics.fc_logs.name) as producer:
        assert producer.publish(valid).ok
    run_worker_to_completion(settings, "replay")
    learner = open_learner(settings)
    try:
        assert learner.snapshot() == snapshot
        totals = audit_totals(learner.audit())
        assert totals["duplicate"] == len(valid) and all(a.adds_up for a in learner.audit())
    finally:
        learner.close()


def test_killed_worker_recovers_to_the_uninterrupted_state(
    make_settings: Callable[..., OdiaSettings], snips_events: list[FCLogEvent], hammerbench_events: list[FCLogEvent]
) -> None:
    crashed = make_settings()
    ensure_topics(crashed.kafka, crashed.topics.all())
    events = snips_events + hammerbench_events[:600]
    with ReplayProducer(crashed.kafka, crashed.topics.fc_logs.name) as producer:
        assert producer.publish(events).ok

    worker = WorkerProcess(crashed, crashed.state_dir / "crash.log")
    worker.start()
    deadline = time.monotonic() + 300
    while True:  # kill it once it has committed some, but not all, of the stream
        done, lag = group_lag(crashed.kafka, crashed.app_id, crashed.topics.fc_logs.name)
        if done > 0 and lag > 0:
            break
        assert lag > 0, "the worker finished before it could be killed; replay more events"
        assert worker.alive() and time.monotonic() < deadline, worker.log_tail()
        time.sleep(0.2)
    worker.kill()
    run_worker_to_completion(crashed, "resumed")

    # The same topic, consumed by an uninterrupted worker with its own group and state.
    whole = make_settings().model_copy(update={"topics": crashed.topics})
    run_worker_to_completion(whole, "whole")

    a, b = open_learner(crashed), open_learner(whole)
    try:
        assert a.summary().events == len(events)
        assert a.snapshot() == b.snapshot()
        # The kill cost nothing in the audit: one outcome per record, re-reads counted as replays.
        assert all(x.adds_up for x in a.audit()) and audit_totals(a.audit())["accepted"] == len(events)
        assert audit_totals(b.audit())["replayed"] == 0
    finally:
        a.close()
        b.close()
