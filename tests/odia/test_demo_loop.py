"""The main job in a reduced size, end to end: real broker, the three workers as processes,
synthetic traffic, a short LoRA round, hot swap, held-out requests, the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from odia.demo_loop import DemoSizes, run_loop_demo
from odia_stream.settings import OdiaSettings

pytestmark = pytest.mark.slow


# ~330 s on this 2-core machine; a CI machine measured 2-3x slower than that (a 900 s timeout cut
# it off while serving loaded the adapter), so it gets more room than the suite's default.
@pytest.mark.timeout(1800)
def test_reduced_demo_produces_a_sane_report(settings: OdiaSettings, tmp_path: Path) -> None:
    sizes = DemoSizes(
        events=1500, held_out=40, train_steps=4, train_minutes=8, request_rate=20, trigger_examples=150,
        timeout_s=1500, gate=0.0, function_trust=0.0, router_precision=0.9,
        # This checks the report, not speed: 20 small requests queued at 20/s behind one CPU generator
        # all outlasted the demo's 20 s budget on a loaded 2-core CI machine (coverage 0, every one
        # escalated:timeout). The speed of the small path is issues 14/15, measured by the demo itself; so
        # hedging and the latency gate, which would send these requests large, are off here.
        small_latency_budget_ms=600_000.0, hedge=False, latency_gate="cost",
    )
    out = tmp_path / "report"
    report = run_loop_demo(settings, "synthetic:music", sizes=sizes, seed=1, out_dir=out, console=Console(width=120),
                           dashboard_port=0)
    assert report["requests"] == 40 and report["answered"] == 40 and report["unanswered"] == 0
    assert report["errors"] == 0
    assert report["adapter_version"] is not None and report["router_version"] is not None
    assert 0 < report["coverage"] <= 1
    assert report["small_evaluated"] > 0 and 0 <= report["small_ast_accuracy"] <= 1
    assert 0 <= report["router_precision"] <= 1
    lat = report["latency_ms"]
    assert lat["all_large_baseline"]["n"] == 40 and lat["all_large_baseline"]["p50"] > 500  # simulated large model
    assert report["large_model"].startswith("replay-simulated") and "simulated" in report["large_model_latency"]
    assert report["clusters"]["simple"] > 0
    for name in ("report.json", "report.md", "latency_cdf.png", "coverage.png"):
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "report.json").read_text())["answered"] == 40
    assert len(report["targets"]) == 7 and "## The promise: targets and this run" in (out / "report.md").read_text()
