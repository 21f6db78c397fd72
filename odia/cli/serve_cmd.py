"""``odia serve run`` (the serving consumer) and ``odia bench serve`` (its benchmark)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from odia_stream.settings import get_settings

__all__ = ["bench_serve", "register", "serve_app", "serve_run"]

serve_app = typer.Typer(help="The serving consumer: route, answer, hot-swap.", no_args_is_help=True)
console = Console()


@serve_app.command("run")
def serve_run(
    backend: Annotated[
        str | None,
        typer.Option(help="Small-generator backend: auto, llamacpp, hf, vllm, http (default: serving.backend)."),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Prometheus port (default: serving.metrics_port; 0 = any free).", min=0, max=65535),
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Answer the requests topic until SIGINT/SIGTERM, following the model-updates topic."""
    from serving.app import run

    s = get_settings()
    update: dict[str, object] = {}
    if backend is not None:
        update["backend"] = backend
    if metrics_port is not None:
        update["metrics_port"] = metrics_port
    run(s.model_copy(update={"serving": s.serving.model_copy(update=update)}), loglevel)


def bench_serve(
    backend: Annotated[str, typer.Option(help="Small-generator backend: auto, llamacpp, hf, vllm, http.")] = "auto",
    dataset: Annotated[
        Path, typer.Option(help="SNIPS folder the requests and the replayed large model come from.")
    ] = Path("../shared/datasets/snips"),
    requests: Annotated[
        int, typer.Option(help="Requests per phase (routed run and all-large baseline).", min=4)
    ] = 64,
    concurrency: Annotated[
        int, typer.Option(help="Requests kept open at once by the closed-loop client.", min=1)
    ] = 4,
    train_steps: Annotated[int, typer.Option(help="LoRA steps of each of the two adapters.", min=1)] = 6,
    large_median_ms: Annotated[
        float, typer.Option(help="Median latency of the simulated large model.")
    ] = 1600.0,
    large_p90_ms: Annotated[float, typer.Option(help="P90 latency of the simulated large model.")] = 2500.0,
    budget_ms: Annotated[
        float | None, typer.Option(help="Small-model latency budget (default: serving setting).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Where serve.json and serve_latency.png go.")] = Path(
        "reports/bench"
    ),
) -> None:
    """Latency p50/p90/p99 (small, large, overall) against an all-large baseline; throughput; swap time."""
    from odia.bench.serve_bench import ServeBenchConfig, run_serve_bench

    config = ServeBenchConfig(
        backend=backend,
        dataset=dataset,
        requests=requests,
        concurrency=concurrency,
        train_steps=train_steps,
        large_median_ms=large_median_ms,
        large_p90_ms=large_p90_ms,
        budget_ms=budget_ms,
        out_dir=out,
    )
    run_serve_bench(get_settings(), config, console=console)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``odia serve …`` and ``odia bench serve`` to the CLI."""
    app.add_typer(serve_app, name="serve")
    bench_app.command("serve", help="Serving latency, throughput and hot-swap figures.")(bench_serve)
