"""``odia`` sub-commands. Heavy imports happen inside commands so ``odia --help`` is instant."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from odia_stream.settings import get_settings

app = typer.Typer(help="odia-stream: learn simple function calls from the FC-log stream.", no_args_is_help=True)
broker_app = typer.Typer(help="The local development broker (noida-db).", no_args_is_help=True)
topics_app = typer.Typer(help="Topics of the loop.", no_args_is_help=True)
agents_app = typer.Typer(help="The Faust ingest agents.", no_args_is_help=True)
clusters_app = typer.Typer(help="The learned clusters.", no_args_is_help=True)
ingest_app = typer.Typer(help="What the ingest agents did with the FC-log stream.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print their figures.", no_args_is_help=True)
app.add_typer(broker_app, name="broker")
app.add_typer(topics_app, name="topics")
app.add_typer(agents_app, name="agents")
app.add_typer(clusters_app, name="clusters")
app.add_typer(ingest_app, name="ingest")
app.add_typer(bench_app, name="bench")
console = Console()


def _broker():
    from kafka_runtime.local_broker import LocalBroker

    s = get_settings()
    return LocalBroker(s.broker_dir, port=s.kafka.local_port)


@broker_app.command("up")
def broker_up() -> None:
    """Start the local broker on 127.0.0.1 (data under the state dir)."""
    st = _broker().up()
    console.print(f"[green]broker up[/] at {st.address} (data {st.data_dir})")


@broker_app.command("down")
def broker_down() -> None:
    """Stop the local broker (its data is kept)."""
    _broker().down()
    console.print("broker down")


@broker_app.command("status")
def broker_status() -> None:
    """Whether the local broker answers."""
    st = _broker().status()
    console.print(f"broker {'[green]running[/]' if st.running else '[red]not running[/]'} at {st.address}")
    raise typer.Exit(0 if st.running else 1)


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic with its partition count (compacted where the design says so)."""
    from kafka_runtime.topics import ensure_topics

    s = get_settings()
    table = Table("topic", "partitions", "compacted", "outcome")
    failed = False
    for r in ensure_topics(s.kafka, s.topics.all()):
        table.add_row(r.name, str(r.partitions), "yes" if r.compacted else "", r.outcome + (f": {r.error}" if r.error else ""))
        failed |= r.outcome == "failed"
    console.print(table)
    raise typer.Exit(1 if failed else 0)


@agents_app.command("run")
def agents_run(loglevel: str = typer.Option("info", help="Log level.")) -> None:
    """Run the ingest worker until interrupted."""
    from agents.worker import run

    run(get_settings(), loglevel)


@clusters_app.command("summary")
def clusters_summary(top: int = typer.Option(15, help="Largest clusters to list.")) -> None:
    """Print the learned clusters (reads the learner's state; stop the worker first for the embedded store)."""
    from odia.cli.cluster_summary import print_cluster_summary
    from odia_stream.clustering.factory import open_learner

    learner = open_learner(get_settings())
    try:
        print_cluster_summary(learner, console, top=top)
    finally:
        learner.close()


@bench_app.command("ingest")
def bench_ingest(
    dataset: list[Path] = typer.Option(
        [Path("../shared/datasets/snips"), Path("../shared/datasets/hammerbench/zh")], help="Datasets to draw base records from."
    ),
    events: int = typer.Option(20_000, help="Events in the Zipf replay."),
    base_events: int = typer.Option(6_000, help="Base records the replay resamples."),
    sizes: str = typer.Option("10000,100000", help="Store sizes for the clustering-cost figure."),
    out: Path = typer.Option(Path("reports/bench"), help="Where ingest.json goes."),
    scope: str = typer.Option("context", help="Clustering scope (HammerBench offers random tool sets: context)."),
    embedder: str = typer.Option(None, help="Embedder to measure (default: the configured one)."),
) -> None:
    """End-to-end ingest throughput vs the embedder alone, purity, clustering cost vs store size."""
    from odia.bench.ingest_bench import run_ingest_bench

    s = get_settings()
    s = s.model_copy(
        update={
            "clustering": s.clustering.model_copy(update={"scope": scope}),
            "embedding": s.embedding.model_copy(update={"model": embedder or s.embedding.model}),
        }
    )
    run_ingest_bench(
        s, dataset, events=events, base_events=base_events,
        cost_sizes=tuple(int(x) for x in sizes.split(",")), out_dir=out, console=console,
    )


def _register_optional() -> None:
    """Commands whose modules live beside this one."""
    from odia.cli.models_cmd import models_app

    app.add_typer(models_app, name="models")
    from odia.cli.loop_cmd import demo, up

    app.command("demo", help="The main job: the whole learning loop, then its report.")(demo)
    app.command("up", help="Run the loop's workers under one supervisor (Ctrl-C stops them).")(up)
    from odia.cli.replay_cmd import replay

    app.command("replay", help="Publish a dataset's FC logs to the fc-logs topic.")(replay)
    from odia.cli.trainer_cmd import trainer_app

    app.add_typer(trainer_app, name="trainer")
    from odia.cli.bench_train_cmd import bench_train

    bench_app.command("train", help="LoRA cost and accuracy before/after on held-out records.")(bench_train)
    from odia.cli.bench_engines_cmd import bench_engines

    bench_app.command("engines", help="Small-generator engines side by side: latency, adapter load, accuracy, memory.")(
        bench_engines
    )
    from odia.cli.dashboard_cmd import dashboard

    app.command("dashboard", help="Serve the web dashboard (clusters, coverage, versions).")(dashboard)
    from odia.cli.prompt_tokens_cmd import prompt_tokens

    app.command("prompt-tokens", help="Tokens per prompt/output with each token-saving option on and off.")(prompt_tokens)
    from odia.cli.serve_cmd import register as register_serve

    register_serve(app, bench_app)
    from odia.cli.router_cmd import bench_router

    bench_app.command("router", help="Router precision, coverage and latency on held-out splits.")(bench_router)
    from odia.cli.templates_cmd import bench_templates

    bench_app.command("templates", help="Template-tier share, agreement and assembly latency on held-out splits.")(
        bench_templates
    )
    from odia.cli.faults_cmd import bench_faults

    bench_app.command("faults", help="The ingest worker under faults: records in, accounted for, lost, recovery.")(
        bench_faults
    )
    from odia.cli.ingest_cmd import ingest_audit

    ingest_app.command("audit", help="Per partition: records read, accepted, duplicates, replays, dead letters; does it add up?")(
        ingest_audit
    )


_register_optional()


def main() -> None:
    """Console entry point."""
    app()


def dump_json(path: Path, data: object) -> None:
    """Write ``data`` as pretty JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
