"""The cluster store: a vector index of cluster representatives, searched within a scope.

``open_cluster_index("edge", dir, name, embedder_id, dim)`` runs Qdrant's engine in-process
(qdrant-edge); ``open_cluster_index("qdrant", url, name, ...)`` talks to a Qdrant server.
Both are a ``ClusterIndex`` (the contract: argument checks, closed-store errors) and refuse to mix
vectors of two embedders; each fills in only its storage calls.
"""

from odia_stream.store.base import ClusterIndex
from odia_stream.store.edge import DEFAULT_AUTO_OPTIMIZE_EVERY, EdgeClusterIndex
from odia_stream.store.factory import Backend, open_cluster_index
from odia_stream.store.qdrant_server import QdrantServerClusterIndex
from odia_stream.store.types import (
    KEYWORD_FIELDS,
    ClusterHit,
    ClusterPoint,
    ClusterStoreError,
    EmbedderMismatchError,
    EmbedderSpec,
)

__all__ = [
    "DEFAULT_AUTO_OPTIMIZE_EVERY",
    "KEYWORD_FIELDS",
    "Backend",
    "ClusterHit",
    "ClusterIndex",
    "ClusterPoint",
    "ClusterStoreError",
    "EdgeClusterIndex",
    "EmbedderMismatchError",
    "EmbedderSpec",
    "QdrantServerClusterIndex",
    "open_cluster_index",
]
