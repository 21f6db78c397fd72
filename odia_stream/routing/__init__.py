"""The router: decide, in milliseconds, whether the small model may answer a request.

Stage 0 answers a query the learner knows (its records called one function consistently),
stage 1 matches the request against simple clusters (and NER templates) of its scope, stage 2
is a classifier on the query embedding and context features; thresholds are calibrated on
held-out records to a target precision, safety rules and per-cluster error budgets override
them all. A router runs from a versioned :class:`RouterSnapshot` built from the learner's state::

    info = publish_router(learner, settings, adapter_version="a1")   # where the learner runs
    router = open_router(settings, version=info.version)                # in the serving process
    decision = router.decide(request)        # route, function, score, reason, stage, timings
"""

from odia_stream.routing.builder import (
    LearnerState,
    build_snapshot,
    publish_router,
    router_builder,
    snapshot_root,
)
from odia_stream.routing.calibration import CurvePoint, Threshold, choose_threshold, precision_curve
from odia_stream.routing.classifier import COMPLEX, LinearRouteModel, TrainedClassifier
from odia_stream.routing.decision import SMALL_REASONS, Decision, Reason, Route, Stage
from odia_stream.routing.error_budget import BudgetState, ErrorBudget
from odia_stream.routing.evaluation import (
    RoutingEvaluation,
    evaluate_decisions,
    request_of,
    truly_simple_flags,
)
from odia_stream.routing.features import CONTEXT_FEATURES, context_features, has_reference_marker
from odia_stream.routing.lookup import ClusterLookup, ClusterMatch, IndexClusterLookup, MatrixClusterLookup
from odia_stream.routing.router import PreparedQuery, Router, index_lookup, open_router
from odia_stream.routing.safety import SafetyRules, ToolCatalog, schema_fingerprint
from odia_stream.routing.snapshot import (
    ProgramEntry,
    QueryEntry,
    RouterSnapshot,
    SnapshotError,
    SnapshotInfo,
    find_snapshot,
    list_snapshots,
    load_snapshot,
    write_snapshot,
)
from odia_stream.routing.template_tier import MISS_REASONS, TemplateAnswer, TemplateTier

__all__ = [
    "COMPLEX",
    "CONTEXT_FEATURES",
    "MISS_REASONS",
    "SMALL_REASONS",
    "BudgetState",
    "ClusterLookup",
    "ClusterMatch",
    "CurvePoint",
    "Decision",
    "ErrorBudget",
    "IndexClusterLookup",
    "LearnerState",
    "LinearRouteModel",
    "MatrixClusterLookup",
    "PreparedQuery",
    "ProgramEntry",
    "QueryEntry",
    "Reason",
    "Route",
    "Router",
    "RouterSnapshot",
    "RoutingEvaluation",
    "SafetyRules",
    "SnapshotError",
    "SnapshotInfo",
    "Stage",
    "TemplateAnswer",
    "TemplateTier",
    "Threshold",
    "ToolCatalog",
    "TrainedClassifier",
    "build_snapshot",
    "choose_threshold",
    "context_features",
    "evaluate_decisions",
    "find_snapshot",
    "has_reference_marker",
    "index_lookup",
    "list_snapshots",
    "load_snapshot",
    "open_router",
    "precision_curve",
    "publish_router",
    "request_of",
    "router_builder",
    "schema_fingerprint",
    "snapshot_root",
    "truly_simple_flags",
    "write_snapshot",
]
