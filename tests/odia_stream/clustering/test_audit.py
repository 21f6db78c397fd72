"""The ingest audit kept by the learner (real embedder, real store, no Kafka): every input gets
one outcome, the counts survive a restart, and new data at reused offsets is applied, not taken
for a replay."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from odia_stream.clustering import OnlineClusterLearner, SourcedItem
from odia_stream.clustering.audit import Rejected, audit_totals
from schemas import FCLogEvent

MakeLearner = Callable[..., OnlineClusterLearner]


def _rejected(offset: int, reason: str = "not_json", raw: bytes = b"{oops") -> SourcedItem[Rejected]:
    return SourcedItem("fc", 0, offset, Rejected.of(reason, raw))


def test_every_input_has_one_outcome_and_the_audit_survives_a_restart(
    as_items: Callable[..., list], make_learner: MakeLearner, snips_events: list[FCLogEvent]
) -> None:
    learner = make_learner()
    events = snips_events[:120]
    items = as_items(events)
    # offsets 0-119 events, 120-121 rejected values, then 3 events sent again at new offsets
    learner.process(items[:60])
    learner.process(items[60:], [_rejected(120), _rejected(121, "empty_query", b'{"query": ""}')])
    learner.process(as_items(events[:3], start=122))
    (audit,) = learner.audit()
    c = audit.counts
    assert (c["read"], c["accepted"], c["duplicate"], c["replayed"]) == (125, 120, 3, 0)
    assert audit.dead_letters == {"empty_query": 1, "not_json": 1}
    assert (audit.first_offset, audit.applied, audit.unaccounted) == (0, 124, 0) and audit.adds_up
    assert learner.audit() == learner.db.audit()  # the in-memory copy (for metrics) is the stored one

    learner.close()
    again = make_learner()  # a restarted worker re-reads from an older committed offset
    again.process(items[100:], [_rejected(120), _rejected(121, "empty_query", b'{"query": ""}')])
    assert not again.was_dead_lettered("fc", 0, 125, Rejected.of("not_json", b"{oops").sha256)
    assert again.was_dead_lettered("fc", 0, 120, Rejected.of("not_json", b"{oops").sha256)
    (audit,) = again.audit()
    assert audit.counts["replayed"] == 22 and audit.counts["accepted"] == 120
    assert audit.dead_letters == {"empty_query": 1, "not_json": 1} and audit.adds_up
    assert audit_totals([audit])["read"] == 147
    again.close()
    fresh = make_learner("fresh")  # the same batches without the restart: the same learned state
    fresh.process(items[:60])
    fresh.process(items[60:], [_rejected(120), _rejected(121, "empty_query", b'{"query": ""}')])
    fresh.process(as_items(events[:3], start=122))
    assert fresh.db.fingerprint() == make_learner().db.fingerprint()


def test_new_events_at_reused_offsets_are_applied_not_skipped(
    as_items: Callable[..., list], make_learner: MakeLearner, snips_events: list[FCLogEvent]
) -> None:
    """A broker that lost its last records (or a recreated topic) hands out offsets again: the
    events behind them are new (ids never applied) and must be learned, and counted as such."""
    learner = make_learner()
    learner.process(as_items(snips_events[:200]))
    before = learner.summary().events
    reused = as_items(snips_events[200:260], start=140)  # offsets 140-199 again, new events
    outcome = learner.process(reused, [_rejected(200, raw=b"new garbage")])
    assert outcome.counts["accepted"] == 60 and outcome.counts["reused_offsets"] == 60
    assert outcome.counts["replayed"] == 0 and outcome.counts["dead_lettered"] == 1
    assert learner.summary().events == before + 60
    (audit,) = learner.audit()
    assert audit.counts["reused_offset"] == 60 and audit.applied == 200
    assert audit.unaccounted == 0 and audit.adds_up and learner.audit() == learner.db.audit()
    # The same reused offsets read again are replays now.
    again = learner.process(reused, [_rejected(200, raw=b"new garbage")])
    assert again.counts["accepted"] == 0 and again.counts["replayed"] == 61


def test_a_gap_in_the_offsets_shows_as_unaccounted_and_is_logged(
    as_items: Callable[..., list], make_learner: MakeLearner, snips_events: list[FCLogEvent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    learner = make_learner()
    with caplog.at_level(logging.WARNING, logger="odia.learner"):
        learner.process(as_items(snips_events[:50]))
        assert not caplog.records
        learner.process(as_items(snips_events[50:60], start=55))  # offsets 50-54 never reached the learner
    (audit,) = learner.audit()
    assert audit.unaccounted == 5 and not audit.adds_up
    assert audit.outcomes == audit.counts["read"] == 60
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith("offsets never read: fc/0: 5 (") and "unaccounted" in warning
