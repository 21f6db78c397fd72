"""The dashboard's state: raw records of three topics folded into one view."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import ValidationError

from odia_stream.dashboard.clusters import LatestClusterStates
from odia_stream.dashboard.traffic import TrafficSeries
from odia_stream.dashboard.versions import VersionBoard
from odia_stream.dashboard.view import DashboardView, IngestAuditView, StreamStats
from odia_stream.settings import DashboardSettings
from schemas import INGEST_SUMMARY_KEY, ClusterState, IngestSummary, ServeResponse, parse_serving_update

#: Which topic a record came from.
RecordKind = Literal["cluster_state", "response", "model_update"]
RECORD_KINDS: tuple[RecordKind, ...] = get_args(RecordKind)


class InvalidRecord(ValueError):
    """A record the dashboard cannot read (not a valid value of its topic, or a bad key)."""


def _key_text(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRecord(f"key is not UTF-8: {key[:40]!r}") from exc


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "value"
        return f"{exc.error_count()} validation error(s), first at {where}: {first.get('msg', '')}"
    return str(exc)


class DashboardState:
    """Cluster table, traffic series and versions, fed one raw Kafka record at a time.

    Not thread-safe: the adapter that reads Kafka and serves the page holds a lock around
    :meth:`apply` and :meth:`view`. Unreadable records are counted (``stream.invalid``, with the
    last reason), never raised out of :meth:`apply`, so one bad producer cannot stop the page.
    """

    def __init__(self, settings: DashboardSettings) -> None:
        self.settings = settings
        self.clusters = LatestClusterStates()
        self.traffic = TrafficSeries(settings.bucket_s, settings.max_buckets)
        self.versions = VersionBoard()
        self.records: dict[str, int] = dict.fromkeys(RECORD_KINDS, 0)
        self.invalid = 0
        self.last_error: str | None = None
        #: The ingest worker's audit (its latest summary on the cluster-state topic).
        self.ingest: IngestAuditView | None = None
        #: Increments with every record applied, so a view can be cached per revision.
        self.revision = 0

    def apply(self, kind: RecordKind, key: bytes | None, value: bytes | None) -> bool:
        """Fold one record of the ``kind`` topic; returns False (and counts it) when unreadable."""
        if kind not in RECORD_KINDS:
            raise ValueError(f"unknown record kind {kind!r}; expected one of {RECORD_KINDS}")
        self.revision += 1
        self.records[kind] += 1
        try:
            self._apply(kind, _key_text(key), value)
        except (InvalidRecord, ValidationError, ValueError) as exc:
            self.invalid += 1
            self.last_error = f"{kind}: {_reason(exc)}"
            return False
        return True

    def _apply(self, kind: RecordKind, key: str | None, value: bytes | None) -> None:
        if kind == "response":
            if value is None:
                raise InvalidRecord("response without a value")
            response = ServeResponse.model_validate_json(value)
            self.traffic.apply(response)
            self.versions.apply_response(response)
            return
        if value is None:
            if key is None:
                raise InvalidRecord("tombstone without a key")
            if kind == "cluster_state" and key == INGEST_SUMMARY_KEY:
                self.ingest = None
            elif kind == "cluster_state":
                self.clusters.apply(key, None)
            else:
                self.versions.apply_update(key, None)
            return
        if kind == "cluster_state" and key == INGEST_SUMMARY_KEY:
            self.ingest = IngestAuditView.of_summary(IngestSummary.model_validate_json(value))
        elif kind == "cluster_state":
            state = ClusterState.model_validate_json(value)
            self.clusters.apply(key if key is not None else state.cluster_id, state)
        else:
            update = parse_serving_update(value)
            self.versions.apply_update(key if key is not None else update.generator, update)

    def view(self, max_clusters: int | None = None) -> DashboardView:
        """The page's document: the largest ``max_clusters`` clusters (settings' by default)."""
        limit = self.settings.max_clusters if max_clusters is None else max_clusters
        return DashboardView(
            revision=self.revision,
            refresh_s=self.settings.refresh_s,
            clusters=self.clusters.rows(limit),
            clusters_live=len(self.clusters) - self.clusters.merged,
            clusters_merged=self.clusters.merged,
            totals=self.clusters.totals(),
            traffic=self.traffic.view(),
            promoted=self.versions.promoted(),
            serving=self.versions.serving,
            stream=StreamStats(records=dict(self.records), invalid=self.invalid, last_error=self.last_error),
            ingest=self.ingest,
        )
