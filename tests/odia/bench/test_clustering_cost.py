"""The clustering-cost figure of `odia bench ingest`, at small sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from odia.bench.clustering_cost import SPREAD_SCOPES, measure_clustering_cost
from odia_stream.clustering.factory import open_embedder
from odia_stream.settings import OdiaSettings
from schemas import FCLogEvent

#: Runs the clustering-cost benchmark end to end.
pytestmark = pytest.mark.slow


def test_clustering_cost_is_measured_per_store_size_with_a_warm_cache(
    tmp_path: Path, model_cache: Path, snips_events: list[FCLogEvent]
) -> None:
    settings = OdiaSettings(state_dir=tmp_path / "state")
    embedder = open_embedder(OdiaSettings(state_dir=model_cache.parent))
    result = measure_clustering_cost(embedder, snips_events[:300], settings, tmp_path / "work", sizes=(200, 2000))
    again = measure_clustering_cost(embedder, snips_events[:300], settings, tmp_path / "work", sizes=(200,))
    rows = result["rows"]
    # Two layouts, each at every size: all clusters in the events' scope, and spread over many.
    assert [(r["layout"], r["clusters_in_store"] >= size) for r, size in zip(rows, (200, 2000, 200, 2000), strict=True)] == [
        ("own scope", True), ("own scope", True), (f"{SPREAD_SCOPES} scopes", True), (f"{SPREAD_SCOPES} scopes", True)
    ]
    # Every run applies every event, also a second one into the same work directory.
    assert [r["events_applied"] for r in [*rows, *again["rows"]]] == [300] * 6
    assert all(r["events"] == 300 and r["ms_per_event"] > 0 for r in rows)
    # The figure is the clustering cost alone: every embedding came from the warmed cache.
    assert all(r["embedding_cache_misses"] == 0 for r in rows)
    assert rows[0]["ratio_to_smallest"] == 1.0 and rows[2]["ratio_to_smallest"] == 1.0
