"""``odia replay``: publish a dataset (optionally Zipf-resampled) to the fc-logs topic."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from odia_stream.datasets import DatasetError, ReadStats, detect_format, load_dataset, zipf_resample
from odia_stream.settings import get_settings

__all__ = ["replay"]


def replay(
    source: Annotated[
        Path,
        typer.Argument(help="HammerBench folder/file, SNIPS folder, or .jsonl file of FCLogEvent."),
    ],
    limit: Annotated[
        int | None, typer.Option(help="Read at most this many events (before resampling).", min=0)
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="Events per second (token bucket); unlimited if unset.")
    ] = None,
    zipf: Annotated[
        int | None,
        typer.Option(help="Resample to this many events with Zipf popularity (repeated queries).", min=1),
    ] = None,
    exponent: Annotated[float, typer.Option(help="Zipf exponent of the resampling.")] = 1.1,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
    topic: Annotated[
        str | None, typer.Option(help="Topic to publish to (default: the fc-logs topic of settings).")
    ] = None,
    lang: Annotated[str | None, typer.Option(help="HammerBench language: zh or en (default: both).")] = None,
    lenient: Annotated[
        bool, typer.Option(help="Skip bad records/lines (counted) instead of stopping.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Replay a dataset into Kafka as FCLogEvent records (key = offered-tool fingerprint)."""
    from kafka_runtime.topics import ensure_topics
    from odia.replay_producer import ReplayProducer

    console = Console()
    settings = get_settings()
    spec = settings.topics.fc_logs
    if topic:
        spec = spec.model_copy(update={"name": topic})
    bootstrap = settings.kafka.bootstrap_servers
    read_stats = ReadStats()
    try:
        fmt = detect_format(source)
        events = list(load_dataset(source, lang=lang, limit=limit, strict=not lenient, stats=read_stats))
    except DatasetError as exc:
        console.print(f"[red]cannot read dataset:[/red] {exc}")
        raise typer.Exit(2) from exc
    if not events:
        console.print(f"[yellow]no events in {source}[/yellow]")
        raise typer.Exit(1)
    base_count = len(events)
    if zipf is not None:
        events = list(zipf_resample(events, zipf, exponent=exponent, seed=seed))

    created = ensure_topics(settings.kafka, [spec])
    for result in created:
        if result.outcome == "failed":
            console.print(f"[red]topic {result.name} could not be created:[/red] {result.error}")
            raise typer.Exit(1)

    with ReplayProducer(settings.kafka, spec.name) as producer:
        stats = producer.publish(events, rate=rate, progress=progress)

    functions = Counter(e.call.name if e.call else "<none>" for e in events)
    table = Table(title=f"replay → {spec.name} @ {bootstrap}", show_header=False)
    table.add_row("source", f"{source} ({fmt}{f', {lang}' if lang else ''})")
    table.add_row(
        "base events", str(base_count) + (f" (skipped {read_stats.skipped})" if read_stats.skipped else "")
    )
    if zipf is not None:
        table.add_row("resampled", f"{len(events)} (zipf exponent {exponent}, seed {seed})")
    table.add_row("unique queries", str(len({e.query for e in events})))
    table.add_row(
        "functions", f"{len(functions)} (incl. <none>)" if "<none>" in functions else str(len(functions))
    )
    table.add_row("sent", str(stats.sent))
    table.add_row("failed", f"[red]{stats.failed}[/red]" if stats.failed else "0")
    table.add_row("seconds", f"{stats.seconds:.2f}")
    table.add_row("events/s", f"{stats.events_per_s:,.0f}")
    console.print(table)
    for error in stats.errors[:5]:
        console.print(f"[red]{error}[/red]")
    if not stats.ok:
        raise typer.Exit(1)
