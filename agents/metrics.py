"""Prometheus metrics of the ingest worker: the learner's audit, read at scrape time.

* ``odia_ingest_records_total{topic, partition, outcome}``: records per audited outcome
  (``read``, ``accepted``, ``duplicate``, ``replayed``, ``dead_letter:<reason>``, ``reused_offset``;
  :mod:`odia_stream.clustering.audit`);
* ``odia_ingest_unaccounted_offsets{topic, partition}``: offsets up to the applied one with no
  outcome (0 when the audit adds up);
* ``odia_ingest_applied_offset{topic, partition}``: the highest offset applied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from odia_stream.clustering.audit import PartitionAudit
from odia_stream.settings import OdiaSettings

__all__ = ["AuditCollector", "start_ingest_metrics"]

log = logging.getLogger("odia.agents.metrics")


class AuditCollector(Collector):
    """Exposes the audit that ``read_audit`` returns (the learner's copy as of its last batch)."""

    def __init__(self, read_audit: Callable[[], list[PartitionAudit]]) -> None:
        self.read_audit = read_audit

    def collect(self) -> Iterator[Any]:
        records = CounterMetricFamily(
            "odia_ingest_records", "FC-log records per audited outcome", labels=["topic", "partition", "outcome"]
        )
        unaccounted = GaugeMetricFamily(
            "odia_ingest_unaccounted_offsets", "Offsets up to the applied one with no outcome",
            labels=["topic", "partition"],
        )
        applied = GaugeMetricFamily(
            "odia_ingest_applied_offset", "Highest offset applied", labels=["topic", "partition"]
        )
        for a in self.read_audit():
            where = [a.topic, str(a.partition)]
            for outcome, n in sorted(a.counts.items()):
                records.add_metric([*where, outcome], n)
            unaccounted.add_metric(where, a.unaccounted)
            applied.add_metric(where, a.applied)
        yield from (records, unaccounted, applied)


def start_ingest_metrics(
    settings: OdiaSettings, read_audit: Callable[[], list[PartitionAudit]]
) -> tuple[CollectorRegistry, Any | None]:
    """A registry with the audit collector, served on ``ingest.metrics_host:metrics_port`` when a
    port is set and free (else logged, and the worker runs without the server)."""
    registry = CollectorRegistry()
    registry.register(AuditCollector(read_audit))
    s = settings.ingest
    if s.metrics_port is None:
        return registry, None
    from prometheus_client import start_http_server

    try:
        server, _ = start_http_server(s.metrics_port, addr=s.metrics_host, registry=registry)
    except OSError as exc:
        log.warning("ingest metrics not served on %s:%d: %s", s.metrics_host, s.metrics_port, exc)
        return registry, None
    log.info("ingest metrics on http://%s:%d/metrics", s.metrics_host, server.server_port)
    return registry, server
