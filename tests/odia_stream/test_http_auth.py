"""The bearer check of odia-stream's own endpoints, on a real metrics server."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter
from pydantic import SecretStr

from odia_stream.http_auth import check_exposure, serve_metrics, token_matches


def test_exposure_needs_a_token_beyond_loopback() -> None:
    check_exposure("127.0.0.1", None, "x", "ODIA_X")
    check_exposure("0.0.0.0", SecretStr("t"), "x", "ODIA_X")
    with pytest.raises(ValueError, match="listen on 0.0.0.0.*set ODIA_X"):
        check_exposure("0.0.0.0", None, "x", "ODIA_X")
    with pytest.raises(ValueError, match="ODIA_X is empty"):
        check_exposure("127.0.0.1", SecretStr(""), "x", "ODIA_X")


def test_token_comparison() -> None:
    assert token_matches(None, None) and token_matches("anything", None)
    assert token_matches("t0k", SecretStr("t0k"))
    assert not token_matches(None, SecretStr("t0k")) and not token_matches("t0", SecretStr("t0k"))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_metrics_endpoint_answers_only_with_the_token(host: str) -> None:
    registry = CollectorRegistry()
    Counter("odia_test_things", "things", registry=registry).inc(3)
    server = serve_metrics(registry, host, 0, SecretStr("m3trics"), "ODIA_SERVING__METRICS_TOKEN")
    url = f"http://{'[::1]' if host == '::1' else host}:{server.server_port}/metrics"
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url, timeout=10)
        assert err.value.code == 401
        ok = urllib.request.Request(url, headers={"Authorization": "Bearer m3trics"})
        with urllib.request.urlopen(ok, timeout=10) as resp:
            assert b"odia_test_things_total 3.0" in resp.read()
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ValueError, match="ODIA_SERVING__METRICS_TOKEN"):
        serve_metrics(registry, "0.0.0.0", 0, None, "ODIA_SERVING__METRICS_TOKEN")
    open_server = serve_metrics(registry, "127.0.0.1", 0, None, "ODIA_SERVING__METRICS_TOKEN")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{open_server.server_port}/metrics", timeout=10) as resp:
            assert resp.status == 200, "no token on loopback: open, as before"
    finally:
        open_server.shutdown()
        open_server.server_close()
