"""The compacted ``cluster-state`` topic: ``ClusterState`` per cluster, and the ingest worker's
``IngestSummary`` (totals and audit) under ``INGEST_SUMMARY_KEY``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.common import WireModel, utc_now

#: ``simple``: one function dominates with enough support; ``complex``: none does;
#: ``undecided``: too little support to say either yet.
ClusterLabel = Literal["simple", "complex", "undecided"]


class TemplateProgram(WireModel):
    """A template's argument program: how its calls are assembled from the query's entity slots."""

    template: str
    function: str
    sources: dict[str, str] = Field(description="Argument -> source (slot:<type>[#n][/canonical] or const:<json>)")
    support: int = Field(ge=0, description="Answers of the large model counted for the template")
    agreement: int = Field(ge=0, description="Of those, calls the program reproduces exactly")
    lower_bound: float = Field(ge=0, le=1, description="Wilson lower bound of the agreement")
    live: bool = Field(description="Valid at the router's target precision and not a never-small function")
    reason: str = Field(default="", description="Why it is not live")
    pooled: bool = Field(default=False, description="Valid by its family's evidence rather than its own")
    family_templates: int = Field(
        default=0, ge=0, description="Templates of its family (same app, function, argument sources); 0: none"
    )
    family_support: int = Field(default=0, ge=0, description="Answers counted for the family's templates")
    family_agreement: int = Field(default=0, ge=0, description="Of those, calls their programs reproduce")
    family_lower_bound: float = Field(default=0, ge=0, le=1, description="Wilson lower bound of the family's agreement")


class ClusterState(WireModel):
    """What dashboards (and the router) know about a cluster; keyed by ``cluster_id``."""

    schema_version: Literal[1] = 1
    cluster_id: str
    app: str = "default"
    scope: str = Field(description="Context the cluster lives in (offered-tool set, previous call)")
    size: int = Field(ge=0, description="Records counted, including ones calling other functions")
    unique_queries: int = Field(ge=0)
    function_counts: dict[str, int] = Field(description="Records per called function ('<none>' = no call)")
    dominant_function: str | None
    dominant_share: float = Field(ge=0, le=1)
    share_lower_bound: float = Field(ge=0, le=1, description="Wilson lower bound of the dominant share")
    label: ClusterLabel
    training_examples: int = Field(ge=0, description="Examples usable for training (dominant function only)")
    templates: list[str] = Field(default_factory=list)
    template_programs: list[TemplateProgram] = Field(
        default_factory=list, description="Argument programs of the templates above (the template tier)"
    )
    sample_queries: list[str] = Field(default_factory=list)
    version: int = Field(ge=1, description="Increments on every change of this cluster")
    embedder_id: str
    merged_into: str | None = Field(default=None, description="Set when this cluster was merged into another")
    updated_at: datetime = Field(default_factory=utc_now)


#: The cluster-state topic's key for the ingest worker's summary (never a cluster id, which is
#: ``c`` + 16 hex digits). Consumers of the topic tell the two record kinds apart by this key.
INGEST_SUMMARY_KEY = "_ingest_summary"


class PartitionAuditRecord(WireModel):
    """What became of every record of one FC-log partition (``odia_stream.clustering.audit``)."""

    topic: str
    partition: int = Field(ge=0)
    first_offset: int = Field(ge=0, description="First offset audited")
    applied_offset: int = Field(ge=-1, description="Highest offset applied")
    counts: dict[str, int] = Field(
        description="Records per outcome: read, accepted, duplicate, replayed, dead_letter:<reason>, reused_offset"
    )
    unaccounted: int = Field(description="Offsets up to the applied one with no outcome (0 when it adds up)")
    adds_up: bool = Field(description="read = accepted + duplicate + replayed + dead letters, and unaccounted = 0")


class IngestSummary(WireModel):
    """The ingest learner's totals and its audit, on the cluster-state topic under
    :data:`INGEST_SUMMARY_KEY` (the latest one is what counts; with one ingest replica it covers
    every partition)."""

    schema_version: Literal[1] = 1
    events: int = Field(ge=0, description="Records counted in clusters")
    unique_queries: int = Field(ge=0)
    clusters: int = Field(ge=0)
    simple: int = Field(ge=0)
    complex: int = Field(ge=0)
    undecided: int = Field(ge=0)
    training_examples: int = Field(ge=0)
    entities: int = Field(ge=0, description="Entity values in the apps' dictionaries")
    store_version: int = Field(ge=0)
    audit: list[PartitionAuditRecord] = Field(description="Per FC-log partition")
    totals: dict[str, int] = Field(description="The partitions' counts summed")
    adds_up: bool = Field(description="Every partition's audit adds up")
    updated_at: datetime = Field(default_factory=utc_now)
