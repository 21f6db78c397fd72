"""``odia bench faults``: the ingest worker under faults on a local broker; nothing may be lost."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from odia.cli.options import Seed
from odia_stream.settings import get_settings

__all__ = ["bench_faults"]


def bench_faults(
    dataset: Annotated[Path, typer.Option(help="Dataset the events are drawn from.")] = Path("../shared/datasets/snips"),
    out: Annotated[Path, typer.Option(help="Where faults.json and faults.png go.")] = Path("reports/bench"),
    kind: Annotated[
        list[str] | None, typer.Option(help="Fault kinds (none, worker_kill, oversized, broker_restart); repeat.")
    ] = None,
    trials: Annotated[int, typer.Option(help="Trials per kind (seeds seed, seed+1, ...).", min=1)] = 1,
    events: Annotated[int, typer.Option(help="Events per trial.", min=50)] = 600,
    seed: Seed = 0,
) -> None:
    """Trials per fault kind: records in, accounted for, lost (must be 0), dead letters, whether
    the audit adds up, time to recover; exits 1 when anything was lost."""
    from odia.bench.faults_bench import FAULT_KINDS, run_faults_bench

    kinds = kind or list(FAULT_KINDS)
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        raise typer.BadParameter(f"unknown fault kind(s) {unknown}; one of {', '.join(FAULT_KINDS)}")
    report = run_faults_bench(
        get_settings(), dataset, out, kinds=kinds, trials=trials, events=events, seed=seed, console=Console()
    )
    raise typer.Exit(1 if report["lost"] or not report["all_add_up"] else 0)
