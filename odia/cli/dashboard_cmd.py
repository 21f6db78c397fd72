"""``odia dashboard``: serve the web page over the cluster-state, response and model-update topics."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from odia_stream.settings import get_settings

if TYPE_CHECKING:
    from odia.dashboard_server import DashboardServer

__all__ = ["dashboard"]


def dashboard(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: settings' dashboard.host).")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default: settings' dashboard.port; 0 = any free).", min=0, max=65535)
    ] = None,
    from_beginning: Annotated[
        bool,
        typer.Option(
            "--from-beginning/--live",
            help="Read the response topic from its beginning (coverage history) or only new responses. "
            "Cluster states and model updates are always read in full (last value per key).",
        ),
    ] = False,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "warning",
) -> None:
    """Serve the dashboard until interrupted: clusters, coverage and latency over time, model versions."""
    from odia.dashboard_server import DashboardServer

    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console = Console()
    settings = get_settings()
    server = DashboardServer(settings, host=host, port=port, from_beginning=from_beginning)

    def started(url: str) -> None:
        console.print(f"[green]dashboard[/] at {url} (broker {settings.kafka.bootstrap_servers}); Ctrl-C stops it")
        threading.Thread(target=_show_catch_up, args=(server, console), daemon=True).start()

    try:
        server.serve_forever(on_started=started)
    except OSError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc


def _show_catch_up(server: DashboardServer, console: Console, timeout_s: float = 3600.0) -> None:
    """A progress bar over the backlog present at start, until it is read."""
    deadline = time.monotonic() + timeout_s
    with Progress(
        TextColumn("reading topics"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    ) as bar:
        task = bar.add_task("backlog", total=None)
        while time.monotonic() < deadline:
            p = server.feed.progress()
            bar.update(task, total=p.backlog if p.partitions else None, completed=p.read)
            if p.caught_up:
                break
            time.sleep(0.5)
