"""Concurrent single-request generations are batched on the real transformers backend."""

from __future__ import annotations

import asyncio

from odia_stream.generation.calls import request_for
from odia_stream.generation.hf_generator import HFGenerator
from odia_stream.serving import CoalescingGenerator, fixed_warmup_prompt
from odia_stream.settings import PromptSettings


async def test_concurrent_callers_share_batches_and_get_their_own_results(hf_generator: HFGenerator) -> None:
    gen = CoalescingGenerator(hf_generator, max_batch_size=3)
    prompt = fixed_warmup_prompt(PromptSettings())
    alone = (await hf_generator.generate([request_for(prompt, None, 6)]))[0]
    results = await asyncio.gather(*(gen.generate([request_for(prompt, None, 6)]) for _ in range(5)))
    assert [len(r) for r in results] == [1] * 5
    assert all(r[0].text == alone.text for r in results)  # greedy: batching does not change the answer
    assert sum(gen.batch_sizes) == 5 and max(gen.batch_sizes) > 1 and max(gen.batch_sizes) <= 3


async def test_a_caller_that_gave_up_is_dropped_before_its_batch(hf_generator: HFGenerator) -> None:
    gen = CoalescingGenerator(hf_generator, max_batch_size=8)
    prompt = fixed_warmup_prompt(PromptSettings())
    first = asyncio.create_task(gen.generate([request_for(prompt, None, 4)]))
    while not gen.batch_sizes:  # the first batch has started; the next callers queue behind it
        await asyncio.sleep(0.001)
    gave_up = asyncio.create_task(gen.generate([request_for(prompt, None, 4)]))
    kept = asyncio.create_task(gen.generate([request_for(prompt, None, 4)]))
    await asyncio.sleep(0)
    gave_up.cancel()
    assert len(await first) == 1 and len(await kept) == 1
    assert sum(gen.batch_sizes) == 2  # the cancelled request was never generated


async def test_warm_up_requests_jump_the_queue(hf_generator: HFGenerator) -> None:
    gen = CoalescingGenerator(hf_generator, max_batch_size=1)
    prompt = fixed_warmup_prompt(PromptSettings())
    done: list[str] = []

    async def run(name: str, first: bool = False) -> None:
        call = gen.generate_first if first else gen.generate
        await call([request_for(prompt, None, 2)])
        done.append(name)

    busy = asyncio.create_task(run("busy"))
    while not gen.batch_sizes:
        await asyncio.sleep(0.001)
    queued = [asyncio.create_task(run(f"queued-{i}")) for i in range(2)]
    await asyncio.sleep(0)
    warm = asyncio.create_task(run("warm-up", first=True))
    await asyncio.gather(busy, warm, *queued)
    assert done[:2] == ["busy", "warm-up"]
