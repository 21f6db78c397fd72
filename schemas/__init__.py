"""Wire contract of odia-stream: one pydantic v2 model per topic value.

Every model carries ``schema_version``; the wire format is the model's JSON. JSON Schema
files exported from these models live in ``schemas/json/`` (``python -m schemas.export``).
This package imports neither Kafka, torch nor Qdrant.
"""

from schemas.cluster_state import (
    INGEST_SUMMARY_KEY,
    ClusterLabel,
    ClusterState,
    IngestSummary,
    PartitionAuditRecord,
    TemplateProgram,
)
from schemas.common import SCHEMA_VERSION, ChatMessage, FunctionCall, FunctionSpec, ToolCall, ToolSpec
from schemas.dead_letter import DeadLetter
from schemas.fc_log import FCLogEvent
from schemas.model_update import (
    AdapterIdentity,
    ModelUpdate,
    RouterUpdate,
    ServingUpdate,
    parse_serving_update,
)
from schemas.retrain_trigger import RetrainTrigger, TriggerReason
from schemas.serving import LatencyBreakdown, ServedBy, ServeRequest, ServeResponse

__all__ = [
    "INGEST_SUMMARY_KEY",
    "SCHEMA_VERSION",
    "AdapterIdentity",
    "ChatMessage",
    "ClusterLabel",
    "ClusterState",
    "DeadLetter",
    "FCLogEvent",
    "FunctionCall",
    "FunctionSpec",
    "IngestSummary",
    "LatencyBreakdown",
    "ModelUpdate",
    "PartitionAuditRecord",
    "RetrainTrigger",
    "RouterUpdate",
    "ServeRequest",
    "ServeResponse",
    "ServedBy",
    "ServingUpdate",
    "TemplateProgram",
    "ToolCall",
    "ToolSpec",
    "TriggerReason",
    "parse_serving_update",
]

#: Every topic value model, by the name its JSON Schema file carries.
TOPIC_MODELS = {
    "FCLogEvent": FCLogEvent,
    "DeadLetter": DeadLetter,
    "ClusterState": ClusterState,
    "IngestSummary": IngestSummary,
    "RetrainTrigger": RetrainTrigger,
    "ModelUpdate": ModelUpdate,
    "RouterUpdate": RouterUpdate,
    "ServeRequest": ServeRequest,
    "ServeResponse": ServeResponse,
}
