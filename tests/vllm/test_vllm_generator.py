"""The in-process vLLM generator on the CPU build: structured output, adapters, integrity checks.

One engine (the packaged SmolLM2-135M-Instruct) serves the whole module; it starts in about a minute.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from odia_stream.evaluation.call_validation import validate_call
from odia_stream.generation.base_model import base_model_id
from odia_stream.generation.calls import request_for
from odia_stream.generation.protocol import (
    AdapterBaseMismatch,
    AdapterError,
    AdapterIntegrityError,
    AdapterNotLoaded,
    GenerationRequest,
    SmallGenerator,
)
from odia_stream.generation.vllm_generator import VllmGenerator, engine_kwargs
from odia_stream.prompting.format import RenderedPrompt, parse_output, render_prompt
from odia_stream.settings import OdiaSettings, PromptSettings
from schemas import FCLogEvent
from tests.vllm.support import MakeAdapter

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEYED = PromptSettings()
WRAPPED = PromptSettings(no_output_prefix=False)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def generator(base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[VllmGenerator]:
    settings = OdiaSettings(state_dir=tmp_path_factory.mktemp("vllm-state"))
    started = time.perf_counter()
    gen = await VllmGenerator.start(settings, model_dir=base_dir)
    print(f"\nvLLM engine started in {time.perf_counter() - started:.1f} s")
    try:
        yield gen
    finally:
        await gen.aclose()


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def _no_adapter_left_loaded(generator: VllmGenerator) -> AsyncIterator[None]:
    """Each test starts with the base alone, even after a test before it failed midway."""
    yield
    for version in generator.loaded_versions():
        await generator.unload_adapter(version)


def _requests(
    events: list[FCLogEvent], options: PromptSettings, prefix: str
) -> list[tuple[RenderedPrompt, GenerationRequest]]:
    out = []
    for ev in events:
        prompt = render_prompt(ev.tools, ev.history, ev.query, options)
        # Room for long Chinese argument values (2-3 tokens per character with this tokenizer).
        req = GenerationRequest(
            messages=prompt.messages,
            json_schema=prompt.output_schema,
            assistant_prefix=prefix,
            max_new_tokens=256,
        )
        out.append((prompt, req))
    return out


def _check_valid(
    pairs: list[tuple[RenderedPrompt, GenerationRequest]], texts: list[str], events: list[FCLogEvent]
) -> None:
    for (prompt, req), text, ev in zip(pairs, texts, events, strict=True):
        assert text.startswith(req.assistant_prefix), text
        call = parse_output(text, prompt)  # raises when not exactly one call in the format
        result = validate_call(call, list(ev.tools), check_required=False)
        assert result.ok, (text, result.errors)


async def test_engine_arguments_follow_settings(base_dir: Path) -> None:
    settings = OdiaSettings().vllm.model_copy(
        update={"kv_cache_gib": 0.5, "max_loras": 3, "max_lora_rank": 32}
    )
    kw = engine_kwargs(settings, base_dir)
    assert kw["enable_lora"] and kw["max_loras"] == 3 and kw["max_lora_rank"] == 32
    assert kw["kv_cache_memory_bytes"] == 1 << 29 and kw["enforce_eager"] and kw["model"] == str(base_dir)


async def test_is_a_small_generator(generator: VllmGenerator, base_dir: Path) -> None:
    assert isinstance(generator, SmallGenerator) and generator.enforces_json_schema
    assert generator.base_model == base_model_id(base_dir)  # what adapters record, as HFGenerator reports it
    assert generator.loaded_versions() == []


async def test_structured_output_yields_valid_calls(
    generator: VllmGenerator,
    snips_sample: list[FCLogEvent],
    hammerbench_sample: list[FCLogEvent],
    bound_strings: Callable[[Any], Any],
) -> None:
    # The bare base model is not trained on this format: only the grammar makes these calls.
    events = snips_sample + hammerbench_sample
    keyed = _requests(events, KEYED, '{"')
    # String lengths are bounded in the schema (the untrained base model sometimes repeats itself
    # inside an unbounded string until max_new_tokens: a cut output, minutes of CPU, nothing more
    # about the grammar); so every output finishes as a valid call.
    bounded = [(p, dataclasses.replace(r, json_schema=bound_strings(r.json_schema))) for p, r in keyed]
    results = await generator.generate([r for _, r in bounded])
    assert [r.adapter_version for r in results] == [None] * len(events)
    assert all(r.output_tokens > 0 and r.prompt_tokens > 20 for r in results)
    bad = [(r.finish_reason, r.output_tokens, r.text) for r in results if r.finish_reason != "stop"]
    assert not bad, "\n".join(map(str, bad))
    _check_valid(bounded, [r.text for r in results], events)
    # Empty prefix, and the <tool_call> format whose prefix is text before the JSON (goes into the prompt).
    bare = _requests(snips_sample[:4], KEYED, "")
    wrapped = _requests(snips_sample[4:], WRAPPED, "<tool_call>\n")
    both = [(p, dataclasses.replace(r, json_schema=bound_strings(r.json_schema))) for p, r in bare + wrapped]
    results = await generator.generate([r for _, r in both])
    assert all(r.finish_reason == "stop" for r in results)
    _check_valid(both, [r.text for r in results], snips_sample)
    assert all(r.text.startswith("<tool_call>\n{") for r in results[4:])
    # Prompt format 2 (the router's function given): the grammar holds the output to that function's
    # arguments object, within the budget its schema allows (request_for).
    given = [render_prompt(ev.tools, ev.history, ev.query, KEYED, ev.call.name) for ev in snips_sample if ev.call]
    requests = [dataclasses.replace(request_for(p, None), json_schema=bound_strings(p.output_schema)) for p in given]
    assert all(r.max_new_tokens is not None for r in requests)  # the schema's budget (json_stop)
    results = await generator.generate(requests)
    for prompt, req, r in zip(given, requests, results, strict=True):
        assert r.finish_reason == "stop" and r.text.startswith("{") and r.output_tokens <= req.max_new_tokens, r
        call = parse_output(r.text, prompt)
        assert call.name == prompt.function and validate_call(call, list(prompt.tools), check_required=False).ok


async def test_without_schema_the_prefix_is_forced(
    generator: VllmGenerator, snips_sample: list[FCLogEvent]
) -> None:
    prompt = render_prompt(snips_sample[0].tools, [], snips_sample[0].query, KEYED)
    req = GenerationRequest(messages=prompt.messages, assistant_prefix='{"', max_new_tokens=12)
    (result,) = await generator.generate([req])
    assert result.text.startswith('{"') and result.output_tokens <= 12


async def test_a_prefix_the_schema_does_not_force_is_refused(
    generator: VllmGenerator, snips_sample: list[FCLogEvent]
) -> None:
    prompt = render_prompt(snips_sample[0].tools, [], snips_sample[0].query, KEYED)
    req = GenerationRequest(
        messages=prompt.messages, json_schema=prompt.output_schema, assistant_prefix='{"NoSuchFn'
    )
    with pytest.raises(ValueError, match="not forced by the JSON schema"):
        await generator.generate([req])


async def test_adapters_load_serve_and_unload(
    generator: VllmGenerator,
    make_adapter: MakeAdapter,
    snips_sample: list[FCLogEvent],
    bound_strings: Callable[..., Any],
) -> None:
    # Greedy outputs are compared between batches of the same composition only: batching changes
    # the bf16 arithmetic, so one request alone and in a batch may differ in late tokens. Random
    # adapters write noise until a string's bound: short bounds and the short prompts of format 2
    # (the function given) keep ten generations cheap.
    a, b = make_adapter(1), make_adapter(2)
    given = [render_prompt(ev.tools, ev.history, ev.query, KEYED, ev.call.name) for ev in snips_sample[:2] if ev.call]
    pairs = [(p, dataclasses.replace(request_for(p, None), json_schema=bound_strings(p.output_schema, 12))) for p in given]
    plain = [r for _, r in pairs]
    base_alone = [r.text for r in await generator.generate(plain)]

    await generator.load_adapter(a)
    await generator.load_adapter(a)  # same version, same files: a no-op
    await generator.load_adapter(b)
    assert generator.loaded_versions() == [a.version, b.version]

    with_a = [dataclasses.replace(r, adapter=a) for r in plain]
    with_b = [dataclasses.replace(r, adapter=b) for r in plain]
    a_res = await generator.generate(with_a)
    a_alone, b_alone = [r.text for r in a_res], [r.text for r in await generator.generate(with_b)]
    assert [r.adapter_version for r in a_res] == [a.version] * len(plain)
    assert [
        r.text for r in await generator.generate(plain)
    ] == base_alone  # loaded adapters leave the base alone
    assert a_alone != base_alone and b_alone != a_alone  # each adapter really serves
    _check_valid(pairs, a_alone, snips_sample[:2])
    _check_valid(pairs, b_alone, snips_sample[:2])

    n = len(plain)
    mixed = await generator.generate(plain + with_a + with_b)  # one batch, three models
    assert [r.adapter_version for r in mixed] == [None] * n + [a.version] * n + [b.version] * n
    for i in range(3):  # base, a, b
        _check_valid(pairs, [r.text for r in mixed[i * n : (i + 1) * n]], snips_sample[:2])

    await generator.unload_adapter(a.version)
    assert generator.loaded_versions() == [b.version]
    with pytest.raises(AdapterNotLoaded):
        await generator.generate(with_a[:1])
    with pytest.raises(AdapterNotLoaded):
        await generator.unload_adapter(a.version)
    assert [r.text for r in await generator.generate(with_b)] == b_alone
    # Loading it again (same version, same files) serves it again. Its texts are not compared with
    # the first load's: vLLM may give the adapter another LoRA slot, and on CPU in bf16 that can
    # change a late token of noise-writing random weights.
    await generator.load_adapter(a)
    again = await generator.generate(with_a)
    assert [r.adapter_version for r in again] == [a.version] * n
    assert [r.text for r in again] != base_alone
    _check_valid(pairs, [r.text for r in again], snips_sample[:2])


async def test_adapter_integrity_and_base_are_checked(
    generator: VllmGenerator, make_adapter: MakeAdapter
) -> None:
    good = make_adapter(3)
    tampered = dataclasses.replace(good, sha256="0" * 64)
    with pytest.raises(AdapterIntegrityError, match="hash to"):
        await generator.load_adapter(tampered)
    with pytest.raises(AdapterBaseMismatch, match="trained on"):
        await generator.load_adapter(dataclasses.replace(good, base_model="qwen2.5-0.5b"))
    not_adapter = dataclasses.replace(good, path=good.path.parent)
    with pytest.raises(AdapterError, match="not a peft adapter folder"):
        await generator.load_adapter(not_adapter)
    assert generator.loaded_versions() == []
    await generator.load_adapter(good)
    # A version never changes content, even after it is unloaded.
    other = make_adapter(4)
    await generator.unload_adapter(good.version)
    with pytest.raises(AdapterError, match="never changes content"):
        await generator.load_adapter(dataclasses.replace(other, version=good.version))


async def test_a_prompt_longer_than_the_context_is_a_clear_error(generator: VllmGenerator) -> None:
    req = GenerationRequest(messages=[{"role": "user", "content": "word " * 5000}])
    with pytest.raises(ValueError, match="vLLM refused the request.*context length"):
        await generator.generate([req])
