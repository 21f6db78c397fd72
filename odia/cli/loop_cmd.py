"""``odia demo`` (the main job: the whole loop and its report) and ``odia up`` (the loop's workers)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from odia_stream.demo.sizes import DEFAULT_DATASET, DemoSizes

#: The CLI's defaults are the demo's own.
_DEMO = DemoSizes()


def demo(
    dataset: str = typer.Option(
        DEFAULT_DATASET, help="synthetic:music (built-in, synthetic), or a HammerBench/SNIPS folder or FC-log JSONL."
    ),
    events: int = typer.Option(_DEMO.events, help="Events to generate (synthetic) or read (datasets)."),
    held_out: int = typer.Option(_DEMO.held_out, help="Held-out requests sent to serving and measured."),
    warmup: int = typer.Option(
        _DEMO.warmup, help="Other held-out requests serving answers first, not measured (it earns trust on them)."
    ),
    train_steps: int = typer.Option(_DEMO.train_steps, help="LoRA steps of the trainer's round."),
    train_minutes: float = typer.Option(_DEMO.train_minutes, help="Upper bound on training time."),
    rate: float = typer.Option(_DEMO.request_rate, help="Requests per second in phase 2."),
    router_precision: float = typer.Option(
        _DEMO.router_precision,
        help="The router's calibration target (the synthetic large model is inconsistent on ~3% of requests).",
    ),
    seed: int = typer.Option(0, help="Seed of the synthetic traffic and the split."),
    out: Path = typer.Option(Path("reports/demo"), help="Report directory (JSON, Markdown, PNG)."),
) -> None:
    """The main job: broker, agents, trainer and serving as processes; learn, distil, hot-swap, serve; report."""
    from rich.console import Console

    from odia.demo_loop import run_loop_demo
    from odia_stream.settings import get_settings

    sizes = dataclasses.replace(
        _DEMO, events=events, held_out=held_out, warmup=warmup, train_steps=train_steps, train_minutes=train_minutes,
        request_rate=rate, router_precision=router_precision,
    )
    run_loop_demo(get_settings(), dataset, sizes=sizes, seed=seed, out_dir=out, console=Console())


def up(
    services: str = typer.Option("agents,trainer,serving", help="Comma-separated workers to run."),
) -> None:
    """Run the loop's workers (and the local broker when configured) until Ctrl-C; stop them cleanly."""
    from odia.supervisor import supervise
    from odia_stream.settings import get_settings

    supervise(get_settings(), [s.strip() for s in services.split(",") if s.strip()])
