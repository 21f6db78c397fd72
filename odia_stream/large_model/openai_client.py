"""The large model behind an OpenAI-compatible ``/chat/completions`` endpoint, with tools.

The request's tools go out in the OpenAI ``tools`` shape, its history as messages (assistant
``tool_calls`` with their arguments as JSON strings), the query as the last user message. The
first ``tool_calls`` entry of the answer becomes the :class:`~schemas.FunctionCall`. Timeouts,
connection errors, 429 and 5xx are retried with exponential backoff (``Retry-After`` is
honoured); other errors raise :class:`LargeModelError` with the status and the server's words.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import ValidationError

from odia_stream.large_model.protocol import LargeModelAnswer, LargeModelError
from odia_stream.tls import verifying_context
from schemas import ChatMessage, FunctionCall, ServeRequest, ToolSpec

__all__ = ["OpenAIChatLargeModel", "build_chat_request", "messages_for", "parse_chat_response"]

#: Content of the tool message added after a recorded call whose result was not logged: OpenAI
#: rejects an assistant ``tool_calls`` message that no tool message answers.
MISSING_RESULT = "(result not recorded)"
_RETRY_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))
_MAX_RETRY_AFTER_S = 30.0


def messages_for(
    history: Sequence[ChatMessage], query: str, system_prompt: str | None = None
) -> list[dict[str, Any]]:
    """OpenAI chat messages for ``history`` followed by the user ``query``.

    Assistant calls without an id get ``call_<n>``; a call that no tool message answers gets one
    saying its result was not recorded, so the conversation is valid for strict servers.
    """
    out: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}] if system_prompt else []
    pending: list[tuple[str, str]] = []
    n = 0

    def flush() -> None:
        for call_id, name in pending:
            out.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": MISSING_RESULT})
        pending.clear()

    for m in history:
        if m.role == "tool":
            pending[:] = [p for p in pending if p[0] != m.tool_call_id]
            entry: dict[str, Any] = {"role": "tool", "content": m.content or ""}
            if m.tool_call_id:
                entry["tool_call_id"] = m.tool_call_id
            if m.name:
                entry["name"] = m.name
            out.append(entry)
            continue
        flush()
        entry = {"role": m.role, "content": m.content}
        if m.tool_calls:
            calls = []
            for tc in m.tool_calls:
                n += 1
                call_id = tc.id or f"call_{n}"
                calls.append(
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {
                            "name": tc.function.name,
                            "arguments": json.dumps(tc.function.arguments, ensure_ascii=False),
                        },
                    }
                )
                pending.append((call_id, tc.function.name))
            entry["tool_calls"] = calls
        out.append(entry)
    flush()
    out.append({"role": "user", "content": query})
    return out


def build_chat_request(
    request: ServeRequest,
    model: str,
    *,
    tool_choice: Literal["auto", "required"] = "auto",
    temperature: float = 0.0,
    system_prompt: str | None = None,
    max_tokens: int | None = None,
) -> dict[str, Any]:
    """The ``/chat/completions`` JSON body for ``request`` (one call wanted: no parallel calls)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": messages_for(request.history, request.query, system_prompt),
        "temperature": temperature,
    }
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if request.tools:
        body["tools"] = [t.model_dump(mode="json") for t in request.tools]
        body["tool_choice"] = tool_choice
        body["parallel_tool_calls"] = False
    return body


def parse_chat_response(data: Any, tools: Sequence[ToolSpec]) -> tuple[FunctionCall | None, str | None]:
    """``(call, reason)`` from a ``/chat/completions`` response body.

    ``call`` is ``None`` when the model called nothing or called something unusable; ``reason``
    says which. A body that is not a chat completion raises :class:`LargeModelError`.
    """
    try:
        message = data["choices"][0]["message"]
    except (KeyError, IndexError, TypeError) as exc:
        raise LargeModelError(f"not a chat completion (no choices[0].message): {str(data)[:300]}") from exc
    tool_calls = message.get("tool_calls") or []
    if not tool_calls:
        text = (message.get("content") or "").strip()
        return None, f"the model answered without a call: {text[:200]!r}"
    first = tool_calls[0].get("function") if isinstance(tool_calls[0], dict) else None
    if not isinstance(first, dict) or not first.get("name"):
        return None, f"malformed tool call: {str(tool_calls[0])[:200]}"
    try:
        call = FunctionCall(name=first["name"], arguments=first.get("arguments"))
    except ValidationError as exc:
        return None, f"tool call {first['name']!r} has unusable arguments: {exc.errors()[0]['msg']}"
    offered = {t.name for t in tools}
    if offered and call.name not in offered:
        return None, f"the model called {call.name!r}, which is not among the offered tools"
    reason = f"{len(tool_calls)} tool calls; the first is used" if len(tool_calls) > 1 else None
    return call, reason


class OpenAIChatLargeModel:
    """An OpenAI-compatible chat-completions model with tools (see the module docs)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        backoff_s: float = 0.5,
        tool_choice: Literal["auto", "required"] = "auto",
        temperature: float = 0.0,
        system_prompt: str | None = None,
        max_tokens: int | None = None,
        client: httpx.AsyncClient | None = None,
        ca_file: Path | None = None,
    ) -> None:
        if not model:
            raise ValueError("the large model's name is required (ODIA_LARGE_MODEL__MODEL)")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if max_retries < 0 or timeout_s <= 0 or backoff_s < 0 or (max_tokens is not None and max_tokens < 1):
            raise ValueError("need max_retries >= 0, timeout_s > 0, backoff_s >= 0, max_tokens >= 1")
        self._model = model
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._tool_choice: Literal["auto", "required"] = tool_choice
        self._temperature = temperature
        self._system_prompt = system_prompt
        self._max_tokens = max_tokens
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s), headers=headers, verify=verifying_context(ca_file)
        )
        if client is not None and headers:
            self._client.headers.update(headers)

    @property
    def name(self) -> str:
        """The model name sent with each request."""
        return self._model

    async def call(self, request: ServeRequest) -> LargeModelAnswer:
        """Ask the model; retries transient failures, raises :class:`LargeModelError` otherwise."""
        body = build_chat_request(
            request,
            self._model,
            tool_choice=self._tool_choice,
            temperature=self._temperature,
            system_prompt=self._system_prompt,
            max_tokens=self._max_tokens,
        )
        start = time.perf_counter()
        data = await self._post(body)
        call, reason = parse_chat_response(data, request.tools)
        latency = (time.perf_counter() - start) * 1000.0
        return LargeModelAnswer(
            call=call, model=self._model, latency_ms=latency, simulated=False, reason=reason
        )

    async def _post(self, body: dict[str, Any]) -> Any:
        last = ""
        attempts = self._max_retries + 1
        for attempt in range(attempts):
            wait = self._backoff_s * (2**attempt) * (0.5 + random.random() / 2)
            try:
                response = await self._client.post(self._url, json=body)
            except httpx.TimeoutException as exc:
                last = f"timed out ({type(exc).__name__})"
            except httpx.TransportError as exc:
                last = f"connection failed: {exc!r}"
            else:
                if response.status_code < 300:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise LargeModelError(
                            f"{self._url}: response is not JSON: {response.text[:300]!r}"
                        ) from exc
                last = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code not in _RETRY_STATUS:
                    raise LargeModelError(f"{self._url} ({self._model}): {last}")
                retry_after = response.headers.get("retry-after")
                if retry_after is not None:
                    try:
                        wait = min(max(float(retry_after), 0.0), _MAX_RETRY_AFTER_S)
                    except ValueError:
                        pass
            if attempt + 1 < attempts:
                await asyncio.sleep(wait)
        raise LargeModelError(
            f"{self._url} ({self._model}): no answer after {attempts} attempt(s); last: {last}"
        )

    async def aclose(self) -> None:
        """Close the HTTP client (when this model created it)."""
        if self._owns_client:
            await self._client.aclose()
