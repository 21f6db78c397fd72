"""The dashboard state fed raw records: real learner output on SNIPS, bad records, the view."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import pytest

from odia_stream.clustering.audit import PartitionAudit, ingest_summary
from odia_stream.clustering.views import LearnerSummary
from odia_stream.dashboard import DashboardState, DashboardView
from odia_stream.settings import DashboardSettings
from schemas import INGEST_SUMMARY_KEY, ClusterState, FCLogEvent, IngestSummary, ModelUpdate, ServeResponse
from tests.learner_support import LearnerOutput


def _bytes(model: ClusterState | ServeResponse | ModelUpdate) -> bytes:
    return model.model_dump_json().encode()


def test_real_learner_states_fold_to_the_learners_final_clusters(
    snips_learner_output: LearnerOutput, snips_events: list[FCLogEvent]
) -> None:
    published, final, summary = snips_learner_output.published, snips_learner_output.final, snips_learner_output.summary
    events = snips_events[:600]
    assert len(published) > len(final), "some clusters must be published more than once for this test to mean anything"

    state = DashboardState(DashboardSettings(max_clusters=10))
    for s in published:
        assert state.apply("cluster_state", s.cluster_id.encode(), _bytes(s))
    assert state.view().ingest is None
    # The ingest worker's summary shares the topic under its own key: it is the audit, not a cluster.
    assert state.apply("cluster_state", INGEST_SUMMARY_KEY.encode(), summary.model_dump_json().encode())
    view = state.view()
    assert view.ingest is not None and view.ingest.adds_up and view.ingest.unaccounted == 0
    assert (view.ingest.read, view.ingest.accepted, view.ingest.dead_letters) == (len(events), len(events), 0)
    assert view.clusters_live == len(final) and view.clusters_merged == 0
    assert view.stream.records["cluster_state"] == len(published) + 1 and view.stream.invalid == 0
    largest = sorted(final.values(), key=lambda s: (-s.size, s.cluster_id))[:10]
    assert [r.cluster_id for r in view.clusters] == [s.cluster_id for s in largest]
    for row, want in zip(view.clusters, largest, strict=True):
        assert (row.size, row.label, row.dominant_function, row.sample_queries, row.templates) == (
            want.size, want.label, want.dominant_function, want.sample_queries, want.templates
        )
    by_label = Counter(s.label for s in final.values())
    records = Counter()
    for s in final.values():
        records[s.label] += s.size
    assert {t.label: (t.clusters, t.records) for t in view.totals} == {
        label: (by_label[label], records[label]) for label in ("simple", "complex", "undecided")
    }
    assert sum(t.records for t in view.totals) == len(events)
    # SNIPS intents are simple clusters dominated by their intent.
    top = view.clusters[0]
    assert top.label == "simple" and top.dominant_function in {e.call.name for e in events if e.call}


def test_bad_records_are_counted_not_raised(make_state: Callable[..., ClusterState]) -> None:
    state = DashboardState(DashboardSettings())
    good = make_state("c1", size=4)
    assert state.apply("cluster_state", b"c1", _bytes(good))
    assert not state.apply("cluster_state", b"c2", b"{not json")
    assert state.last_error is not None and state.last_error.startswith("cluster_state:")
    assert not state.apply("cluster_state", b"c9", _bytes(make_state("c3")))  # key differs from the id
    assert not state.apply("cluster_state", b"\xff\xfe", _bytes(good))  # key not UTF-8
    assert not state.apply("model_update", None, None)  # tombstone without a key
    assert not state.apply("response", b"r1", None)
    bad_schema = json.loads(_bytes(good))
    bad_schema["size"] = -1
    assert not state.apply("cluster_state", b"c1", json.dumps(bad_schema).encode())
    assert "size" in (state.last_error or "")
    view = state.view()
    assert view.stream.invalid == 6 and view.stream.records == {"cluster_state": 5, "response": 1, "model_update": 1}
    assert [r.cluster_id for r in view.clusters] == ["c1"] and view.clusters[0].size == 4
    with pytest.raises(ValueError, match="unknown record kind"):
        state.apply("fc_logs", b"k", b"{}")  # type: ignore[arg-type]


def test_view_combines_all_three_topics_and_round_trips_as_json(
    make_state: Callable[..., ClusterState],
    make_response: Callable[..., ServeResponse],
    make_update: Callable[..., ModelUpdate],
    at: Callable[[float], object],
) -> None:
    state = DashboardState(DashboardSettings(bucket_s=60, max_clusters=1, refresh_s=0.5))
    state.apply("cluster_state", None, _bytes(make_state("c1", size=3)))  # no key: the id is the key
    state.apply("cluster_state", b"c2", _bytes(make_state("c2", size=8, label="complex", dominant=None)))
    state.apply("model_update", b"small", _bytes(make_update("small", "v7", router_version="r7")))
    state.apply("response", b"q1", _bytes(make_response("q1", "small", 90, at(0), "v7", "r7")))
    state.apply("response", b"q2", _bytes(make_response("q2", "large", 1500, at(70), None, "r7")))
    revision = state.revision
    view = DashboardView.model_validate_json(state.view().model_dump_json())
    assert view.revision == revision == 5 and view.refresh_s == 0.5
    assert [r.cluster_id for r in view.clusters] == ["c2"] and view.clusters_live == 2
    assert [(p.generator, p.version, p.router_version) for p in view.promoted] == [("small", "v7", "r7")]
    assert view.serving is not None and (view.serving.adapter_version, view.serving.router_version) == ("v7", "r7")
    assert [(p.requests, p.coverage) for p in view.traffic.points] == [(1, 1.0), (1, 0.0)]
    assert state.view(max_clusters=5).clusters[-1].cluster_id == "c1"
    state.apply("cluster_state", b"c2", None)
    assert [r.cluster_id for r in state.view().clusters] == ["c1"] and state.revision == revision + 1


def test_an_audit_that_does_not_add_up_shows_its_gap_and_a_tombstone_clears_it() -> None:
    audit = PartitionAudit("fc", 0, first_offset=0, applied=99, counts=Counter(
        read=95, accepted=90, replayed=2, **{"dead_letter:not_json": 2, "dead_letter:schema": 1}
    ))
    summary = ingest_summary(LearnerSummary(90, 80, 12, 9, 2, 1, 60, 5, 4), [audit])
    assert not summary.adds_up and summary.audit[0].unaccounted == 7
    state = DashboardState(DashboardSettings())
    assert state.apply("cluster_state", INGEST_SUMMARY_KEY.encode(), summary.model_dump_json().encode())
    ingest = state.view().ingest
    assert ingest is not None and not ingest.adds_up
    assert (ingest.read, ingest.dead_letters, ingest.replayed, ingest.unaccounted) == (95, 3, 2, 7)
    assert state.view().clusters_live == 0  # not taken for a cluster
    # A summary that is not one is unreadable (counted), and a tombstone removes the summary.
    assert not state.apply("cluster_state", INGEST_SUMMARY_KEY.encode(), b'{"events": -1}')
    assert state.view().stream.invalid == 1 and state.view().ingest == ingest
    assert state.apply("cluster_state", INGEST_SUMMARY_KEY.encode(), None)
    assert state.view().ingest is None
    assert IngestSummary.model_validate_json(summary.model_dump_json()) == summary
