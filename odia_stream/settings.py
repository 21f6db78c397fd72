"""The one settings object of odia-stream (pydantic-settings, ``ODIA_`` env prefix).

Nested groups use ``__`` in environment names: ``ODIA_KAFKA__BOOTSTRAP_SERVERS``,
``ODIA_TOPICS__FC_LOGS``, ``ODIA_CLUSTERING__MIN_SUPPORT``. A ``.env`` file in the working
directory is read too.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseModel):
    """Where the broker is. Code talks Kafka only through this address."""

    bootstrap_servers: str = "127.0.0.1:9092"
    #: Static group membership (KIP-345): a restarted worker with the same id takes its partitions
    #: back at once instead of waiting for the broker to expire the old member. Must differ per
    #: replica; default ``<app_id>-<hostname>``.
    group_instance_id: str | None = None
    #: Port of the local development broker (``odia broker up``).
    local_port: int = 9092


class TopicSpec(BaseModel):
    """A topic's name, partition count and whether it is compacted."""

    name: str
    partitions: int = Field(default=4, ge=1)
    compacted: bool = False
    replication_factor: int = Field(default=1, ge=1)


class TopicSettings(BaseModel):
    """Every topic of the loop (names and partition counts are settings)."""

    fc_logs: TopicSpec = TopicSpec(name="odia.fc-logs", partitions=4)
    dead_letters: TopicSpec = TopicSpec(name="odia.fc-logs.dlq", partitions=1)
    cluster_state: TopicSpec = TopicSpec(name="odia.cluster-state", partitions=4, compacted=True)
    retrain_triggers: TopicSpec = TopicSpec(name="odia.retrain-triggers", partitions=1)
    model_updates: TopicSpec = TopicSpec(name="odia.model-updates", partitions=1, compacted=True)
    requests: TopicSpec = TopicSpec(name="odia.requests", partitions=4)
    responses: TopicSpec = TopicSpec(name="odia.responses", partitions=4)

    def all(self) -> list[TopicSpec]:
        """Every topic spec, in a stable order."""
        return [
            self.fc_logs,
            self.dead_letters,
            self.cluster_state,
            self.retrain_triggers,
            self.model_updates,
            self.requests,
            self.responses,
        ]


class StoreSettings(BaseModel):
    """The cluster store: embedded Qdrant engine by default, a Qdrant server by URL in production."""

    backend: Literal["edge", "qdrant"] = "edge"
    #: For ``qdrant``: a server URL (``http://qdrant:6333``), or ``:memory:`` / a path (qdrant-client local mode).
    url: str | None = None
    api_key: str | None = None
    collection: str = "odia_clusters"


class EmbeddingSettings(BaseModel):
    """Which sentence embedder clusters and routes queries (a PyPI-packaged one by default)."""

    #: ``e5-small`` | ``use-multilingual`` | ``minilm`` | a sentence-transformers folder or hub id.
    model: str = "use-multilingual"
    batch_size: int = Field(default=64, ge=1)
    cache_entries: int = Field(default=100_000, ge=0)


class ClusteringSettings(BaseModel):
    """Clustering, labelling, pruning and trigger thresholds.

    Distance thresholds default to ``None``: the embedder's calibrated profile is used, so a
    threshold measured for one model is never carried over to another.
    """

    #: Cosine distance threshold of first-level (per micro-batch) agglomerative clustering.
    cluster_distance: float | None = Field(default=None, gt=0, lt=2)
    #: Cosine distance under which a new cluster merges into an existing one (second level).
    merge_distance: float | None = Field(default=None, gt=0, lt=2)
    #: Events per micro-batch; batches are aligned to partition offsets so replays are deterministic.
    batch_size: int = Field(default=256, ge=1)
    #: Seconds to wait for a micro-batch to fill before processing a partial one.
    batch_timeout_s: float = Field(default=2.0, gt=0)
    #: What makes two records comparable: the offered-tool set and/or the previous call in history.
    scope: Literal["tools+context", "context", "tools", "app"] = "tools+context"
    #: A cluster is simple when the Wilson lower bound of its dominant share reaches this.
    simple_share: float = Field(default=0.8, gt=0, le=1)
    #: Confidence of the Wilson bound (z for a two-sided interval).
    wilson_z: float = Field(default=1.96, gt=0)
    #: Fewer records than this: the label stays ``undecided``.
    min_support: int = Field(default=5, ge=1)
    #: Examples kept per unique query (prefer recent, more complete arguments).
    max_examples_per_query: int = Field(default=3, ge=1)
    #: Cosine similarity at or above which two queries of a cluster count as near-identical.
    near_duplicate_similarity: float = Field(default=0.985, gt=0, le=1)
    #: Sample queries and templates published per cluster state.
    state_samples: int = Field(default=5, ge=0)


class TriggerSettings(BaseModel):
    """When to ask the trainer for a new generator."""

    min_new_examples: int = Field(default=500, ge=1)
    min_label_flips: int = Field(default=5, ge=1)


class OdiaSettings(BaseSettings):
    """All settings of odia-stream. Environment: ``ODIA_`` prefix, ``__`` for nesting."""

    model_config = SettingsConfigDict(env_prefix="ODIA_", env_nested_delimiter="__", env_file=".env", extra="ignore")

    #: Where local state lives: broker data, cluster store, learner state, model caches.
    state_dir: Path = Path(".odia")
    app_id: str = "odia-stream"
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    store: StoreSettings = StoreSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    clustering: ClusteringSettings = ClusteringSettings()
    triggers: TriggerSettings = TriggerSettings()
    #: Entity dictionary files (TSV ``type<TAB>value`` or JSON ``{type: [values]}``) loaded at start.
    entity_files: list[Path] = Field(default_factory=list)

    @property
    def cache_dir(self) -> Path:
        """Converted model folders (unpacked once from PyPI packages)."""
        return self.state_dir / "cache"

    @property
    def broker_dir(self) -> Path:
        """Data directory of the local development broker."""
        return self.state_dir / "broker"

    @property
    def learner_dir(self) -> Path:
        """Durable learner state (cluster bookkeeping, seen events, offsets, dictionaries)."""
        return self.state_dir / "learner"


@lru_cache(maxsize=1)
def get_settings() -> OdiaSettings:
    """The process-wide settings, read once from the environment."""
    return OdiaSettings()
