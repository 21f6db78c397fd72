"""The main job in a reduced size, end to end: real broker, the three workers as processes,
synthetic traffic, a short LoRA round, hot swap, held-out requests, the report. Secrets are planted
in every secret setting the run can carry; none may appear in anything the run wrote (worker
logs, reports, router snapshots, adapter manifests, learner state, the topics) or printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr
from rich.console import Console

from kafka_runtime.clients import TopicReader
from odia.demo_loop import DemoSizes, demo_settings, run_loop_demo
from odia.runner import settings_env
from odia_stream.settings import OdiaSettings

#: Planted in every secret setting of the run; must never be written or printed.
SECRET = "planted-secret-9fWq2"


def _with_planted_secrets(settings: OdiaSettings) -> OdiaSettings:
    secret = SecretStr(SECRET)
    return settings.model_copy(update={
        "large_model": settings.large_model.model_copy(update={"api_key": secret}),
        "vllm": settings.vllm.model_copy(update={"server_api_key": secret}),
        "store": settings.store.model_copy(update={"api_key": secret}),
        "dashboard": settings.dashboard.model_copy(update={"token": secret}),
        "serving": settings.serving.model_copy(update={"metrics_token": secret}),
        "ingest": settings.ingest.model_copy(update={"metrics_token": secret}),
    })


def _files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]

pytestmark = pytest.mark.slow


# ~330 s on this 2-core machine; a CI machine measured 2-3x slower than that (a 900 s timeout cut
# it off while serving loaded the adapter), so it gets more room than the suite's default.
@pytest.mark.timeout(1800)
def test_reduced_demo_produces_a_sane_report(settings: OdiaSettings, tmp_path: Path) -> None:
    sizes = DemoSizes(
        events=1500, held_out=40, warmup=20, train_steps=4, train_minutes=8, request_rate=20, trigger_examples=150,
        timeout_s=1500, gate=0.0, function_trust=0.0, router_precision=0.9,
        # This checks the report, not speed: 20 small requests queued at 20/s behind one CPU generator
        # all outlasted the demo's 20 s budget on a loaded 2-core CI machine (coverage 0, every one
        # escalated:timeout). The speed of the small path is issues 14/15, measured by the demo itself; so
        # hedging and the latency gate, which would send these requests large, are off here.
        small_latency_budget_ms=600_000.0, hedge=False, latency_gate="cost",
    )
    out = tmp_path / "report"
    settings = _with_planted_secrets(settings)
    assert SECRET in json.dumps(settings_env(settings)), "the workers are given the secrets"
    console = Console(width=120, record=True)
    report = run_loop_demo(settings, "synthetic:music", sizes=sizes, seed=1, out_dir=out, console=console,
                           dashboard_port=0)
    assert report["requests"] == 40 and report["answered"] == 40 and report["unanswered"] == 0
    warm = report["warmup"]  # answered first, kept out of the figures
    assert warm["requests"] == 20 and warm["served_small"] + warm["served_template"] + warm["served_large"] <= 20
    # Read from serving's metrics endpoint, which asks for the (planted) token. Every function the
    # adapter was evaluated on is trusted here (function_trust 0); the router may still send small a
    # function the adapter has no held-out records of (a known query, the classifier), which serving
    # probes.
    probes = report["trust_probes"]
    assert probes is not None and set(probes) <= {"agree", "disagree", "skipped", "error"}
    assert all(n >= 0 for n in probes.values())
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
    # Nothing the run wrote or printed holds a secret: worker logs, learner state, router snapshots,
    # adapters and their manifests, round reports (under the state dir), the report, the console,
    # and every record on the run's topics.
    needle = SECRET.encode()
    assert _files_holding(settings.state_dir, needle) == [] and _files_holding(out, needle) == []
    assert SECRET not in console.export_text()
    for spec in demo_settings(settings, sizes, tmp_path, tmp_path).topics.all():
        reader = TopicReader(settings.kafka, spec.name, paced=False)
        try:
            values = reader.poll(2.0, 100_000)
        finally:
            reader.close()
        assert not any(needle in v for v in values), spec.name
