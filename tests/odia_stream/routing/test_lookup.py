"""Stage-1 lookups: per-scope numpy matrices and a Qdrant-engine store agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from odia_stream.routing import IndexClusterLookup, MatrixClusterLookup
from odia_stream.routing.lookup import fill_index
from odia_stream.store import open_cluster_index


def _data(n: int = 300, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    scopes = [f"s{i % 3}" for i in range(n)]
    q = rng.normal(size=(20, dim)).astype(np.float32)
    return v, scopes, q / np.linalg.norm(q, axis=1, keepdims=True)


def test_matrix_lookup_is_exact_within_the_scope() -> None:
    v, scopes, queries = _data()
    lookup = MatrixClusterLookup(v, scopes)
    for q in queries:
        hit = lookup.nearest(q, "s1")
        rows = [i for i, s in enumerate(scopes) if s == "s1"]
        best = max(rows, key=lambda i: float(v[i] @ q))
        assert hit is not None and hit.row == best and abs(hit.score - float(v[best] @ q)) < 1e-5
    assert lookup.nearest(queries[0], "nope") is None
    assert sorted(lookup.scopes()) == ["s0", "s1", "s2"]


def test_the_store_lookup_finds_the_same_clusters(tmp_path: Path) -> None:
    v, scopes, queries = _data()
    ids = [1000 + i for i in range(len(v))]
    index = open_cluster_index("edge", str(tmp_path), "router", "test-embedder", v.shape[1])
    try:
        fill_index(index, ids, v, scopes, ["simple"] * len(v))
        via_store = IndexClusterLookup(index, {cid: i for i, cid in enumerate(ids)})
        via_matrix = MatrixClusterLookup(v, scopes)
        for q in queries:
            for scope in ("s0", "s2"):
                a, b = via_store.nearest(q, scope), via_matrix.nearest(q, scope)
                assert a is not None and b is not None and a.row == b.row and abs(a.score - b.score) < 1e-4
        # Hits the snapshot does not know are skipped.
        partial = IndexClusterLookup(index, {cid: i for i, cid in enumerate(ids) if i % 2 == 0}, candidates=50)
        hit = partial.nearest(queries[0], "s0")
        assert hit is not None and hit.row % 2 == 0
    finally:
        index.close()
