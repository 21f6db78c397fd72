"""``odia bench templates``: the template tier's share, agreement and assembly latency on held-out data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from odia.cli.options import Datasets, Limit, Seed, TestFraction
from odia_stream.settings import get_settings

__all__ = ["DEFAULT_DATASETS", "bench_templates"]

#: Datasets benchmarked when none is given.
DEFAULT_DATASETS = (Path("synthetic:music"), Path("../shared/datasets/snips"), Path("../shared/datasets/hammerbench/zh"))


def bench_templates(
    dataset: Datasets = None,
    out: Annotated[Path, typer.Option(help="Where templates.json and templates.png go.")] = Path("reports/bench"),
    test_fraction: TestFraction = 0.3, seed: Seed = 0, limit: Limit = None,
    target_precision: Annotated[
        float | None, typer.Option(help="Router target precision (default: the configured one).", min=0.51, max=0.999)
    ] = None,
) -> None:
    """Share of held-out requests the template tier answers, their agreement with the recorded
    call, assembly latency p50/p99, why the rest fell through, and a sweep of program targets;
    JSON, tables and a plot."""
    from odia.bench.common import SplitOptions
    from odia.bench.template_bench import run_template_bench

    settings = get_settings()
    if target_precision is not None:
        settings = settings.model_copy(
            update={"router": settings.router.model_copy(update={"target_precision": target_precision})}
        )
    run_template_bench(
        settings, dataset or list(DEFAULT_DATASETS), out, split=SplitOptions(test_fraction, seed, limit),
        console=Console(),
    )
