"""TLS to the HTTP endpoints odia-stream calls: the Qdrant server, the large model, a vLLM server.

A real HTTPS endpoint with a certificate of a throwaway CA stands in for each service (it only
records what reaches it and answers 404): with the CA bundle setting the request gets through,
carrying its API key; without it, certificate verification refuses the connection before any
byte of the request (or its key) is sent. There is no setting that turns verification off."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from pydantic import SecretStr

from odia_stream.generation.http_generator import HttpVllmGenerator
from odia_stream.large_model.factory import build_large_model
from odia_stream.large_model.protocol import LargeModelError
from odia_stream.settings import LargeModelSettings, OdiaSettings, VllmSettings
from odia_stream.store.qdrant_server import QdrantServerClusterIndex
from schemas import ServeRequest

pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version")

KEY = "endpoint-key-k3Y"


@dataclass
class HttpsEndpoint:
    url: str
    ca_file: Path
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsEndpoint]:
    ca = trustme.CA()
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    loop = asyncio.new_event_loop()
    seen: list[tuple[str, str, dict[str, str]]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.method, request.path, dict(request.headers)))
        return web.json_response({"error": "this endpoint only checks TLS"}, status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx).start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield HttpsEndpoint(f"https://127.0.0.1:{port}", ca_file, seen)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def _chain(exc: BaseException | None) -> str:
    out = []
    while exc is not None:
        out.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(out)


def test_qdrant_server(endpoint: HttpsEndpoint) -> None:
    endpoint.seen.clear()
    with pytest.raises(Exception) as trusted:
        QdrantServerClusterIndex(endpoint.url, "c", "e", 4, api_key=KEY, ca_file=endpoint.ca_file, timeout=5)
    assert "404" in _chain(trusted.value) and "CERTIFICATE_VERIFY_FAILED" not in _chain(trusted.value)
    assert endpoint.seen and endpoint.seen[0][2].get("api-key") == KEY
    endpoint.seen.clear()
    with pytest.raises(Exception) as untrusted:
        QdrantServerClusterIndex(endpoint.url, "c", "e", 4, api_key=KEY, timeout=5)
    assert "CERTIFICATE_VERIFY_FAILED" in _chain(untrusted.value) and not endpoint.seen


async def test_large_model(endpoint: HttpsEndpoint) -> None:
    request = ServeRequest(request_id="r1", query="play yesterday", tools=[])

    def model(ca_file: Path | None) -> object:
        return build_large_model(OdiaSettings(large_model=LargeModelSettings(
            kind="openai", base_url=endpoint.url + "/v1", model="m", api_key=SecretStr(KEY), ca_file=ca_file,
            max_retries=0, timeout_s=5)))

    endpoint.seen.clear()
    trusted = model(endpoint.ca_file)
    with pytest.raises(LargeModelError, match="404") as err:
        await trusted.call(request)  # type: ignore[attr-defined]
    assert KEY not in str(err.value)
    assert endpoint.seen[0][:2] == ("POST", "/v1/chat/completions")
    assert endpoint.seen[0][2]["Authorization"] == f"Bearer {KEY}"
    endpoint.seen.clear()
    untrusted = model(None)
    with pytest.raises(LargeModelError) as refused:
        await untrusted.call(request)  # type: ignore[attr-defined]
    assert "CERTIFICATE_VERIFY_FAILED" in _chain(refused.value) and not endpoint.seen
    for m in (trusted, untrusted):
        await m.aclose()  # type: ignore[attr-defined]


async def test_vllm_server(endpoint: HttpsEndpoint) -> None:
    def settings(ca_file: Path | None) -> OdiaSettings:
        return OdiaSettings(vllm=VllmSettings(server_url=endpoint.url, server_api_key=SecretStr(KEY),
                                              server_ca_file=ca_file, request_timeout_s=5))

    endpoint.seen.clear()
    with pytest.raises(Exception) as trusted:
        await HttpVllmGenerator.connect(settings(endpoint.ca_file))
    assert "404" in _chain(trusted.value) and endpoint.seen[0][1] == "/v1/models"
    assert endpoint.seen[0][2]["Authorization"] == f"Bearer {KEY}"
    endpoint.seen.clear()
    with pytest.raises(Exception) as untrusted:
        await HttpVllmGenerator.connect(settings(None))
    assert "CERTIFICATE_VERIFY_FAILED" in _chain(untrusted.value) and not endpoint.seen
