"""``odia dashboard`` end to end: real broker and topics, cluster states from the real learner on
SNIPS, the dashboard server reading them, and the page rendered by a real headless Chromium
(Debian's ``chromium``, driven by Playwright; installed by ``scripts/install_browser.sh``)."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer
from playwright.sync_api import Page, sync_playwright

from kafka_runtime.topics import ensure_topics
from odia.dashboard_server import DashboardServer
from odia_stream.settings import OdiaSettings
from schemas import (
    INGEST_SUMMARY_KEY,
    LatencyBreakdown,
    ModelUpdate,
    ServeResponse,
)
from tests.learner_support import LearnerOutput

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MAX_CLUSTERS = 25


def _find_chromium() -> str | None:
    for name in (os.environ.get("ODIA_CHROMIUM"), "chromium", "chromium-browser"):
        if name and (path := shutil.which(name)):
            return path
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of Debian's chromium; installed by ``scripts/install_browser.sh`` when missing."""
    path = _find_chromium()
    if path is None:
        proc = subprocess.run(
            ["bash", str(REPO / "scripts" / "install_browser.sh")],
            check=False, capture_output=True, text=True, timeout=900,
        )
        path = _find_chromium()
        if path is None:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
            pytest.skip(f"chromium cannot be installed here (scripts/install_browser.sh exit {proc.returncode}): {tail}")
    return path


@pytest.fixture()
def page(chromium: str) -> Iterator[Page]:
    """A page in headless Chromium."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def _publish(bootstrap: str, topic: str, records: list[tuple[str, bytes | None]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value in records:
        producer.produce(topic, key=key.encode(), value=value)
    assert producer.flush(30) == 0, f"could not deliver to {topic}"


def _response(rid: str, served_by: str, ms: float, at: datetime, generator: str | None, router: str) -> ServeResponse:
    return ServeResponse(
        request_id=rid, call=None, served_by=served_by, route_reason="test",  # type: ignore[arg-type]
        adapter_version=generator, router_version=router, large_model="simulated" if served_by == "large" else None,
        latency=LatencyBreakdown(route_ms=2, generate_ms=ms - 3, validate_ms=1, total_ms=ms), answered_at=at,
    )


def _row_text(page: Page, cluster_id: str, cell: str) -> str:
    return page.locator(f'tr.cluster-row[data-cluster-id="{cluster_id}"] td.{cell}').inner_text().strip()


def test_dashboard_renders_clusters_versions_and_coverage_in_headless_chromium(
    settings: OdiaSettings, snips_learner_output: LearnerOutput, snips_events: list, page: Page, tmp_path: Path
) -> None:
    s = settings.model_copy(
        update={"dashboard": settings.dashboard.model_copy(update={"refresh_s": 0.3, "max_clusters": MAX_CLUSTERS, "bucket_s": 60})}
    )
    bootstrap, t = s.kafka.bootstrap_servers, s.topics
    results = ensure_topics(bootstrap, [t.cluster_state, t.model_updates, t.responses])
    assert all(r.outcome != "failed" for r in results), results

    # Cluster states as the ingest worker publishes them: every changed cluster after every batch.
    published, final, summary = snips_learner_output.published, snips_learner_output.final, snips_learner_output.summary
    assert len(published) > len(final)
    ranked = sorted(final.values(), key=lambda c: (-c.size, c.cluster_id))
    # One small cluster is reported merged into the largest one: it must disappear from the page.
    merged = ranked[-1].model_copy(update={"merged_into": ranked[0].cluster_id, "version": ranked[-1].version + 1})
    _publish(bootstrap, t.cluster_state.name, [(c.cluster_id, c.model_dump_json().encode()) for c in [*published, merged]])
    _publish(bootstrap, t.cluster_state.name, [(INGEST_SUMMARY_KEY, summary.model_dump_json().encode())])
    live = [c for c in ranked if c.cluster_id != merged.cluster_id]

    update = ModelUpdate(
        generator="smollm2-135m-lora", version="gen-5f3a9c1e", adapter_uri="file:///adapters/gen-5f3a9c1e",
        sha256="5f" * 32, base_model="smollm2-135m-instruct", eval_metrics={"call_accuracy": 0.947},
        router_version="router-2b7d", previous_version="gen-1c0ffee0",
    )
    _publish(bootstrap, t.model_updates.name, [(update.generator, update.model_dump_json().encode())])

    # Three minutes of traffic: coverage 1/4, 2/4, 3/4 per one-minute bucket.
    base = datetime.fromtimestamp(math.floor(time.time() / 60) * 60 - 180, UTC)
    responses: list[ServeResponse] = []
    for minute in range(3):
        for i in range(4):
            small = i <= minute
            responses.append(_response(
                f"req-{minute}-{i}", "small" if small else "large", 180.0 + 10 * i if small else 1500.0 + 50 * i,
                base + timedelta(minutes=minute, seconds=5 + i), update.version if small else None, update.router_version,
            ))
    _publish(bootstrap, t.responses.name, [(r.request_id, r.model_dump_json().encode()) for r in responses])

    server = DashboardServer(s, host="127.0.0.1", port=0, from_beginning=True, rescan_s=1.0)
    url = server.start()
    try:
        page.goto(url)
        shown = min(MAX_CLUSTERS, len(live))
        page.wait_for_function(
            "n => document.querySelectorAll('tr.cluster-row').length === n", arg=shown, timeout=60_000
        )
        page.wait_for_function("() => document.querySelectorAll('#traffic-chart circle.pt-coverage').length === 3")

        # Clusters: the largest live ones, in order, with their latest state.
        ids = page.eval_on_selector_all("tr.cluster-row", "rows => rows.map(r => r.dataset.clusterId)")
        assert ids == [c.cluster_id for c in live[:shown]]
        for c in live[:8]:
            assert _row_text(page, c.cluster_id, "c-function") == (c.dominant_function or "–")
            assert _row_text(page, c.cluster_id, "c-label") == c.label
            assert _row_text(page, c.cluster_id, "c-size") == str(c.size)
            samples = page.locator(f'tr.cluster-row[data-cluster-id="{c.cluster_id}"] td.c-samples li').all_inner_texts()
            assert [x.strip() for x in samples] == c.sample_queries
        top = live[0]
        assert top.label == "simple" and top.dominant_function in {e.call.name for e in snips_events if e.call}
        assert page.locator(f'tr.cluster-row[data-cluster-id="{merged.cluster_id}"]').count() == 0
        note = page.locator("#clusters-note").inner_text()
        assert f"{len(live)} live clusters" in note and "1 merged" in note
        footer = page.locator("#stream").inner_text()
        assert "ingest audit: 600 read = 600 accepted + 0 duplicates + 0 replayed + 0 dead letters: adds up" in footer
        simple = [c for c in live if c.label == "simple"]
        assert page.locator('#totals [data-label="simple"] .v').inner_text() == (
            f"{len(simple)} · {sum(c.size for c in simple)} records"
        )

        # Versions: promoted (model-updates) and serving (responses).
        promoted = page.locator(f'#promoted tr[data-generator="{update.generator}"]')
        assert promoted.locator(".m-version").inner_text() == update.version
        assert promoted.locator(".m-router").inner_text() == update.router_version
        assert "call_accuracy=0.947" in promoted.locator(".m-metrics").inner_text()
        assert page.locator("#serving-generator").inner_text() == update.version
        assert page.locator("#serving-router").inner_text() == update.router_version

        # Coverage over time: one point per bucket, with the bucket's coverage.
        values = page.eval_on_selector_all("#traffic-chart circle.pt-coverage", "cs => cs.map(c => +c.dataset.value)")
        assert values == pytest.approx([0.25, 0.5, 0.75])
        assert page.locator("#traffic-chart circle.pt-p90").count() == 3
        assert page.locator("#traffic-coverage").inner_text() == "50%"
        assert page.locator("#traffic-requests").inner_text() == "12"

        # Live: a new state of the top cluster and a new minute of traffic show up without a reload.
        grown = top.model_copy(update={"size": top.size + 1000, "version": top.version + 1})
        _publish(bootstrap, t.cluster_state.name, [(grown.cluster_id, grown.model_dump_json().encode())])
        late = _response("req-live", "small", 150.0, base + timedelta(minutes=3, seconds=1), update.version, "router-2b7d")
        _publish(bootstrap, t.responses.name, [(late.request_id, late.model_dump_json().encode())])
        page.wait_for_function(
            "([id, size]) => { const td = document.querySelector(`tr.cluster-row[data-cluster-id='${id}'] td.c-size`);"
            " return td !== null && td.textContent === String(size); }",
            arg=[grown.cluster_id, grown.size], timeout=30_000,
        )
        page.wait_for_function("() => document.querySelectorAll('#traffic-chart circle.pt-coverage').length === 4")
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        assert server.feed.progress().caught_up and server.state.invalid == 0
    finally:
        server.stop()
