"""Prometheus metrics of the ingest worker: the learner's audit, read at scrape time.

* ``odia_ingest_records_total{topic, partition, outcome}``: records per audited outcome
  (``read``, ``accepted``, ``duplicate``, ``replayed``, ``dead_letter:<reason>``, ``reused_offset``;
  :mod:`odia_stream.clustering.audit`);
* ``odia_ingest_unaccounted_offsets{topic, partition}``: offsets up to the applied one with no
  outcome (0 when the audit adds up);
* ``odia_ingest_applied_offset{topic, partition}``: the highest offset applied;
* ``odia_ingest_offset_resets_total{topic, partition}``: out-of-range fetches the consumer reset
  from (:mod:`agents.offset_resets`);
* ``odia_ingest_dead_letters_blocked``: 1 while a dead letter cannot be sent and reading waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from odia_stream.clustering.audit import PartitionAudit
from odia_stream.http_auth import serve_metrics
from odia_stream.settings import OdiaSettings

__all__ = ["AuditCollector", "start_ingest_metrics"]

log = logging.getLogger("odia.agents.metrics")


#: Out-of-range fetches per (topic, partition), as :meth:`OutOfRangeAlarm.resets` returns them.
ReadResets = Callable[[], Mapping[tuple[str, int], int]]


class AuditCollector(Collector):
    """Exposes the audit that ``read_audit`` returns (the learner's copy as of its last batch) and
    the out-of-range fetches that ``read_resets`` returns."""

    def __init__(
        self,
        read_audit: Callable[[], list[PartitionAudit]],
        read_resets: ReadResets = dict,
        read_blocked: Callable[[], bool] = lambda: False,
    ) -> None:
        self.read_audit = read_audit
        self.read_resets = read_resets
        self.read_blocked = read_blocked

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
        resets = CounterMetricFamily(
            "odia_ingest_offset_resets", "Out-of-range fetches the consumer reset from", labels=["topic", "partition"]
        )
        for a in self.read_audit():
            where = [a.topic, str(a.partition)]
            for outcome, n in sorted(a.counts.items()):
                records.add_metric([*where, outcome], n)
            unaccounted.add_metric(where, a.unaccounted)
            applied.add_metric(where, a.applied)
        for (topic, partition), n in sorted(self.read_resets().items()):
            resets.add_metric([topic, str(partition)], n)
        blocked = GaugeMetricFamily(
            "odia_ingest_dead_letters_blocked", "1 while a dead letter cannot be sent and reading waits",
            value=float(self.read_blocked()),
        )
        yield from (records, unaccounted, applied, resets, blocked)


def start_ingest_metrics(
    settings: OdiaSettings,
    read_audit: Callable[[], list[PartitionAudit]],
    read_resets: ReadResets = dict,
    read_blocked: Callable[[], bool] = lambda: False,
) -> tuple[CollectorRegistry, Any | None]:
    """A registry with the audit collector, served on ``ingest.metrics_host:metrics_port`` when a
    port is set and free (else logged, and the worker runs without the server), behind
    ``ingest.metrics_token`` (required off loopback: ``ValueError`` without one)."""
    registry = CollectorRegistry()
    registry.register(AuditCollector(read_audit, read_resets, read_blocked))
    s = settings.ingest
    if s.metrics_port is None:
        return registry, None
    try:
        server = serve_metrics(registry, s.metrics_host, s.metrics_port, s.metrics_token, "ODIA_INGEST__METRICS_TOKEN")
    except OSError as exc:
        log.warning("ingest metrics not served on %s:%d: %s", s.metrics_host, s.metrics_port, exc)
        return registry, None
    log.info("ingest metrics on http://%s:%d/metrics", s.metrics_host, server.server_port)
    return registry, server
