"""The llama.cpp generator on the real packaged SmolLM2-135M GGUF (CPU), with real LoRA adapters."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import jsonschema
import pytest
import pytest_asyncio

from odia_stream.adapters.random_adapter import random_lora_adapter
from odia_stream.generation.adapter_digest import adapter_sha256
from odia_stream.generation.base_model import BaseModelUnavailable, base_model_id, smollm2_gguf_path
from odia_stream.generation.llamacpp_generator import LlamaCppGenerator
from odia_stream.generation.protocol import (
    AdapterError,
    AdapterNotLoaded,
    AdapterRef,
    GenerationRequest,
    SmallGenerator,
)
from odia_stream.serving.backends import resolve_backend
from odia_stream.settings import GeneratorSettings, LlamaCppSettings, OdiaSettings
from tests.odia_stream.generation.support import assert_verified_before_loading, ticks_while

SYSTEM = 'Call this function for the user\'s last message:\nplay: a*=song b=artist\nReply with only its arguments as JSON: {"<argument>":<value>}'
QUERIES = ("play yesterday by the beatles", "play some jazz by miles davis", "will it rain in Paris tomorrow")
SCHEMAS = (
    {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"], "additionalProperties": False},
    {"type": "object", "properties": {"n": {"type": "integer"}, "g": {"enum": ["jazz", "rock"]}}, "required": ["n", "g"], "additionalProperties": False},
    {"type": "object", "properties": {"on": {"type": "boolean"}}, "required": ["on"], "additionalProperties": False},
)


def request(query: str, **kw: object) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": query}], **kw)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def generator(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LlamaCppGenerator]:
    gen = LlamaCppGenerator(
        smollm2_gguf_path(), smollm2_dir, adapter_cache=tmp_path_factory.mktemp("lora-gguf"), max_new_tokens=40, threads=2
    )
    yield gen
    await gen.aclose()


def _ref(folder: Path, smollm2_dir: Path, version: str) -> AdapterRef:
    return AdapterRef(version=version, path=folder, sha256=adapter_sha256(folder), base_model=base_model_id(smollm2_dir))


@pytest.fixture(scope="module")
def refs(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[AdapterRef, AdapterRef]:
    out = tmp_path_factory.mktemp("adapters")
    return tuple(  # type: ignore[return-value]
        _ref(random_lora_adapter(smollm2_dir, out / f"a{seed}", seed=seed, rank=4, alpha=8).path, smollm2_dir, f"a-test0000000{seed}")
        for seed in (1, 2)
    )


async_test = pytest.mark.asyncio(loop_scope="module")


@async_test
async def test_is_a_small_generator_that_enforces_the_schema(generator: LlamaCppGenerator) -> None:
    assert isinstance(generator, SmallGenerator)
    assert generator.enforces_json_schema is True
    assert generator.base_model == "smollm2-135m-instruct-0.1.2"  # the identity adapters are trained on


@async_test
@pytest.mark.parametrize("schema", SCHEMAS, ids=["strings", "integer-enum", "boolean"])
async def test_the_grammar_yields_the_schemas_object(generator: LlamaCppGenerator, schema: dict[str, object]) -> None:
    for query in QUERIES:
        (r,) = await generator.generate([request(query, json_schema=schema)])
        jsonschema.validate(json.loads(r.text), schema)
        assert r.finish_reason == "stop" and r.text.endswith("}")  # stopped as the object closed


@async_test
async def test_generation_is_greedy_and_the_kv_cache_changes_nothing(generator: LlamaCppGenerator) -> None:
    first = await generator.generate([request(QUERIES[0], json_schema=SCHEMAS[0])])
    # Another query (shares the system prefix in the cache), then the first one again.
    await generator.generate([request(QUERIES[2], json_schema=SCHEMAS[0])])
    again = await generator.generate([request(QUERIES[0], json_schema=SCHEMAS[0]), request(QUERIES[0], json_schema=SCHEMAS[0])])
    assert [r.text for r in again] == [first[0].text] * 2
    r = first[0]
    print(f"llama.cpp SmolLM2-135M base, {r.prompt_tokens} prompt / {r.output_tokens} output tokens: {r.ms:.0f} ms")
    assert r.adapter_version is None and r.prompt_tokens > 20 and r.output_tokens >= 3 and r.ms > 0


@async_test
async def test_system_message_states_are_restored_and_change_nothing(generator: LlamaCppGenerator) -> None:
    other = 'Call this function for the user\'s last message:\nweather: a*=city\nReply with only its arguments as JSON: {"<argument>":<value>}'

    def asked(system: str, query: str) -> GenerationRequest:
        return GenerationRequest(messages=[{"role": "system", "content": system}, {"role": "user", "content": query}],
                                 json_schema=SCHEMAS[0])

    first = [(await generator.generate([asked(system, QUERIES[2])]))[0].text for system in (SYSTEM, other)]
    hits = generator.prefix_states.hits
    # Each system message again after the other one: its state is restored, not evaluated again.
    again = [(await generator.generate([asked(system, QUERIES[2])]))[0].text for system in (SYSTEM, other)]
    assert again == first and generator.prefix_states.hits == hits + 2
    # Each system message's own token ids are worked out once and kept, and they begin its prompt.
    kept = getattr(generator, "_system_cache")
    assert {SYSTEM, other} <= set(kept)
    ids, system = getattr(generator, "_prompt_ids")(asked(other, QUERIES[2]))
    assert system == len(kept[other]) and ids[:system] == kept[other]
    # Without kept states (and after a switch of system message) the answers are the same.
    generator.prefix_states.capacity, saved = 0, generator.prefix_states.capacity
    try:
        generator.prefix_states.drop(None)
        assert [(await generator.generate([asked(system, QUERIES[2])]))[0].text for system in (SYSTEM, other)] == first
    finally:
        generator.prefix_states.capacity = saved


@async_test
async def test_without_a_schema_the_text_is_free_and_the_token_limit_holds(generator: LlamaCppGenerator) -> None:
    (r,) = await generator.generate([request(QUERIES[2], max_new_tokens=5)])
    assert r.output_tokens <= 5 and (r.finish_reason == "length") == (r.output_tokens == 5 and r.text.count("}") == 0)
    (closed,) = await generator.generate([request(QUERIES[2], assistant_prefix='{"a":1}', max_new_tokens=20)])
    assert (closed.text, closed.finish_reason) == ('{"a":1}', "stop") and closed.output_tokens == 1


@async_test
async def test_a_prompt_longer_than_the_context_is_refused(generator: LlamaCppGenerator) -> None:
    with pytest.raises(ValueError, match="exceeds the context"):
        await generator.generate([request("play " * 5000)])


@async_test
async def test_generation_does_not_block_the_event_loop(generator: LlamaCppGenerator) -> None:
    assert await ticks_while(generator.generate([request(QUERIES[1], max_new_tokens=16)]), 0.005) >= 3


@async_test
async def test_adapter_is_verified_before_loading(
    generator: LlamaCppGenerator, refs: tuple[AdapterRef, AdapterRef], tmp_path: Path
) -> None:
    await assert_verified_before_loading(generator, refs[0], request(QUERIES[0], adapter=refs[0]), tmp_path)


@async_test
async def test_an_adapter_llamacpp_cannot_apply_is_refused(
    generator: LlamaCppGenerator, refs: tuple[AdapterRef, AdapterRef], tmp_path: Path, smollm2_dir: Path
) -> None:
    dora = tmp_path / "dora"
    dora.mkdir()
    (dora / "adapter_model.safetensors").write_bytes((refs[0].path / "adapter_model.safetensors").read_bytes())
    config = json.loads((refs[0].path / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(AdapterError, match="cannot be served by llama.cpp.*DoRA"):
        await generator.load_adapter(_ref(dora, smollm2_dir, "a-dora00000000"))
    assert generator.loaded_versions() == []


@async_test
async def test_adapters_are_switched_per_request_and_unloaded(
    generator: LlamaCppGenerator, refs: tuple[AdapterRef, AdapterRef]
) -> None:
    one, two = refs
    (base,) = await generator.generate([request(QUERIES[1])])
    await generator.load_adapter(one)
    await generator.load_adapter(one)  # same version and content: nothing to do
    await generator.load_adapter(two)
    assert generator.loaded_versions() == [one.version, two.version]
    alone = {ref.version: (await generator.generate([request(QUERIES[1], adapter=ref)]))[0].text for ref in refs}
    mixed = await generator.generate(
        [request(QUERIES[1], adapter=two), request(QUERIES[1]), request(QUERIES[1], adapter=one)]
    )
    assert [r.adapter_version for r in mixed] == [two.version, None, one.version]
    assert [r.text for r in mixed] == [alone[two.version], base.text, alone[one.version]]
    assert len({base.text, *alone.values()}) == 3  # each adapter changes what is generated
    with pytest.raises(AdapterError, match="other content"):
        await generator.load_adapter(dataclasses.replace(one, sha256="f" * 64))
    await generator.unload_adapter(one.version)
    assert generator.loaded_versions() == [two.version]
    with pytest.raises(AdapterNotLoaded):
        await generator.unload_adapter(one.version)
    await generator.unload_adapter(two.version)
    assert (await generator.generate([request(QUERIES[1])]))[0].text == base.text


def test_from_settings_needs_the_gguf_of_another_base_model(tmp_path: Path, smollm2_dir: Path) -> None:
    settings = OdiaSettings(state_dir=tmp_path, generator=GeneratorSettings(base_model=str(smollm2_dir)))
    with pytest.raises(BaseModelUnavailable, match="ODIA_LLAMACPP__GGUF_FILE"):
        LlamaCppGenerator.from_settings(settings)
    named = settings.model_copy(
        update={"llamacpp": LlamaCppSettings(gguf_file=smollm2_gguf_path(), threads=1, n_ctx=512, grammar=False)}
    )
    gen = LlamaCppGenerator.from_settings(named)
    try:
        assert gen.enforces_json_schema is False and gen.base_model == base_model_id(smollm2_dir)
        (r,) = asyncio.run(gen.generate([request(QUERIES[2], max_new_tokens=4)]))
        assert r.output_tokens <= 4
    finally:
        asyncio.run(gen.aclose())


def test_auto_backend_is_llamacpp_on_a_cpu_with_it_installed() -> None:
    assert resolve_backend("auto") == "llamacpp"
    assert resolve_backend("hf") == "hf"
    with pytest.raises(ValueError, match="unknown serving backend"):
        resolve_backend("onnx")
