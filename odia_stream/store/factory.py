"""Open a cluster index by backend name (what settings and the CLI call)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from odia_stream.settings import StoreSettings
from odia_stream.store.base import ClusterIndex
from odia_stream.store.edge import EdgeClusterIndex
from odia_stream.store.qdrant_server import QdrantServerClusterIndex

Backend = Literal["edge", "qdrant"]


def server_options(store: StoreSettings) -> dict[str, Any]:
    """The connection options of the configured store for :func:`open_cluster_index`: the Qdrant
    server's API key and CA bundle (``qdrant`` backend), nothing for the embedded engine."""
    if store.backend != "qdrant":
        return {}
    return {"api_key": store.api_key.get_secret_value() if store.api_key else None, "ca_file": store.ca_file}


def _check_collection_dirname(collection: str) -> str:
    if not collection or collection in (".", "..") or "/" in collection or "\\" in collection:
        raise ValueError(f"edge collection must be a plain directory name, got {collection!r}")
    return collection


def open_cluster_index(
    backend: Backend,
    location: str,
    collection: str,
    embedder_id: str,
    dim: int,
    api_key: str | None = None,
    **options: Any,
) -> ClusterIndex:
    """Open (or create) a cluster index.

    Args:
        backend: ``"edge"`` (in-process qdrant-edge, store at ``location/collection``) or
            ``"qdrant"`` (qdrant-client: ``location`` is a server URL, ``":memory:"`` or a path).
        location: base directory (edge) or URL / ``":memory:"`` / path (qdrant).
        collection: sub-directory (edge) or collection name (qdrant).
        embedder_id: id of the embedder whose vectors the index holds.
        dim: vector dimension.
        api_key: Qdrant server API key (qdrant backend only).
        **options: backend keyword options (edge: ``index``, ``auto_optimize_every``;
            qdrant: ``timeout``, ``upsert_batch_size``).

    Raises:
        EmbedderMismatchError: the store holds vectors of another embedder id or dim.
        ValueError: unknown backend or bad arguments.
    """
    if backend == "edge":
        if api_key is not None:
            raise ValueError("api_key is only for the 'qdrant' backend")
        path = Path(location) / _check_collection_dirname(collection)
        return EdgeClusterIndex(path, embedder_id, dim, **options)
    if backend == "qdrant":
        return QdrantServerClusterIndex(location, collection, embedder_id, dim, api_key=api_key, **options)
    raise ValueError(f"unknown cluster-store backend {backend!r}; expected 'edge' or 'qdrant'")
