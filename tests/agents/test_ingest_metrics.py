"""The ingest worker's Prometheus metrics: the learner's audit, read at scrape time."""

from __future__ import annotations

import socket
from collections import Counter
from urllib.request import urlopen

from agents.metrics import start_ingest_metrics
from odia_stream.clustering.audit import PartitionAudit
from odia_stream.settings import IngestSettings, OdiaSettings


def _audit() -> list[PartitionAudit]:
    return [
        PartitionAudit("fc", 0, 0, 9, Counter(read=12, accepted=7, duplicate=1, replayed=2, **{"dead_letter:not_json": 2})),
        PartitionAudit("fc", 1, 0, 4, Counter(read=3, accepted=3)),  # offsets 3 and 4 never seen
    ]


def test_the_audit_is_exposed_per_partition_and_outcome() -> None:
    registry, server = start_ingest_metrics(OdiaSettings(ingest=IngestSettings(metrics_port=None)), _audit)
    assert server is None
    value = registry.get_sample_value
    assert value("odia_ingest_records_total", {"topic": "fc", "partition": "0", "outcome": "accepted"}) == 7
    assert value("odia_ingest_records_total", {"topic": "fc", "partition": "0", "outcome": "dead_letter:not_json"}) == 2
    assert value("odia_ingest_unaccounted_offsets", {"topic": "fc", "partition": "0"}) == 0
    assert value("odia_ingest_unaccounted_offsets", {"topic": "fc", "partition": "1"}) == 2
    assert value("odia_ingest_applied_offset", {"topic": "fc", "partition": "1"}) == 4
    assert value("odia_ingest_offset_resets_total", {"topic": "fc", "partition": "0"}) is None
    assert value("odia_ingest_dead_letters_blocked") == 0


def test_out_of_range_fetches_and_a_blocked_dead_letter_queue_are_exposed() -> None:
    blocked = [True]
    registry, _ = start_ingest_metrics(
        OdiaSettings(ingest=IngestSettings(metrics_port=None)), _audit, lambda: {("fc", 1): 2}, lambda: blocked[0]
    )
    assert registry.get_sample_value("odia_ingest_offset_resets_total", {"topic": "fc", "partition": "1"}) == 2
    assert registry.get_sample_value("odia_ingest_dead_letters_blocked") == 1
    blocked[0] = False
    assert registry.get_sample_value("odia_ingest_dead_letters_blocked") == 0


def test_served_over_http_and_a_taken_port_does_not_stop_the_worker() -> None:
    _, server = start_ingest_metrics(OdiaSettings(ingest=IngestSettings(metrics_port=0)), _audit)
    assert server is not None
    try:
        port = server.server_port
        body = urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'odia_ingest_records_total{outcome="replayed",partition="0",topic="fc"} 2.0' in body
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            busy = taken.getsockname()[1]
            _, none = start_ingest_metrics(OdiaSettings(ingest=IngestSettings(metrics_port=busy)), _audit)
            assert none is None
    finally:
        server.shutdown()
