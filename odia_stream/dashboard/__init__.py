"""The dashboard's view-model: cluster-state, response and model-update records folded into what
the page shows (clusters, totals by label, coverage and latency over time, versions).

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
