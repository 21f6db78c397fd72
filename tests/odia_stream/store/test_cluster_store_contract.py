"""Contract tests: every ClusterIndex backend behaves the same (real engines, no mocks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from odia_stream.store import (
    ClusterIndex,
    ClusterPoint,
    ClusterStoreError,
    EmbedderMismatchError,
    EmbedderSpec,
    open_cluster_index,
)

DIM = 8
BACKENDS = ["edge", "qdrant-memory", "qdrant-path"]
PERSISTENT = {"edge", "qdrant-path"}

Opener = Callable[..., ClusterIndex]


def unit(rng: np.random.Generator, n: int = 1, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def point(cid: int, vec: np.ndarray, scope: str = "app", **payload: object) -> ClusterPoint:
    return ClusterPoint(cid, np.asarray(vec, dtype=np.float32), {"scope": scope, **payload})


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture()
def open_index(backend: str, tmp_path: Path) -> Iterator[Opener]:
    """Opens the backend under test (same location on every call); closes all at teardown."""
    opened: list[ClusterIndex] = []

    def _open(embedder_id: str = "emb-a", dim: int = DIM) -> ClusterIndex:
        if backend == "edge":
            idx = open_cluster_index("edge", str(tmp_path / "edge"), "clusters", embedder_id, dim)
        elif backend == "qdrant-memory":
            idx = open_cluster_index("qdrant", ":memory:", "clusters", embedder_id, dim)
        else:
            idx = open_cluster_index("qdrant", str(tmp_path / "qdrant"), "clusters", embedder_id, dim)
        opened.append(idx)
        return idx

    yield _open
    for idx in opened:
        idx.close()


@pytest.fixture()
def index(open_index: Opener) -> ClusterIndex:
    return open_index()


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_every_backend_is_a_cluster_index(index: ClusterIndex) -> None:
    assert isinstance(index, ClusterIndex)
    assert index.embedder_id == "emb-a" and index.dim == DIM
    assert index.count() == 0
    assert index.search(np.ones(DIM, dtype=np.float32)) == []


def test_upsert_get_roundtrip(index: ClusterIndex, rng: np.random.Generator) -> None:
    vecs = unit(rng, 3)
    index.upsert([point(i, vecs[i], label="simple", size=i + 1, dominant_function=f"f{i}") for i in range(3)])
    got = index.get([2, 99, 0, 2])
    assert [p.cluster_id for p in got] == [2, 0]
    assert got[0].payload == {"scope": "app", "label": "simple", "size": 3, "dominant_function": "f2"}
    assert got[0].vector.dtype == np.float32 and got[0].vector.shape == (DIM,)
    np.testing.assert_allclose(got[0].vector, vecs[2], atol=1e-5)
    np.testing.assert_allclose(got[1].vector, vecs[0], atol=1e-5)
    assert index.count() == 3
    assert index.get([]) == []


def test_upsert_replaces_vector_and_payload(index: ClusterIndex, rng: np.random.Generator) -> None:
    a, b = unit(rng, 2)
    index.upsert([point(1, a, label="simple", extra=1)])
    index.upsert([point(1, b, scope="other", label="complex")])
    (p,) = index.get([1])
    assert p.payload == {"scope": "other", "label": "complex"}
    np.testing.assert_allclose(p.vector, b, atol=1e-5)
    assert index.count() == 1


def test_search_order_and_scores(index: ClusterIndex, rng: np.random.Generator) -> None:
    basis, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    q = basis[:, 0].astype(np.float32)
    # Unit vectors with exact similarities to q, each off-axis part on its own basis vector.
    sims = [1.0, 0.9, 0.7, 0.5, 0.3]
    vecs = [s * q + np.sqrt(1 - s * s) * basis[:, i + 1] for i, s in enumerate(sims)]
    order = [3, 0, 4, 1, 2]  # insert out of order
    index.upsert([point(10 + i, vecs[i]) for i in order])
    hits = index.search(q, scope="app", limit=5)
    assert [h.cluster_id for h in hits] == [10, 11, 12, 13, 14]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    assert scores == pytest.approx(sims, abs=1e-4)
    assert [h.cluster_id for h in index.search(q, limit=2)] == [10, 11]


def test_scope_filter(index: ClusterIndex, rng: np.random.Generator) -> None:
    vecs = unit(rng, 6)
    index.upsert([point(i, vecs[i], scope="a" if i % 2 == 0 else "b") for i in range(6)])
    hits = index.search(vecs[1], scope="a", limit=10)
    assert {h.cluster_id for h in hits} == {0, 2, 4}
    assert all(h.payload["scope"] == "a" for h in hits)
    assert index.search(vecs[1], scope="b", limit=1)[0].cluster_id == 1
    assert index.search(vecs[1], scope="nope") == []
    assert {h.cluster_id for h in index.search(vecs[1], limit=10)} == set(range(6))


def test_where_filter(index: ClusterIndex, rng: np.random.Generator) -> None:
    vecs = unit(rng, 6)
    labels = ["simple", "complex", "simple", "complex", "simple", "simple"]
    index.upsert(
        [
            point(i, vecs[i], scope="a" if i < 4 else "b", label=labels[i], dominant_function=f"f{i % 2}")
            for i in range(6)
        ]
    )
    hits = index.search(vecs[0], scope="a", where={"label": "simple"}, limit=10)
    assert {h.cluster_id for h in hits} == {0, 2}
    hits = index.search(vecs[0], where={"label": "simple"}, limit=10)
    assert {h.cluster_id for h in hits} == {0, 2, 4, 5}
    hits = index.search(vecs[0], where={"label": "simple", "dominant_function": "f1"}, limit=10)
    assert {h.cluster_id for h in hits} == {5}
    assert index.search(vecs[0], scope="b", where={"label": "complex"}) == []


def test_min_score_and_limit(index: ClusterIndex, rng: np.random.Generator) -> None:
    q = unit(rng)[0]
    other = unit(rng)[0]
    other = other - np.dot(other, q) * q
    other /= np.linalg.norm(other)
    # Similarities to q: 1.0, 0.8, 0.6, 0.0 (exact by construction).
    sims = [1.0, 0.8, 0.6, 0.0]
    index.upsert([point(i, s * q + np.sqrt(1 - s * s) * other) for i, s in enumerate(sims)])
    assert [h.cluster_id for h in index.search(q, min_score=0.7, limit=10)] == [0, 1]
    assert [h.cluster_id for h in index.search(q, min_score=0.5, limit=10)] == [0, 1, 2]
    assert [h.cluster_id for h in index.search(q, min_score=0.5, limit=2)] == [0, 1]
    assert index.search(-q, min_score=0.1) == []
    assert len(index.search(q, limit=3)) == 3
    assert all(h.score >= 0.7 for h in index.search_batch(q[None, :], scopes=[None], min_score=0.7)[0])


def test_set_payload_merges(index: ClusterIndex, rng: np.random.Generator) -> None:
    v = unit(rng, 2)
    index.upsert([point(5, v[0], label="complex", size=3, version=1), point(6, v[1], label="complex")])
    index.set_payload(5, {"label": "simple", "version": 2, "dominant_function": "get_weather"})
    (p,) = index.get([5])
    assert p.payload == {
        "scope": "app",
        "label": "simple",
        "size": 3,
        "version": 2,
        "dominant_function": "get_weather",
    }
    np.testing.assert_allclose(p.vector, v[0], atol=1e-5)
    # The keyword index sees the new label.
    assert [h.cluster_id for h in index.search(v[0], where={"label": "simple"})] == [5]
    assert index.get([6])[0].payload == {"scope": "app", "label": "complex"}
    with pytest.raises(KeyError):
        index.set_payload(404, {"label": "simple"})
    with pytest.raises(ValueError):
        index.set_payload(5, {"scope": 3})


def test_delete_and_count(index: ClusterIndex, rng: np.random.Generator) -> None:
    vecs = unit(rng, 5)
    index.upsert([point(i, vecs[i]) for i in range(5)])
    index.delete([1, 3, 77])
    assert index.count() == 3
    assert [p.cluster_id for p in index.get([0, 1, 2, 3, 4])] == [0, 2, 4]
    assert 1 not in {h.cluster_id for h in index.search(vecs[1], limit=10)}
    index.delete([])
    assert index.count() == 3


def test_iter_points(index: ClusterIndex, rng: np.random.Generator) -> None:
    vecs = unit(rng, 25)
    ids = list(rng.permutation(np.arange(100, 125)))
    index.upsert([point(int(cid), vecs[int(cid) - 100], n=int(cid)) for cid in ids])
    pts = list(index.iter_points(batch_size=7))
    assert [p.cluster_id for p in pts] == list(range(100, 125))
    for p in pts:
        assert p.payload["n"] == p.cluster_id
        np.testing.assert_allclose(p.vector, vecs[p.cluster_id - 100], atol=1e-5)


def test_search_batch_equals_individual_searches(index: ClusterIndex, rng: np.random.Generator) -> None:
    vecs = unit(rng, 60)
    index.upsert([point(i, vecs[i], scope=f"s{i % 4}") for i in range(60)])
    queries = unit(rng, 12)
    scopes: list[str | None] = [f"s{i % 5}" if i % 5 < 4 else None for i in range(12)]
    batch = index.search_batch(queries, scopes=scopes, limit=4, min_score=-0.2)
    assert len(batch) == 12
    for q, scope, hits in zip(queries, scopes, batch, strict=True):
        single = index.search(q, scope=scope, limit=4, min_score=-0.2)
        assert [h.cluster_id for h in hits] == [h.cluster_id for h in single]
        assert [h.score for h in hits] == pytest.approx([h.score for h in single], abs=1e-6)
        assert [h.payload for h in hits] == [h.payload for h in single]
    assert index.search_batch(np.zeros((0, DIM), dtype=np.float32), scopes=[]) == []
    with pytest.raises(ValueError, match="scopes"):
        index.search_batch(queries, scopes=["s0"])


@pytest.mark.parametrize(
    "bad",
    [
        np.ones(DIM + 1, dtype=np.float32),
        np.ones((1, DIM), dtype=np.float32),
        np.array([np.nan] + [1.0] * (DIM - 1), dtype=np.float32),
        np.array([np.inf] + [1.0] * (DIM - 1), dtype=np.float32),
        np.zeros(DIM, dtype=np.float32),
    ],
    ids=["wrong-dim", "2d", "nan", "inf", "zero"],
)
def test_bad_vectors_raise_value_error(
    index: ClusterIndex, rng: np.random.Generator, bad: np.ndarray
) -> None:
    good = unit(rng)[0]
    with pytest.raises(ValueError):
        index.upsert([point(1, good), point(2, bad)])
    assert index.count() == 0  # validated before anything is written
    with pytest.raises(ValueError):
        index.search(bad)
    if bad.ndim == 1:
        with pytest.raises(ValueError):
            index.search_batch(
                np.stack([good, bad]) if bad.shape == good.shape else bad[None, :], scopes=[None] * 2
            )


def test_bad_points_raise_value_error(index: ClusterIndex, rng: np.random.Generator) -> None:
    v = unit(rng)[0]
    with pytest.raises(ValueError, match="scope"):
        index.upsert([ClusterPoint(1, v, {"label": "simple"})])
    with pytest.raises(ValueError, match="scope"):
        index.upsert([ClusterPoint(1, v, {"scope": 3})])
    with pytest.raises(ValueError, match="cluster_id"):
        index.upsert([ClusterPoint(-1, v, {"scope": "a"})])
    with pytest.raises(ValueError):
        index.search(v, limit=0)
    with pytest.raises(ValueError, match="where"):
        index.search(v, where={"label": 1})  # type: ignore[dict-item]
    assert index.count() == 0


def test_numpy_payload_values_are_stored_as_json(index: ClusterIndex, rng: np.random.Generator) -> None:
    index.upsert([point(np.int64(3), unit(rng)[0], size=np.int64(4), share=np.float32(0.5), tags=("x", "y"))])  # type: ignore[arg-type]
    (p,) = index.get([3])
    assert p.payload == {"scope": "app", "size": 4, "share": 0.5, "tags": ["x", "y"]}


def test_optimize_and_flush_keep_results(index: ClusterIndex, rng: np.random.Generator) -> None:
    vecs = unit(rng, 40)
    index.upsert([point(i, vecs[i], scope=f"s{i % 3}") for i in range(40)])
    index.delete(list(range(0, 40, 5)))
    before = index.search(vecs[1], scope="s1", limit=5)
    index.optimize()
    index.flush()
    after = index.search(vecs[1], scope="s1", limit=5)
    assert [h.cluster_id for h in after] == [h.cluster_id for h in before]
    assert index.count() == 32


def test_closed_index_raises(open_index: Opener) -> None:
    idx = open_index()
    idx.close()
    idx.close()  # idempotent
    with pytest.raises(ClusterStoreError):
        idx.count()
    v = np.ones(DIM, dtype=np.float32)
    calls: list[Callable[[], object]] = [
        lambda: idx.upsert([point(1, v)]),
        lambda: idx.set_payload(1, {"label": "simple"}),
        lambda: idx.delete([1]),
        lambda: idx.search(v),
        lambda: idx.search_batch(v[None, :], scopes=[None]),
        lambda: idx.get([1]),
        lambda: list(idx.iter_points()),
        idx.optimize,
        idx.flush,
    ]
    for call in calls:
        with pytest.raises(ClusterStoreError, match="closed"):
            call()
    assert repr(idx).endswith(", closed)")


def test_persistence_across_reopen(backend: str, open_index: Opener, rng: np.random.Generator) -> None:
    if backend not in PERSISTENT:
        pytest.skip(":memory: does not persist")
    vecs = unit(rng, 10)
    idx = open_index()
    idx.upsert([point(i, vecs[i], scope=f"s{i % 2}", label="complex") for i in range(10)])
    idx.set_payload(4, {"label": "simple"})
    idx.delete([9])
    idx.flush()
    idx.close()

    again = open_index()
    assert again.count() == 9
    assert {p.cluster_id for p in again.iter_points()} == set(range(9))
    assert again.get([4])[0].payload == {"scope": "s0", "label": "simple"}
    np.testing.assert_allclose(again.get([7])[0].vector, vecs[7], atol=1e-5)
    assert [h.cluster_id for h in again.search(vecs[4], scope="s0", where={"label": "simple"})] == [4]
    again.upsert([point(20, vecs[9])])
    assert again.count() == 10


def test_embedder_mismatch(backend: str, open_index: Opener, rng: np.random.Generator) -> None:
    if backend not in PERSISTENT:
        pytest.skip(":memory: forgets the collection when the client closes")
    idx = open_index("emb-a", DIM)
    idx.upsert([point(1, unit(rng)[0])])
    idx.close()
    with pytest.raises(EmbedderMismatchError) as err:
        open_index("emb-b", DIM)
    assert err.value.stored == EmbedderSpec("emb-a", DIM)
    assert err.value.requested == EmbedderSpec("emb-b", DIM)
    assert "emb-a" in str(err.value) and "emb-b" in str(err.value)
    with pytest.raises(EmbedderMismatchError) as err:
        open_index("emb-a", DIM * 2)
    assert err.value.requested == EmbedderSpec("emb-a", DIM * 2)
    # The store is untouched and still opens with the right embedder.
    assert open_index("emb-a", DIM).count() == 1


def test_63_bit_cluster_ids(index: ClusterIndex, rng: np.random.Generator) -> None:
    big = 2**63 - 1
    v = unit(rng, 2)
    index.upsert([point(big, v[0]), point(big - 12345, v[1])])
    assert [p.cluster_id for p in index.get([big])] == [big]
    assert index.search(v[0], limit=1)[0].cluster_id == big
    assert [p.cluster_id for p in index.iter_points()] == [big - 12345, big]
    with pytest.raises(ValueError):
        index.get([2**63])
