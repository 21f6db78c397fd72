"""The dashboard server's Kafka feed and JSON endpoint against the real broker (no browser)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Producer

from kafka_runtime.topics import ensure_topics
from odia.dashboard_server import DashboardServer, running_dashboard
from odia_stream.settings import OdiaSettings
from schemas import ClusterState, LatencyBreakdown, ServeResponse

pytestmark = pytest.mark.slow


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("application/json")
        return json.loads(resp.read())


def _wait_for(fetch: Callable[[], dict[str, Any]], ok: Callable[[dict[str, Any]], bool], timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        doc = fetch()
        if ok(doc):
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s; last document: {json.dumps(doc)[:1500]}")
        time.sleep(0.2)


def _publish(bootstrap: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    p = Producer({"bootstrap.servers": bootstrap})
    for key, value in records:
        p.produce(topic, key=key.encode(), value=value)
    assert p.flush(30) == 0


def _state(cid: str, size: int, version: int = 1) -> ClusterState:
    return ClusterState(
        cluster_id=cid, app="shop", scope="app:shop|tools:t|ctx:-", size=size, unique_queries=size,
        function_counts={"track_order": size}, dominant_function="track_order", dominant_share=1.0,
        share_lower_bound=0.8, label="simple", training_examples=size, templates=["where is order <order_id>"],
        sample_queries=["where is my order 1234"], version=version, embedder_id="test",
    )


def _response(rid: str, at: datetime) -> ServeResponse:
    return ServeResponse(
        request_id=rid, call=None, served_by="small", route_reason="cluster", adapter_version="g1",
        router_version="r1", latency=LatencyBreakdown(route_ms=1, generate_ms=200, validate_ms=1, total_ms=202),
        answered_at=at,
    )


def test_topics_created_after_the_start_are_read_in_full(settings: OdiaSettings) -> None:
    t = settings.topics
    with running_dashboard(settings, host="127.0.0.1", port=0, rescan_s=0.3) as server:
        health = _wait_for(lambda: _get(server.url + "healthz"), lambda h: h["scanned"])
        assert health["ok"] and health["partitions"] == 0 and not health["caught_up"]
        ensure_topics(settings.kafka, [t.cluster_state, t.responses, t.model_updates])
        now = datetime.now(UTC)
        _publish(settings.kafka.bootstrap_servers, t.cluster_state.name, [
            ("c1", _state("c1", 4).model_dump_json().encode()),
            ("c1", _state("c1", 9, version=2).model_dump_json().encode()),
            ("c2", b"\x00 not a cluster state"),
        ])
        # The response topic appeared after the start: everything in it is new, so it is read too.
        _publish(settings.kafka.bootstrap_servers, t.responses.name, [("q1", _response("q1", now).model_dump_json().encode())])
        doc = _wait_for(lambda: _get(server.url + "api/state"), lambda d: d["traffic"]["requests"] == 1 and d["stream"]["records"]["cluster_state"] == 3)
        assert [(c["cluster_id"], c["size"], c["version"]) for c in doc["clusters"]] == [("c1", 9, 2)]
        assert doc["stream"]["invalid"] == 1 and doc["stream"]["last_error"].startswith("cluster_state:")
        assert doc["serving"]["adapter_version"] == "g1"
        health = _wait_for(lambda: _get(server.url + "healthz"), lambda h: h["caught_up"])
        assert health["partitions"] == t.cluster_state.partitions + t.responses.partitions + t.model_updates.partitions


def test_live_mode_reads_every_cluster_state_but_only_new_responses(settings: OdiaSettings) -> None:
    t = settings.topics
    bootstrap = settings.kafka.bootstrap_servers
    ensure_topics(bootstrap, [t.cluster_state, t.responses, t.model_updates])
    old = datetime.now(UTC) - timedelta(minutes=5)
    _publish(bootstrap, t.cluster_state.name, [(f"c{i}", _state(f"c{i}", 10 + i).model_dump_json().encode()) for i in range(5)])
    _publish(bootstrap, t.responses.name, [(f"old{i}", _response(f"old{i}", old).model_dump_json().encode()) for i in range(3)])
    with running_dashboard(settings, host="127.0.0.1", port=0, from_beginning=False) as server:
        _wait_for(lambda: _get(server.url + "healthz"), lambda h: h["caught_up"])
        doc = _get(server.url + "api/state")
        assert [c["cluster_id"] for c in doc["clusters"]] == ["c4", "c3", "c2", "c1", "c0"]
        assert doc["traffic"]["requests"] == 0 and doc["stream"]["records"]["response"] == 0
        _publish(bootstrap, t.responses.name, [("new", _response("new", datetime.now(UTC)).model_dump_json().encode())])
        doc = _wait_for(lambda: _get(server.url + "api/state"), lambda d: d["traffic"]["requests"] == 1)
        assert doc["traffic"]["coverage"] == 1.0
        # The page and its files are served from the package, with their content types.
        with urllib.request.urlopen(server.url, timeout=10) as resp:
            assert resp.headers["Content-Type"].startswith("text/html") and b"static/app.js" in resp.read()
        with urllib.request.urlopen(server.url + "static/app.js", timeout=10) as resp:
            assert resp.headers["Content-Type"].startswith("text/javascript")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + "static/secrets.txt", timeout=10)
        assert err.value.code == 404


def test_a_taken_port_is_a_clear_error(settings: OdiaSettings) -> None:
    with running_dashboard(settings, host="127.0.0.1", port=0) as first:
        port = int(first.url.rstrip("/").rsplit(":", 1)[1])
        second = DashboardServer(settings, host="127.0.0.1", port=port)
        with pytest.raises(OSError, match=f"cannot serve the dashboard on 127.0.0.1:{port}"):
            second.start()
        second.stop()


def test_a_token_guards_every_request_and_is_required_beyond_this_machine(settings: OdiaSettings) -> None:
    from pydantic import SecretStr

    from odia.dashboard_server import TOKEN_COOKIE

    token = "dash-token-7Hq"
    guarded = settings.model_copy(update={"dashboard": settings.dashboard.model_copy(update={"token": SecretStr(token)})})
    with running_dashboard(guarded, host="127.0.0.1", port=0) as server:
        for path in ("", "api/state", "healthz", "static/app.js"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(server.url + path, timeout=10)
            assert err.value.code == 401 and err.value.headers["WWW-Authenticate"] == "Bearer"
        wrong = urllib.request.Request(server.url + "api/state", headers={"Authorization": "Bearer nope"})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(wrong, timeout=10)
        ok = urllib.request.Request(server.url + "api/state", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(ok, timeout=10) as resp:
            body = resp.read()
            assert resp.status == 200 and "clusters" in json.loads(body) and token.encode() not in body

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        with pytest.raises(urllib.error.HTTPError) as found:  # a browser opens /?token=… once
            urllib.request.build_opener(NoRedirect).open(server.url + f"?token={token}", timeout=10)
        assert found.value.code == 302 and found.value.headers["Location"] == "/"
        cookie = found.value.headers["Set-Cookie"]
        assert cookie.startswith(f"{TOKEN_COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        with_cookie = urllib.request.Request(server.url + "api/state", headers={"Cookie": cookie.split(";")[0]})
        with urllib.request.urlopen(with_cookie, timeout=10) as resp:
            assert resp.status == 200
    exposed = DashboardServer(settings, host="0.0.0.0", port=0)
    with pytest.raises(ValueError, match="ODIA_DASHBOARD__TOKEN"):
        exposed.start()
    exposed.stop()
