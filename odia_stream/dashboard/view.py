"""What the dashboard page receives: one JSON document (``DashboardView``) per poll."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from odia_stream.clustering.audit import ACCEPTED, DEAD_LETTER, DUPLICATE, READ, REPLAYED, REUSED_OFFSET
from schemas import ClusterLabel, IngestSummary


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)

    @classmethod
    def of(cls, record: BaseModel) -> Self:
        """The view of a wire record: the fields the view shares with it, copied."""
        return cls.model_validate(record.model_dump(include=set(cls.model_fields)))


class ClusterRow(_View):
    """One live cluster as the page lists it (the latest ``ClusterState`` of its key)."""

    cluster_id: str
    app: str
    scope: str
    size: int
    unique_queries: int
    label: ClusterLabel
    dominant_function: str | None
    dominant_share: float
    share_lower_bound: float
    training_examples: int
    templates: list[str]
    sample_queries: list[str]
    version: int
    updated_at: datetime


class LabelTotal(_View):
    """Live clusters and the records they hold, for one label."""

    label: ClusterLabel
    clusters: int
    records: int


class TrafficPoint(_View):
    """Responses answered within one time bucket ``[start, start + bucket_s)``."""

    start: datetime
    requests: int
    #: Answered from a template's argument program (no model).
    template: int = 0
    small: int
    large: int
    none: int
    #: Share of the bucket's responses served without the large model (small model or template).
    coverage: float = Field(ge=0, le=1)
    p50_ms: float
    p90_ms: float


class TrafficView(_View):
    """Coverage and latency over time, plus the same figures over every retained bucket."""

    bucket_s: float
    points: list[TrafficPoint]
    requests: int
    coverage: float | None
    p50_ms: float | None
    p90_ms: float | None
    #: Responses older than the retained window (or duplicates of a request already counted).
    dropped: int
    #: Responses counted earlier in buckets that have since left the window.
    expired: int
    #: Of the retained responses, small-routed ones the small path's admission policy sent to the large
    #: model (route reasons ``hedged``, ``small_busy``, ``small_not_faster``; docs/serving_policy.md).
    small_path: dict[str, int] = Field(default_factory=dict)


class PromotedModel(_View):
    """The latest update of one generator (compacted ``model-updates`` topic): a ``ModelUpdate``,
    or a ``RouterUpdate`` (``version`` and ``base_model`` ``None``: a router served with no adapter)."""

    generator: str
    version: str | None = None
    router_version: str | None
    base_model: str | None = None
    previous_version: str | None = None
    eval_metrics: dict[str, float] = Field(default_factory=dict)
    created_at: datetime


class ServingVersions(_View):
    """The newest generator and router versions named by responses (what serving runs now)."""

    adapter_version: str | None
    router_version: str | None
    #: When the newer of the two was answered.
    answered_at: datetime


class StreamStats(_View):
    """How much the dashboard has read, and what it could not parse."""

    records: dict[str, int]
    invalid: int
    last_error: str | None


class IngestAuditView(_View):
    """The ingest worker's audit, from its latest ``IngestSummary`` on the cluster-state topic."""

    read: int
    accepted: int
    duplicates: int
    replayed: int
    dead_letters: int
    reused_offsets: int
    unaccounted: int
    adds_up: bool
    updated_at: datetime

    @classmethod
    def of_summary(cls, summary: IngestSummary) -> IngestAuditView:
        """The totals of ``summary``'s audit (dead letters of every reason summed)."""
        t = summary.totals
        return cls(
            read=t.get(READ, 0), accepted=t.get(ACCEPTED, 0), duplicates=t.get(DUPLICATE, 0),
            replayed=t.get(REPLAYED, 0), reused_offsets=t.get(REUSED_OFFSET, 0),
            dead_letters=sum(n for k, n in t.items() if k.startswith(DEAD_LETTER)),
            unaccounted=sum(p.unaccounted for p in summary.audit), adds_up=summary.adds_up,
            updated_at=summary.updated_at,
        )


class DashboardView(_View):
    """Everything the page shows."""

    revision: int
    refresh_s: float
    clusters: list[ClusterRow]
    clusters_live: int = Field(description="Live (not merged) clusters; ``clusters`` holds the largest of them")
    clusters_merged: int
    totals: list[LabelTotal]
    traffic: TrafficView
    promoted: list[PromotedModel]
    serving: ServingVersions | None
    stream: StreamStats
    ingest: IngestAuditView | None = Field(default=None, description="None until the ingest worker's first summary")
