"""`odia bench templates` on a small synthetic music slice: every figure, the JSON and the plot."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from odia.bench.template_bench import FALL_THROUGH, SWEEP_TARGETS, run_template_bench
from odia_stream.settings import OdiaSettings, RouterSettings

#: Runs the template benchmark end to end (the real embedder).
pytestmark = pytest.mark.slow

#: Consistent recorded calls and a 0.9 target: on 2,000 events some programs go live (at the
#: default 0.99, the generator's deliberate 3% inconsistency keeps every program's lower bound below it).
SPEC = "synthetic:music:n=2000,inconsistency=0"


def _share(x: float | None) -> bool:
    return x is None or 0.0 <= x <= 1.0


def test_template_bench_writes_its_figures_and_plot(tmp_path: Path, model_cache: Path) -> None:
    settings = OdiaSettings(state_dir=tmp_path / "state", model_cache_dir=model_cache,
                            router=RouterSettings(target_precision=0.9))
    out = tmp_path / "out"
    printed = io.StringIO()
    report = run_template_bench(settings, [Path(SPEC)], out, console=Console(file=printed, width=240))
    saved = json.loads((out / "templates.json").read_text(encoding="utf-8"))
    assert saved["target_precision"] == report["target_precision"] == 0.9
    res = saved["datasets"][0]
    n = res["test_events"]
    assert res["train_events"] + n == 2000 and n > 400
    # Every held-out request is answered or falls through for exactly one reason.
    assert set(FALL_THROUGH) <= set(res["fall_through"])
    assert res["answered"] + sum(res["fall_through"].values()) == n
    assert res["router_small"] == n - res["fall_through"]["routed_large"]
    for key in ("share", "router_small_share", "small_model_share"):
        assert 0.0 <= res[key] <= 1.0, key
    assert res["share"] <= res["router_small_share"]
    assert res["answered"] > 0 and res["programs"]["in_snapshot"] > 0
    agreement = res["agreement"]
    assert agreement["answered"] == res["answered"] and _share(agreement["ast"]) and _share(agreement["exact"])
    assert agreement["exact"] <= agreement["ast"]  # equal calls always AST-match
    truth = res["truth"]
    assert truth["inconsistency_share"] == 0.0 and truth["answered_inconsistent"] == 0
    assert truth["agreement"]["exact"] == agreement["exact"]  # consistent records: truth = recorded call
    lat = res["latency_ms"]
    assert lat["all"]["n"] == res["router_small"] and 0 < lat["all"]["p50"] <= lat["all"]["p99"]
    assert lat["answered"]["n"] == res["answered"]
    assert [(row["target"], row["families"]) for row in res["sweep"]] == [
        (t, f) for t in SWEEP_TARGETS for f in (False, True)
    ]
    for row in res["sweep"]:
        assert _share(row["share"]) and _share(row["agreement"]["exact"]) and _share(row["agreement_truth"]["exact"])
        assert 0 <= row["live_programs"] <= row["programs"]
        assert row["pooled_programs"] == 0 if not row["families"] else row["pooled_programs"] <= row["live_programs"]
    own = [row for row in res["sweep"] if not row["families"]]
    pooled = [row for row in res["sweep"] if row["families"]]
    # Lower targets only add programs; families only add programs to those valid on their own evidence.
    for rows in (own, pooled):
        assert [row["live_programs"] for row in rows] == sorted(row["live_programs"] for row in rows)
    for alone, with_families in zip(own, pooled, strict=True):
        assert with_families["live_programs"] == alone["live_programs"] + with_families["pooled_programs"]
    assert set(res["targets"]) == {"agreement", "agreement_truth", "share", "p99_ms"}
    assert all(isinstance(v["met"], bool) for v in res["targets"].values())
    assert (out / "templates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = printed.getvalue()
    assert "Template tier on held-out data" in text and "Why the rest fell through" in text and "Targets" in text
    assert "inconsistency" in text
