"""The transformers + peft generator on the real packaged SmolLM2-135M (CPU)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import torch

from odia_stream.adapters.random_adapter import random_lora_adapter
from odia_stream.generation.adapter_digest import adapter_sha256
from odia_stream.generation.base_model import base_model_id
from odia_stream.generation.hf_generator import HFGenerator
from odia_stream.generation.protocol import (
    AdapterNotLoaded,
    AdapterRef,
    GenerationRequest,
    SmallGenerator,
)
from odia_stream.settings import GeneratorSettings, OdiaSettings
from tests.odia_stream.generation.support import assert_verified_before_loading, ticks_while

#: Loads and runs the real small model (SmolLM2) with LoRA adapters.
pytestmark = pytest.mark.slow

SYSTEM = "Answer with one function call as JSON."
QUERIES = ("play some jazz by miles davis", "will it rain in Paris tomorrow")


def request(query: str, **kw: object) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": query}], **kw)


@pytest.fixture(scope="module")
def lora_dir(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lora") / "adapter"
    return random_lora_adapter(smollm2_dir, out, seed=0, rank=4, alpha=8).path


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def generator(smollm2_dir: Path) -> AsyncIterator[HFGenerator]:
    # One intra-op thread: on a shared 2-core machine more threads than free cores make torch
    # 5-20x slower (spinning threads); the setting is process-wide, so it is restored afterwards.
    threads = torch.get_num_threads()
    gen = HFGenerator(smollm2_dir, max_new_tokens=24, max_batch_size=4, torch_threads=1)
    yield gen
    await gen.aclose()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ref(lora_dir: Path, smollm2_dir: Path) -> AdapterRef:
    return AdapterRef(version="a-test00000001", path=lora_dir, sha256=adapter_sha256(lora_dir), base_model=base_model_id(smollm2_dir))


async_test = pytest.mark.asyncio(loop_scope="module")


@async_test
async def test_is_a_small_generator_and_ignores_json_schema(generator: HFGenerator) -> None:
    assert isinstance(generator, SmallGenerator)
    assert generator.enforces_json_schema is False
    assert generator.base_model == "smollm2-135m-instruct-0.1.2"


@async_test
async def test_base_generation_is_greedy_and_reports_its_cost(generator: HFGenerator) -> None:
    first = await generator.generate([request(QUERIES[0], max_new_tokens=30)])
    again = await generator.generate([request(QUERIES[0], max_new_tokens=30)])
    r = first[0]
    print(f"SmolLM2-135M base, 1 request, {r.output_tokens} new tokens: {r.ms:.0f} ms ({r.finish_reason})")
    assert r.text and r.text == again[0].text
    assert r.adapter_version is None and r.prompt_tokens > 10 and 1 <= r.output_tokens <= 30 and r.ms > 0
    assert r.finish_reason in ("stop", "length")
    assert r.finish_reason == "stop" or r.output_tokens == 30  # cut by the token budget
    assert r.output_tokens == 30 or r.finish_reason == "stop"  # or ended (end of turn, closed object)


@async_test
async def test_assistant_prefix_starts_the_turn(generator: HFGenerator) -> None:
    prefix = '{"name": "'
    (r,) = await generator.generate([request(QUERIES[1], assistant_prefix=prefix, max_new_tokens=12)])
    assert r.text.startswith(prefix) and len(r.text) > len(prefix)


@async_test
async def test_a_row_stops_as_soon_as_its_json_object_closes(generator: HFGenerator) -> None:
    # The prefix already closes the object: the row stops after one token, beside a row that goes on.
    closed, open_ = await generator.generate([
        request(QUERIES[1], assistant_prefix='{"a":1}', max_new_tokens=20),
        request(QUERIES[0], max_new_tokens=20),
    ])
    assert (closed.text, closed.finish_reason) == ('{"a":1}', "stop")
    assert closed.output_tokens <= 2 < open_.output_tokens  # one token, and the padding counted as its end


@async_test
async def test_generation_does_not_block_the_event_loop(generator: HFGenerator) -> None:
    assert await ticks_while(generator.generate([request(QUERIES[1], max_new_tokens=8)]), 0.01) >= 3


@async_test
async def test_adapter_is_verified_before_loading(generator: HFGenerator, ref: AdapterRef, tmp_path: Path) -> None:
    await assert_verified_before_loading(generator, ref, request(QUERIES[0], adapter=ref), tmp_path)


@async_test
async def test_generation_with_and_without_an_adapter(generator: HFGenerator, ref: AdapterRef) -> None:
    (base_before,) = await generator.generate([request(QUERIES[0])])
    await generator.load_adapter(ref)
    await generator.load_adapter(ref)  # same version and content: nothing to do
    assert generator.loaded_versions() == [ref.version]
    mixed = await generator.generate(
        [request(QUERIES[0], adapter=ref), request(QUERIES[0]), request(QUERIES[1], adapter=ref)]
    )
    assert [r.adapter_version for r in mixed] == [ref.version, None, ref.version]
    assert mixed[1].text == base_before.text  # adapters are disabled for base requests
    assert mixed[0].text != base_before.text  # the adapter changes what is generated
    with pytest.raises(Exception, match="other content"):
        await generator.load_adapter(dataclasses.replace(ref, sha256="f" * 64))
    await generator.unload_adapter(ref.version)
    assert generator.loaded_versions() == []
    with pytest.raises(AdapterNotLoaded):
        await generator.unload_adapter(ref.version)
    (base_after,) = await generator.generate([request(QUERIES[0])])
    assert base_after.text == base_before.text


@async_test
async def test_two_adapters_are_switched_per_request_group(
    generator: HFGenerator, ref: AdapterRef, smollm2_dir: Path, tmp_path: Path
) -> None:
    other_dir = random_lora_adapter(smollm2_dir, tmp_path / "other", seed=1, rank=4, alpha=8).path
    other = AdapterRef(
        version="a-test00000002", path=other_dir, sha256=adapter_sha256(other_dir), base_model=ref.base_model
    )
    await generator.load_adapter(ref)
    before_other = await generator.generate([request(QUERIES[1], adapter=ref)])
    await generator.load_adapter(other)  # transformers' load report calls ref's weights MISSING...
    assert generator.loaded_versions() == [ref.version, other.version]
    alone_ref = await generator.generate([request(QUERIES[1], adapter=ref)])
    assert alone_ref[0].text == before_other[0].text  # ...but they are untouched
    alone_other = await generator.generate([request(QUERIES[1], adapter=other)])
    mixed = await generator.generate(
        [request(QUERIES[1], adapter=other), request(QUERIES[1], adapter=ref), request(QUERIES[1])]
    )
    assert [r.adapter_version for r in mixed] == [other.version, ref.version, None]
    assert mixed[0].text == alone_other[0].text and mixed[1].text == alone_ref[0].text
    assert len({r.text for r in mixed}) == 3
    await generator.unload_adapter(ref.version)
    assert generator.loaded_versions() == [other.version]
    assert (await generator.generate([request(QUERIES[1], adapter=other)]))[0].text == alone_other[0].text
    await generator.unload_adapter(other.version)


def test_requests_are_validated() -> None:
    with pytest.raises(ValueError):
        GenerationRequest(messages=[])
    with pytest.raises(ValueError):
        GenerationRequest(messages=[{"content": "no role"}])
    with pytest.raises(ValueError):
        request("x", max_new_tokens=0)
    with pytest.raises(ValueError):
        AdapterRef(version="a-1", path=Path("."), sha256="xyz", base_model="m")


def test_from_settings_uses_the_generator_settings(smollm2_dir: Path, tmp_path: Path) -> None:
    settings = OdiaSettings(
        state_dir=tmp_path,
        generator=GeneratorSettings(
            base_model=str(smollm2_dir), max_new_tokens=5, max_batch_size=2, device="cpu", torch_threads=1
        ),
    )
    threads = torch.get_num_threads()
    gen = HFGenerator.from_settings(settings)
    try:
        assert torch.get_num_threads() == 1
        assert gen.max_new_tokens == 5 and gen.max_batch_size == 2 and gen.device == "cpu"
        (r,) = asyncio.run(gen.generate([request(QUERIES[1])]))
        assert r.output_tokens <= 5
    finally:
        asyncio.run(gen.aclose())
        torch.set_num_threads(threads)
