"""``odia bench router``: router precision, coverage and decision latency on held-out data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from odia_stream.settings import get_settings

__all__ = ["bench_router"]


def bench_router(
    dataset: Annotated[
        list[Path] | None,
        typer.Option(help="Datasets (SNIPS folder, HammerBench language folder, FC-log JSONL); repeat the option."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where router.json and router_thresholds.png go.")] = Path("reports/bench"),
    test_fraction: Annotated[float, typer.Option(help="Share of each dataset held out (whole groups).", min=0.05, max=0.9)] = 0.3,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    limit: Annotated[int | None, typer.Option(help="Read at most this many events per dataset.", min=1)] = None,
    latency_requests: Annotated[int, typer.Option(help="Single requests timed per dataset.", min=10)] = 1000,
) -> None:
    """Precision, coverage, share routed small and decision latency (p50/p99, with and without
    embedding) of the router on held-out splits; JSON, tables and a threshold plot."""
    from odia.bench.router_bench import run_router_bench

    datasets = dataset or [Path("../shared/datasets/snips"), Path("../shared/datasets/hammerbench/zh")]
    run_router_bench(
        get_settings(), datasets, out, test_fraction=test_fraction, seed=seed, limit=limit,
        latency_requests=latency_requests, console=Console(),
    )
