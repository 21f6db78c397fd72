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
    seeds: Annotated[int | None, typer.Option(
        help="Repeat the split this many times (seeds 0..N-1) and report the delivered precision and "
             "coverage over the splits, per calibration method, beside a nearest-centroid baseline "
             "(router_promise.json/.png); the latency figures are not measured then.", min=1)] = None,
    zipf: Annotated[int | None, typer.Option(
        help="With --seeds: resample each dataset to this many records with Zipf popularity and split "
             "by record (popular queries on both sides, as in production).", min=100)] = None,
    train_fraction: Annotated[float, typer.Option(
        help="With --seeds: keep this share of the training groups (few-shot regime).", min=0.01, max=1.0)] = 1.0,
    method: Annotated[list[str] | None, typer.Option(
        help="With --seeds: methods to compare: a calibration (grouped, records), optionally +simple (the "
             "classifier learns only simple clusters' groups) or +all; default grouped and records.")] = None,
) -> None:
    """Precision, coverage, share routed small and decision latency (p50/p99, with and without
    embedding) of the router on held-out splits; JSON, tables and a threshold plot. With --seeds,
    whether the precision promise holds over repeated splits."""
    import sys

    # Tables stay whole when the output is a file or a pipe (CI logs, `| tee`).
    console = Console() if sys.stdout.isatty() else Console(width=200)
    datasets = dataset or [Path("../shared/datasets/snips"), Path("../shared/datasets/hammerbench/zh")]
    settings = get_settings()
    if seeds is None:
        if zipf is not None or train_fraction < 1.0 or method:
            raise typer.BadParameter("--zipf, --train-fraction and --method go with --seeds")
        from odia.bench.common import SplitOptions
        from odia.bench.router_bench import run_router_bench

        run_router_bench(settings, datasets, out, split=SplitOptions(test_fraction, seed, limit),
                         latency_requests=latency_requests, console=console)
        return
    from odia.bench.common import open_warm_embedder
    from odia.bench.router_promise import METHODS, PromiseOptions, method_settings, run_router_promise

    methods = tuple(method or METHODS)
    for name in methods:
        try:
            method_settings(settings, name)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    options = PromiseOptions(seeds=seeds, test_fraction=test_fraction, zipf=zipf, train_fraction=train_fraction,
                             methods=methods, limit=limit)
    run_router_promise(settings, datasets, out, options, open_warm_embedder(settings), console)
