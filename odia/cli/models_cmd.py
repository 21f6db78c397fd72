"""``odia models list | promote | rollback``: the small generator's adapter registry.

``promote`` and ``rollback`` move the registry's current pointer, then publish the new current
version as a ``ModelUpdate`` to the model-updates topic (key = generator name), so serving
hot-swaps to it; ``--no-publish`` only moves the pointer. Promoting the version that is already
current moves nothing and publishes it again (the way to retry a failed publish).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from odia_stream.adapters.registry import AdapterEntry, AdapterRegistry, RegistryError, open_registry
from odia_stream.settings import OdiaSettings, get_settings

__all__ = ["models_app"]

models_app = typer.Typer(help="The small generator's adapters: list, promote, roll back.", no_args_is_help=True)
console = Console()

Publish = Annotated[
    bool, typer.Option("--publish/--no-publish", help="Publish the ModelUpdate to the model-updates topic.")
]


def _publish(settings: OdiaSettings, entry: AdapterEntry, previous: str | None) -> None:
    from kafka_runtime.publishing import publish_model
    from kafka_runtime.topics import ensure_topics

    spec = settings.topics.model_updates
    update = AdapterRegistry.to_model_update(entry, settings.generator.name, previous_version=previous)
    try:
        for result in ensure_topics(settings.kafka, [spec]):
            if result.outcome == "failed":
                raise RuntimeError(f"topic {result.name} could not be created: {result.error}")
        publish_model(settings.kafka, spec.name, update, key=update.generator)
    except Exception as exc:  # noqa: BLE001 - any broker failure: tell the operator how to retry
        console.print(
            f"[red]current is now {entry.version}, but publishing failed:[/red] {exc}\n"
            f"retry with: odia models promote {entry.version}"
        )
        raise typer.Exit(1) from exc
    console.print(f"published {entry.version} to {spec.name} (key {settings.generator.name})")


def _registry(settings: OdiaSettings) -> AdapterRegistry:
    try:
        return open_registry(settings)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


@models_app.command("list")
def list_models(
    verify: Annotated[bool, typer.Option(help="Re-hash every adapter and show whether it is intact.")] = False,
) -> None:
    """Registered adapters, oldest first; the current one is starred."""
    registry = _registry(get_settings())
    entries = registry.list()
    if not entries:
        console.print(f"no adapters in {registry.root}")
        return
    current = registry.current()
    table = Table("", "version", "created (UTC)", "base model", "eval metrics", "router", "parent", title=str(registry.root))
    if verify:
        table.add_column("intact")
    for e in entries:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(e.eval_metrics.items()))
        row = [
            "*" if current and current.version == e.version else "",
            e.version,
            e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            e.base_model,
            metrics,
            e.router_version or "",
            e.parent or "",
        ]
        if verify:
            row.append("yes" if registry.verify(e.version) else "[red]NO[/red]")
        table.add_row(*row)
    console.print(table)


def _move(settings: OdiaSettings, move: Callable[[AdapterRegistry], AdapterEntry]) -> tuple[AdapterEntry | None, AdapterEntry]:
    """Apply ``move`` to the registry: ``(current before, current after)``; registry errors exit 1."""
    registry = _registry(settings)
    before = registry.current()
    try:
        return before, move(registry)
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


@models_app.command("promote")
def promote(
    version: Annotated[str, typer.Argument(help="The adapter version to make current (a-…).")],
    publish: Publish = True,
) -> None:
    """Make VERSION the current adapter and publish it."""
    settings = get_settings()
    before, entry = _move(settings, lambda registry: registry.promote(version))
    console.print(f"current: {entry.version}" + (f" (was {before.version})" if before and before != entry else ""))
    if publish:
        previous = before.version if before and before.version != entry.version else None
        _publish(settings, entry, previous)


@models_app.command("rollback")
def rollback(
    steps: Annotated[int, typer.Option(min=1, help="Promotions to undo.")] = 1,
    publish: Publish = True,
) -> None:
    """Undo the last promotion(s): the version promoted before becomes current and is republished."""
    settings = get_settings()
    before, entry = _move(settings, lambda registry: registry.rollback(steps))
    console.print(f"current: {entry.version} (rolled back from {before.version if before else '-'})")
    if publish:
        _publish(settings, entry, before.version if before else None)
