"""``odia bench router``: router precision, coverage and decision latency on held-out data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from odia.cli.options import Datasets, Limit, Seed, TestFraction
from odia_stream.settings import get_settings

__all__ = ["bench_router"]


def bench_router(
    dataset: Datasets = None,
    out: Annotated[Path, typer.Option(help="Where router.json and router_thresholds.png go.")] = Path("reports/bench"),
    test_fraction: TestFraction = 0.3, seed: Seed = 0, limit: Limit = None,
    latency_requests: Annotated[int, typer.Option(help="Single requests timed per dataset.", min=10)] = 1000,
) -> None:
    """Precision, coverage, share routed small and decision latency (p50/p99, with and without
    embedding) of the router on held-out splits; JSON, tables and a threshold plot."""
    from odia.bench.common import SplitOptions
    from odia.bench.router_bench import run_router_bench

    datasets = dataset or [Path("../shared/datasets/snips"), Path("../shared/datasets/hammerbench/zh")]
    run_router_bench(
        get_settings(), datasets, out, split=SplitOptions(test_fraction, seed, limit),
        latency_requests=latency_requests, console=Console(),
    )
