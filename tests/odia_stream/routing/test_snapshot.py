"""Router snapshots: content-derived versions, atomic writes, verification, adapter pairing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from odia_stream.embedding import Embedder
from odia_stream.routing import (
    Router,
    SnapshotError,
    build_snapshot,
    find_snapshot,
    list_snapshots,
    load_snapshot,
    open_router,
    publish_router,
    request_of,
    write_snapshot,
)
from odia_stream.store import EmbedderMismatchError
from shop_app import shop_events

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Built


class Renamed:
    """The real embedder under another model id (as a new weights version would be)."""

    def __init__(self, inner: Embedder, model_id: str) -> None:
        self.inner, self.model_id, self.dim = inner, model_id, inner.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed(texts)


def test_a_written_snapshot_loads_back_and_routes_the_same(shop: Built, embedder: Embedder, tmp_path: Path) -> None:
    info = write_snapshot(shop.snapshot, tmp_path)
    again = write_snapshot(shop.snapshot, tmp_path)
    assert info.version == again.version and info.version.startswith("r") and len(info.version) == 17
    assert [i.version for i in list_snapshots(tmp_path)] == [info.version]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left
    loaded = load_snapshot(info.path)
    assert loaded.version == info.version and loaded.store_version == shop.learner.store_version
    requests = [request_of(e) for e in shop_events(seed=1)[:60]]
    a = Router(shop.snapshot, embedder, shop.settings.router).decide_many(requests)
    b = Router(loaded, embedder, shop.settings.router).decide_many(requests)
    assert [(d.route, d.reason, d.function, d.cluster_id) for d in a] == [(d.route, d.reason, d.function, d.cluster_id) for d in b]
    assert all(d.router_version == info.version for d in b)
    assert loaded.queries == shop.snapshot.queries and any(d.stage == "query" for d in b)
    assert loaded.thresholds["query"].value == pytest.approx(shop.snapshot.thresholds["query"].value, abs=1e-9)


def test_a_snapshot_written_before_the_query_match_loads_without_it(shop: Built, embedder: Embedder, tmp_path: Path) -> None:
    import hashlib
    import json

    info = write_snapshot(shop.snapshot, tmp_path)
    content = json.loads((info.path / "content.json").read_text(encoding="utf-8"))
    del content["queries"], content["thresholds"]["query"]
    (info.path / "content.json").write_text(json.dumps(content), encoding="utf-8")
    manifest = json.loads((info.path / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["content.json"] = hashlib.sha256((info.path / "content.json").read_bytes()).hexdigest()
    (info.path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    older = load_snapshot(info.path)
    assert older.queries == () and not older.thresholds["query"].enabled
    d = Router(older, embedder, shop.settings.router).decide(request_of(shop_events()[0]))
    assert d.stage != "query"


def test_the_version_names_the_adapter_and_serving_finds_matching_pairs(shop: Built, embedder: Embedder) -> None:
    s = shop.settings.model_copy(update={"router": shop.settings.router.model_copy(update={"snapshot_dir": None})})
    one = publish_router(shop.learner, s, embedder, adapter_version="adapter-1")
    two = publish_router(shop.learner, s, embedder, adapter_version="adapter-2")
    assert one.version != two.version and (one.adapter_version, two.adapter_version) == ("adapter-1", "adapter-2")
    root = s.state_dir / "routers"
    assert find_snapshot(root, adapter_version="adapter-1").version == one.version
    assert find_snapshot(root).version in {one.version, two.version}
    with pytest.raises(SnapshotError, match="calibrated for adapter 'adapter-2'"):
        find_snapshot(root, version=two.version, adapter_version="adapter-1")
    with pytest.raises(SnapshotError, match="no router snapshot for adapter 'adapter-3'"):
        find_snapshot(root, adapter_version="adapter-3")
    router = open_router(s, adapter_version="adapter-2", embedder=embedder)
    assert router.version == two.version and router.snapshot.adapter_version == "adapter-2"


def test_a_corrupt_snapshot_is_refused(shop: Built, tmp_path: Path) -> None:
    info = write_snapshot(shop.snapshot, tmp_path)
    vectors = info.path / "vectors.npy"
    vectors.chmod(0o644)
    data = bytearray(vectors.read_bytes())
    data[-1] ^= 0xFF
    vectors.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="vectors.npy"):
        load_snapshot(info.path)
    with pytest.raises(SnapshotError, match="no readable"):
        load_snapshot(tmp_path / "r0000000000000000")


def test_another_embedder_is_refused(shop: Built, embedder: Embedder) -> None:
    other = Renamed(embedder, "someone-else==1.0:model")
    with pytest.raises(EmbedderMismatchError):
        Router(shop.snapshot, other, shop.settings.router)  # type: ignore[arg-type]
    with pytest.raises(EmbedderMismatchError):
        build_snapshot(shop.learner, shop.settings, other)  # type: ignore[arg-type]


def test_adapter_functions_limit_what_routes_small(shop: Built, embedder: Embedder) -> None:
    only_weather = build_snapshot(shop.learner, shop.settings, embedder, adapter_functions={"get_weather"})
    assert only_weather.adapter_functions == ("get_weather",)
    assert {f for f, label in zip(only_weather.clusters.functions, only_weather.clusters.labels) if label == "simple"} == {"get_weather"}
    if only_weather.classifier is not None:
        assert set(only_weather.classifier.classes) <= {"get_weather", "<complex>"}
    router = Router(only_weather, embedder, shop.settings.router)
    decisions = router.decide_many([request_of(e) for e in shop_events(seed=2)])
    assert {d.function for d in decisions if d.route == "small"} <= {"get_weather"}
    assert any(d.route == "small" for d in decisions)


def test_model_functions_limit_what_the_small_model_is_sent_not_what_routes_small(
    shop: Built, embedder: Embedder, tmp_path: Path
) -> None:
    """Per-function trust (issue 14): the adapter answers only the functions it was accurate on;
    routing (and so the template tier) is unchanged, and the set travels with the snapshot."""
    trusted = build_snapshot(shop.learner, shop.settings, embedder, model_functions={"get_weather"})
    assert trusted.model_functions == ("get_weather",) and shop.snapshot.model_functions is None
    loaded = load_snapshot(write_snapshot(trusted, tmp_path).path)
    assert loaded.model_functions == ("get_weather",)
    assert write_snapshot(trusted, tmp_path).version != write_snapshot(shop.snapshot, tmp_path).version
    requests = [request_of(e) for e in shop_events(seed=2)]
    router, open_ = Router(loaded, embedder, shop.settings.router), Router(shop.snapshot, embedder, shop.settings.router)
    routed = [(d.route, d.function) for d in router.decide_many(requests)]
    assert routed == [(d.route, d.function) for d in open_.decide_many(requests)]
    small = {f for route, f in routed if route == "small"}
    assert "get_weather" in small and len(small) > 1
    assert {f for f in small if router.model_answers(f)} == {"get_weather"}
    assert all(open_.model_answers(f) for f in small) and not router.model_answers(None)


def test_a_read_only_view_of_the_state_gives_the_same_snapshot(shop: Built, embedder: Embedder, tmp_path: Path) -> None:
    from odia_stream.clustering.factory import open_learner_view

    with open_learner_view(shop.settings) as view:
        from_view = build_snapshot(view, shop.settings, embedder, adapter_version="a")
    from_learner = build_snapshot(shop.learner, shop.settings, embedder, adapter_version="a")
    assert write_snapshot(from_view, tmp_path).version == write_snapshot(from_learner, tmp_path).version
