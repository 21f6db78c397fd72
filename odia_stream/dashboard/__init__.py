"""The dashboard's view-model: cluster-state, response and model-update records folded into what
the page shows (clusters, totals by label, coverage and latency over time, versions, the ingest
audit).

Pure and Kafka-free; ``odia/dashboard_server.py`` reads the topics and serves the page.
"""

from odia_stream.dashboard.assets import STATIC_FILES, read_static
from odia_stream.dashboard.clusters import LatestClusterStates
from odia_stream.dashboard.state import RECORD_KINDS, DashboardState, InvalidRecord, RecordKind
from odia_stream.dashboard.traffic import TrafficSeries
from odia_stream.dashboard.versions import VersionBoard
from odia_stream.dashboard.view import (
    ClusterRow,
    DashboardView,
    IngestAuditView,
    LabelTotal,
    PromotedModel,
    ServingVersions,
    StreamStats,
    TrafficPoint,
    TrafficView,
)

__all__ = [
    "RECORD_KINDS",
    "STATIC_FILES",
    "ClusterRow",
    "DashboardState",
    "DashboardView",
    "IngestAuditView",
    "InvalidRecord",
    "LabelTotal",
    "LatestClusterStates",
    "PromotedModel",
    "RecordKind",
    "ServingVersions",
    "StreamStats",
    "TrafficPoint",
    "TrafficSeries",
    "TrafficView",
    "VersionBoard",
    "read_static",
]
