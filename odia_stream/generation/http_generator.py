"""The small generator behind a vLLM OpenAI-compatible server (the scaled-out deployment).

Requests go to ``/v1/chat/completions`` with vLLM's ``continue_final_message`` (the assistant
prefix is the start of the assistant turn), ``response_format`` = the JSON schema, greedy decoding,
and ``model`` = the adapter version (or the base model). Adapters are loaded and unloaded at run
time through ``/v1/load_lora_adapter`` / ``/v1/unload_lora_adapter``, which the server offers only
with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``; the adapter folder must be readable by the server at
the same path (a shared volume). Start the server as in ``docs/vllm.md`` (``--enable-lora``, compact
JSON via ``--structured-outputs-config``).

The prefix rules are those of :mod:`odia_stream.generation.vllm_generator` (:func:`split_prefix`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from odia_stream.generation.adapter_check import verify_adapter
from odia_stream.generation.protocol import (
    AdapterError,
    AdapterNotLoaded,
    AdapterRef,
    GenerationRequest,
    GenerationResult,
)
from odia_stream.generation.vllm_generator import join_output, split_prefix
from odia_stream.tls import verifying_context

if TYPE_CHECKING:
    from odia_stream.settings import OdiaSettings

__all__ = ["HttpVllmGenerator", "VllmServerError", "chat_body"]


class VllmServerError(RuntimeError):
    """The vLLM server could not be reached or answered with an error."""


def chat_body(request: GenerationRequest, model: str, max_tokens: int) -> dict[str, Any]:
    """The ``/v1/chat/completions`` body for ``request`` (vLLM's extensions included)."""
    prompt_prefix, _ = split_prefix(request)
    messages: list[dict[str, str]] = [dict(m) for m in request.messages]
    body: dict[str, Any] = {"model": model, "temperature": 0.0, "max_tokens": max_tokens}
    if prompt_prefix:
        messages.append({"role": "assistant", "content": prompt_prefix})
        body["continue_final_message"] = True
        body["add_generation_prompt"] = False
    body["messages"] = messages
    if request.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "call", "schema": dict(request.json_schema), "strict": True},
        }
    return body


class HttpVllmGenerator:
    """:class:`~odia_stream.generation.protocol.SmallGenerator` on a vLLM OpenAI-compatible server.

    Build it with :meth:`connect` (asks the server which base model it serves).
    """

    enforces_json_schema = True

    def __init__(
        self,
        server_url: str,
        served_model: str,
        *,
        base_model: str,
        accepted_bases: Sequence[str],
        max_new_tokens: int,
        client: httpx.AsyncClient,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.served_model = served_model
        self.base_model = base_model
        self._accepted_bases = tuple(dict.fromkeys(accepted_bases))
        self._max_new_tokens = max_new_tokens
        self._client = client
        self._loaded: dict[str, str] = {}
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(cls, settings: OdiaSettings, server_url: str | None = None) -> HttpVllmGenerator:
        """Connect to ``server_url`` (default ``settings.vllm.server_url``) and find its base model."""
        url = server_url or settings.vllm.server_url
        if not url:
            raise ValueError("no vLLM server URL (ODIA_VLLM__SERVER_URL, e.g. http://vllm:8000)")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"vLLM server URL must be http(s), got {url!r}")
        key = settings.vllm.server_api_key
        headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
        client = httpx.AsyncClient(timeout=httpx.Timeout(settings.vllm.request_timeout_s), headers=headers,
                                   verify=verifying_context(settings.vllm.server_ca_file))
        try:
            models = await cls._get_json(client, url.rstrip("/") + "/v1/models")
            roots = [m for m in models.get("data", []) if not m.get("parent")]
            if not roots:
                raise VllmServerError(f"{url}/v1/models lists no base model: {str(models)[:300]}")
        except BaseException:
            await client.aclose()
            raise
        root = roots[0]
        served = str(root["id"])
        root_path = str(root.get("root") or served)
        accepted = [served, root_path, Path(root_path).name, settings.generator.base_model]
        return cls(
            url,
            served,
            base_model=served,
            accepted_bases=accepted,
            max_new_tokens=settings.generator.max_new_tokens,
            client=client,
        )

    @staticmethod
    async def _get_json(client: httpx.AsyncClient, url: str) -> Any:
        try:
            response = await client.get(url)
        except httpx.HTTPError as exc:
            raise VllmServerError(f"{url}: {exc!r}") from exc
        if response.status_code >= 300:
            raise VllmServerError(f"{url}: HTTP {response.status_code}: {response.text[:300]}")
        return response.json()

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        url = self.server_url + path
        try:
            return await self._client.post(url, json=body)
        except httpx.HTTPError as exc:
            raise VllmServerError(f"{url}: {exc!r}") from exc

    async def _one(self, request: GenerationRequest) -> tuple[str, Any]:
        if request.adapter is not None and request.adapter.version not in self._loaded:
            raise AdapterNotLoaded(
                f"adapter {request.adapter.version} is not loaded (loaded: {list(self._loaded)})"
            )
        model = request.adapter.version if request.adapter else self.served_model
        body = chat_body(request, model, request.max_new_tokens or self._max_new_tokens)
        response = await self._post("/v1/chat/completions", body)
        if response.status_code >= 300:
            raise VllmServerError(
                f"chat completion on {model}: HTTP {response.status_code}: {response.text[:300]}"
            )
        data = response.json()
        try:
            choice = data["choices"][0]
            generated = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise VllmServerError(f"not a chat completion: {str(data)[:300]}") from exc
        prompt_prefix, forced = split_prefix(request)
        return join_output(prompt_prefix, forced, generated), data

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Send all ``requests`` concurrently (the server batches them); results in request order."""
        for r in requests:
            if r.adapter is not None and r.adapter.version not in self._loaded:
                raise AdapterNotLoaded(
                    f"adapter {r.adapter.version} is not loaded (loaded: {list(self._loaded)})"
                )
        started = time.perf_counter()
        outs = await asyncio.gather(*(self._one(r) for r in requests))
        ms = (time.perf_counter() - started) * 1000.0
        results = []
        for r, (text, data) in zip(requests, outs, strict=True):
            usage = data.get("usage") or {}
            finish = data["choices"][0].get("finish_reason")
            results.append(
                GenerationResult(
                    text=text,
                    adapter_version=r.adapter.version if r.adapter else None,
                    prompt_tokens=int(usage.get("prompt_tokens", 0)),
                    output_tokens=int(usage.get("completion_tokens", 0)),
                    ms=ms,
                    finish_reason="length" if finish == "length" else "stop",
                    extra={"request_id": data.get("id"), "backend": "vllm-http"},
                )
            )
        return results

    async def load_adapter(self, ref: AdapterRef) -> None:
        """Verify ``ref`` here, have the server load it under its version, then warm it up."""
        async with self._lock:
            known = self._loaded.get(ref.version)
            if known is not None:
                if known != ref.sha256:
                    raise AdapterError(
                        f"version {ref.version} is loaded with sha256 {known}, not {ref.sha256}"
                    )
                return
            await asyncio.to_thread(verify_adapter, ref, self._accepted_bases)
            body = {"lora_name": ref.version, "lora_path": str(Path(ref.path).resolve())}
            response = await self._post("/v1/load_lora_adapter", body)
            # A version names one content, so "already loaded" (e.g. by a previous process) is fine.
            if response.status_code >= 300 and "already been loaded" not in response.text:
                if response.status_code == 404:
                    raise AdapterError(
                        f"{self.server_url} offers no runtime LoRA loading: start it with "
                        "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and --enable-lora"
                    )
                raise AdapterError(
                    f"server could not load {ref.version}: HTTP {response.status_code}: {response.text[:300]}"
                )
            self._loaded[ref.version] = ref.sha256
        await self.generate(
            [GenerationRequest(messages=[{"role": "user", "content": "hi"}], adapter=ref, max_new_tokens=2)]
        )

    async def unload_adapter(self, version: str) -> None:
        """Have the server unload ``version`` (:class:`AdapterNotLoaded` when it is not loaded)."""
        async with self._lock:
            if version not in self._loaded:
                raise AdapterNotLoaded(f"adapter {version} is not loaded")
            response = await self._post("/v1/unload_lora_adapter", {"lora_name": version})
            if response.status_code >= 300:
                raise AdapterError(
                    f"server could not unload {version}: HTTP {response.status_code}: {response.text[:300]}"
                )
            del self._loaded[version]

    def loaded_versions(self) -> list[str]:
        """Versions this client loaded, in load order."""
        return list(self._loaded)

    async def server_models(self) -> list[str]:
        """Model names the server lists now (base model and loaded adapters)."""
        models = await self._get_json(self._client, self.server_url + "/v1/models")
        return [str(m["id"]) for m in models.get("data", [])]

    async def aclose(self) -> None:
        """Close the HTTP client (the server keeps running)."""
        await self._client.aclose()
