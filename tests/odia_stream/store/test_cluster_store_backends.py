"""Backend-specific behaviour of the cluster store: edge metadata/policy, qdrant-client metadata, factory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from odia_stream.store import (
    KEYWORD_FIELDS,
    ClusterPoint,
    ClusterStoreError,
    EdgeClusterIndex,
    EmbedderMismatchError,
    QdrantServerClusterIndex,
    open_cluster_index,
)

DIM = 8


def _points(n: int, seed: int = 0, scopes: int = 3) -> list[ClusterPoint]:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return [ClusterPoint(i, v[i], {"scope": f"s{i % scopes}", "label": "simple"}) for i in range(n)]


def test_edge_writes_metadata_and_keyword_indexes(tmp_path: Path) -> None:
    with EdgeClusterIndex(tmp_path / "store", "emb-a", DIM) as idx:
        meta = json.loads((tmp_path / "store" / "cluster_index.json").read_text())
        assert meta["embedder_id"] == "emb-a" and meta["dim"] == DIM and meta["distance"] == "cosine"
        assert set(KEYWORD_FIELDS) <= set(idx._shard.info().payload_schema)
        assert not list((tmp_path / "store").glob(".*.tmp"))


def test_edge_refuses_shard_without_metadata(tmp_path: Path) -> None:
    EdgeClusterIndex(tmp_path / "store", "emb-a", DIM).close()
    (tmp_path / "store" / "cluster_index.json").unlink()
    with pytest.raises(ClusterStoreError, match="missing"):
        EdgeClusterIndex(tmp_path / "store", "emb-a", DIM)


def test_edge_mismatch_is_checked_before_the_shard_opens(tmp_path: Path) -> None:
    idx = EdgeClusterIndex(tmp_path / "store", "emb-a", DIM)
    # Even while the shard is open (and locked), a mismatch is reported as such.
    with pytest.raises(EmbedderMismatchError):
        EdgeClusterIndex(tmp_path / "store", "emb-a", DIM + 1)
    idx.close()


def test_edge_second_open_of_same_path_fails(tmp_path: Path) -> None:
    with (
        EdgeClusterIndex(tmp_path / "store", "emb-a", DIM),
        pytest.raises(ClusterStoreError, match="cannot open"),
    ):
        EdgeClusterIndex(tmp_path / "store", "emb-a", DIM)


def test_edge_plain_mode_auto_optimizes_and_never_builds_hnsw(tmp_path: Path) -> None:
    with EdgeClusterIndex(tmp_path / "store", "emb-a", DIM, auto_optimize_every=300) as idx:
        idx.upsert(_points(250))
        assert idx.last_optimize_s is None
        idx.delete(list(range(100)))  # 350 mutations: vacuum runs
        assert idx.last_optimize_s is not None
        assert idx.segments()["indexed_vectors"] == 0
        assert idx.count() == 150
        assert [
            h.payload["scope"] for h in idx.search(_points(1, seed=9)[0].vector, scope="s1", limit=3)
        ] == ["s1"] * 3


def test_edge_hnsw_mode_has_no_auto_optimize(tmp_path: Path) -> None:
    with EdgeClusterIndex(tmp_path / "store", "emb-a", DIM, index="hnsw") as idx:
        assert idx.auto_optimize_every == 0
        idx.upsert(_points(50))
        idx.optimize()
        assert idx.count() == 50
    # Reopening in plain mode keeps the data.
    with EdgeClusterIndex(tmp_path / "store", "emb-a", DIM) as idx:
        assert idx.count() == 50


def test_qdrant_refuses_collection_without_metadata(tmp_path: Path) -> None:
    client = QdrantClient(path=str(tmp_path / "q"))
    client.create_collection(
        "clusters", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    client.close()
    with pytest.raises(ClusterStoreError, match="metadata"):
        QdrantServerClusterIndex(str(tmp_path / "q"), "clusters", "emb-a", DIM)


def test_qdrant_stores_embedder_in_collection_metadata(tmp_path: Path) -> None:
    QdrantServerClusterIndex(str(tmp_path / "q"), "clusters", "emb-a", DIM).close()
    client = QdrantClient(path=str(tmp_path / "q"))
    meta = client.get_collection("clusters").config.metadata
    client.close()
    assert meta is not None and meta["odia_embedder_id"] == "emb-a" and meta["odia_dim"] == DIM


def test_factory_routes_and_validates(tmp_path: Path) -> None:
    edge = open_cluster_index("edge", str(tmp_path), "c1", "emb-a", DIM)
    assert isinstance(edge, EdgeClusterIndex) and edge.path == tmp_path / "c1"
    edge.close()
    server = open_cluster_index("qdrant", ":memory:", "c1", "emb-a", DIM)
    assert isinstance(server, QdrantServerClusterIndex)
    server.close()
    with pytest.raises(ValueError, match="backend"):
        open_cluster_index("redis", str(tmp_path), "c", "emb-a", DIM)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="directory name"):
        open_cluster_index("edge", str(tmp_path), "../x", "emb-a", DIM)
    with pytest.raises(ValueError, match="api_key"):
        open_cluster_index("edge", str(tmp_path), "c2", "emb-a", DIM, api_key="k")
    with pytest.raises(ValueError, match="dim"):
        open_cluster_index("edge", str(tmp_path), "c3", "emb-a", 0)
