"""Run the ingest worker: ``odia agents run`` (or ``python -m agents.worker``)."""

from __future__ import annotations

import logging

import faust

from agents.app import AUTO_OFFSET_RESET, create_app
from agents.ingest import IngestService
from agents.metrics import start_ingest_metrics
from agents.offset_resets import install_out_of_range_alarm
from kafka_runtime.idle_pacing import pace_aiokafka_fetches
from kafka_runtime.topics import ensure_topics
from odia_stream.clustering.factory import open_embedder, open_learner
from odia_stream.settings import OdiaSettings, get_settings


def build_worker(settings: OdiaSettings, loglevel: str = "info") -> tuple[faust.Worker, IngestService]:
    """Create topics if missing, open the learner (loads the embedder) and build the worker."""
    ensure_topics(settings.kafka, settings.topics.all())
    pace_aiokafka_fetches(settings.kafka.idle_backoff_ms)
    # Leave the event loop a core: torch's OpenMP workers (and BLAS threads) otherwise spin against it.
    threads = settings.embedding.threads_in_worker()
    set_torch_threads(threads)
    learner = open_learner(settings, embedder=open_embedder(settings, threads=threads))
    app = create_app(settings)
    service = IngestService(app, settings, learner)
    alarm = install_out_of_range_alarm(AUTO_OFFSET_RESET)
    start_ingest_metrics(settings, learner.audit, alarm.resets, lambda: service.blocked is not None)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    return worker, service


def set_torch_threads(threads: int | None) -> int | None:
    """Set torch's intra-op thread count (when given) and return the previous one; ``None`` when
    torch is not installed (USE is numpy)."""
    try:
        import torch
    except ImportError:
        return None
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    return before


def run(settings: OdiaSettings | None = None, loglevel: str = "info") -> None:
    """Run until SIGINT/SIGTERM; the learner's store is flushed and closed on the way out."""
    settings = settings or get_settings()
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker, service = build_worker(settings, loglevel)
    try:
        worker.execute_from_commandline()
    finally:
        service.learner.close()


if __name__ == "__main__":
    run()
