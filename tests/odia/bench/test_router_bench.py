"""`odia bench router` on a small SNIPS sample: every figure, the JSON and the plot."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from odia.bench.router_bench import SWEEP, run_router_bench
from odia_stream.datasets import write_jsonl
from odia_stream.settings import OdiaSettings
from schemas import FCLogEvent

#: Runs the router benchmark end to end.
pytestmark = pytest.mark.slow


def test_router_bench_writes_its_figures_and_plot(tmp_path: Path, model_cache: Path, snips_events: list[FCLogEvent]) -> None:
    sample = tmp_path / "snips-sample.jsonl"
    write_jsonl(snips_events[:350], sample)
    out = tmp_path / "out"
    printed = io.StringIO()
    report = run_router_bench(
        OdiaSettings(state_dir=tmp_path / "state"), [sample], out, latency_requests=30,
        console=Console(file=printed, width=200),
    )
    saved = json.loads((out / "router.json").read_text(encoding="utf-8"))
    assert saved["target_precision"] == report["target_precision"] == 0.99
    res = saved["datasets"][0]
    assert res["train_events"] + res["test_events"] == 350 and res["test_events"] > 80
    assert set(res["variants"]) == {"sklearn", "river", "stage1_only"}
    for name, v in res["variants"].items():
        assert 0 <= v["coverage"] <= v["small_share"] <= 1, name
        assert v["precision"] is None or 0 <= v["precision"] <= 1
        assert v["recall_truly_simple"] is not None and 0 <= v["recall_truly_simple"] <= 1
        assert sum(v["reasons"].values()) == res["test_events"]
    # Stage 1 alone is the baseline: the full router covers at least as much.
    assert res["variants"]["sklearn"]["coverage"] >= res["variants"]["stage1_only"]["coverage"]
    lat = res["latency"]
    assert 0 < lat["with_embedding_ms"]["p50"] <= lat["with_embedding_ms"]["p99"]
    assert lat["without_embedding_ms"]["p99"] < lat["with_embedding_ms"]["p99"]
    assert lat["embedder_alone_ms"]["n"] == 30 and lat["p99_ratio_to_embedder"] > 0
    assert res["lookup"]["same_nearest_share"] >= 0.99  # numpy matrix and Qdrant engine agree
    for stage in ("match", "classifier"):
        assert [p["threshold"] for p in res["sweeps"][stage]] == list(SWEEP)
    assert res["sweeps"]["classifier"][-1]["small_share"] <= res["sweeps"]["classifier"][0]["small_share"]
    assert (out / "router_thresholds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = printed.getvalue()
    assert "Router on held-out data" in text and "Decision latency" in text
