"""``odia bench engines``: the small generator's engines side by side on the same adapter and records."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console


def bench_engines(
    dataset: list[str] = typer.Option(
        ["synthetic:music", "../shared/datasets/snips"], help="Datasets (an adapter is trained on each)."
    ),
    engine: list[str] = typer.Option(["hf", "llamacpp", "vllm"], help="Engines to measure (hf, llamacpp, vllm)."),
    events: int = typer.Option(3000, help="Events read per dataset to learn clusters from."),
    records: int = typer.Option(40, help="Held-out records each engine answers (at concurrency 1, then 4)."),
    steps: int | None = typer.Option(None, help="LoRA steps (default: trainer.max_steps)."),
    vllm_python: Path = typer.Option(Path(".venv-vllm/bin/python"), help="The Python with vLLM (docs/vllm.md)."),
    out: Path = typer.Option(Path("reports/bench"), help="Where engines.json and engines.png go."),
) -> None:
    """Per engine: adapter load, latency p50/p99 at concurrency 1 and 4, AST accuracy, peak memory."""
    from odia.bench.engine_bench import run_engine_bench
    from odia_stream.settings import get_settings

    run_engine_bench(get_settings(), [Path(d) for d in dataset], engines=engine, events=events, records=records,
                     steps=steps, vllm_python=vllm_python, out_dir=out,
                     console=Console() if sys.stdout.isatty() else Console(width=200))  # the table whole in a log
