"""The ingest main job: local broker, topics, the worker in its own process, a dataset replay,
then the cluster summary. ``odia demo`` runs it (the full loop of later issues extends it)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from agents.replay_producer import ReplayProducer, ReplayStats
from agents.runner import WorkerProcess, wait_caught_up
from agents.topics import ensure_topics
from odia_stream.clustering.factory import open_learner
from odia_stream.clustering.learner import LearnerSummary
from odia_stream.datasets import load_dataset, zipf_resample
from odia_stream.local_broker import LocalBroker
from odia_stream.reporting import print_cluster_summary
from odia_stream.settings import OdiaSettings


@dataclass(frozen=True)
class IngestDemoResult:
    """What the main job measured."""

    replay: ReplayStats
    summary: LearnerSummary
    seconds_to_catch_up: float


def run_ingest_demo(
    settings: OdiaSettings,
    dataset: Path,
    *,
    limit: int | None = None,
    zipf: int | None = None,
    seed: int = 0,
    console: Console | None = None,
    use_local_broker: bool = True,
) -> IngestDemoResult:
    """Run the ingest loop end to end and print what it learned."""
    console = console or Console()
    if not use_local_broker:
        console.print(f"[bold]1/5[/] using the broker at {settings.kafka.bootstrap_servers}")
        return _run(settings, dataset, limit, zipf, seed, console)
    broker = LocalBroker(settings.broker_dir, port=settings.kafka.local_port)
    with broker.running() as started:
        console.print(f"[bold]1/5[/] local broker at {broker.address}" + ("" if started else " (already running)"))
        return _run(settings, dataset, limit, zipf, seed, console)


def _run(
    settings: OdiaSettings, dataset: Path, limit: int | None, zipf: int | None, seed: int, console: Console
) -> IngestDemoResult:
    ensure_topics(settings.kafka.bootstrap_servers, settings.topics.all())
    console.print(f"[bold]2/5[/] topics ready ({len(settings.topics.all())})")

    if not dataset.exists():
        raise FileNotFoundError(f"dataset not found: {dataset} (pass --dataset PATH)")
    events = list(load_dataset(dataset, limit=limit))
    if zipf:
        events = list(zipf_resample(events, zipf, seed=seed))
    console.print(f"[bold]3/5[/] starting the ingest worker (loads the embedder; logs: {settings.state_dir / 'worker.log'})")
    worker = WorkerProcess(settings, settings.state_dir / "worker.log")
    worker.start()
    try:
        console.print(f"[bold]4/5[/] replaying {len(events)} events from {dataset}")
        stats = ReplayProducer(settings.kafka.bootstrap_servers, settings.topics.fc_logs.name).publish(events, progress=True)
        t0 = time.monotonic()
        with console.status("waiting for the worker to apply every event"):
            wait_caught_up(settings, worker, timeout_s=1800)
        caught_up = time.monotonic() - t0
    finally:
        worker.stop()
    console.print(f"[bold]5/5[/] the worker caught up {caught_up:.1f}s after the replay; what it learned:")
    learner = open_learner(settings)
    try:
        print_cluster_summary(learner, console)
        summary = learner.summary()
    finally:
        learner.close()
    return IngestDemoResult(stats, summary, caught_up)
