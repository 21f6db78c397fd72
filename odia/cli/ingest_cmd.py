"""``odia ingest audit``: what became of every FC-log record, per partition, and whether it adds up."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from odia_stream.clustering.audit import ACCEPTED, DUPLICATE, READ, REPLAYED, REUSED_OFFSET, PartitionAudit
from odia_stream.settings import OdiaSettings, get_settings

__all__ = ["audit_table", "ingest_audit"]


def audit_table(partitions: list[PartitionAudit], broker: dict[int, tuple[int, int, int | None]] | None) -> Table:
    """One row per partition (and the total): the outcomes, whether they add up and, with
    ``broker`` (``partition → (low, high, committed)`` of the fc-logs topic), what is still unread."""
    table = Table(
        "topic", "partition", "offsets", READ, ACCEPTED, DUPLICATE, REPLAYED, "dead letters", REUSED_OFFSET,
        "unaccounted", "adds up", *(["not yet read"] if broker is not None else []),
        title="Ingest audit (learner state)",
    )
    for a in partitions:
        c = a.counts
        dead = ", ".join(f"{r} {n}" for r, n in a.dead_letters.items()) or "0"
        row = [
            a.topic, str(a.partition), f"{a.first_offset}–{a.applied}", str(c[READ]), str(c[ACCEPTED]),
            str(c[DUPLICATE]), str(c[REPLAYED]), dead, str(c[REUSED_OFFSET]), str(a.unaccounted),
            "[green]yes[/]" if a.adds_up else "[red]NO[/]",
        ]
        if broker is not None:
            low, high, committed = broker.get(a.partition, (0, 0, None))
            row.append(str(max(0, high - max(a.applied + 1, low))))
        table.add_row(*row)
    return table


def ingest_audit(
    broker: Annotated[bool, typer.Option(help="Also ask the broker how much of each partition is still unread.")] = True,
) -> None:
    """Per partition of the FC-log topic: records read, accepted, duplicates, replays, dead letters
    by reason and reused offsets, and whether every offset is accounted for (exit 1 if not)."""
    settings = get_settings()
    partitions = _read_audit(settings)
    console = Console()
    if not partitions:
        console.print("no audited input yet (the learner state has none)")
        raise typer.Exit(0)
    offsets = None
    if broker:
        from kafka_runtime.clients import partition_offsets

        try:
            offsets = partition_offsets(settings.kafka, settings.app_id, settings.topics.fc_logs.name, timeout_s=5)
        except Exception as exc:  # the audit of the state stands on its own
            console.print(f"[yellow]broker not asked ({exc}); showing the learner's audit only[/]")
    console.print(audit_table(partitions, offsets))
    bad = [a for a in partitions if not a.adds_up]
    for a in bad:
        console.print(
            f"[red]{a.topic}/{a.partition}: {a.counts[READ]} read, {a.outcomes} with an outcome; "
            f"{a.unaccounted} offset(s) with no outcome[/] (lost before the learner, or skipped by Kafka: "
            "transaction markers, compaction)"
        )
    raise typer.Exit(1 if bad else 0)


def _read_audit(settings: OdiaSettings) -> list[PartitionAudit]:
    from odia_stream.clustering.state_db import LearnerStateDB

    path = settings.learner_dir / "learner.sqlite"
    if not path.exists():
        return []
    db = LearnerStateDB(path, read_only=True)
    try:
        return db.audit()
    finally:
        db.close()
