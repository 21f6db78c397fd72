"""Start the serving process: generator backend, large model, router loader, consumer, metrics endpoint."""

from __future__ import annotations

import asyncio
import logging
import signal

from kafka_runtime.topics import ensure_topics
from odia_stream.large_model import build_large_model
from odia_stream.serving import ServingRuntime, build_generator, build_runtime, resolve_backend
from odia_stream.serving.routers import router_loader_for
from odia_stream.settings import OdiaSettings, get_settings
from serving.consumer import ConsumerCounters, ServingConsumer, start_metrics_server

__all__ = ["main", "run", "serve"]

log = logging.getLogger("odia.serving")


async def start_runtime(settings: OdiaSettings) -> ServingRuntime:
    """The serving objects the settings describe (starts the generator: seconds to a minute)."""
    backend = resolve_backend(settings.serving.backend)
    log.info("starting the %s small-generator backend", backend)
    generator = await build_generator(settings, backend)
    try:
        large = build_large_model(settings)
    except Exception:
        await generator.aclose()
        raise
    return build_runtime(
        settings, generator=generator, large_model=large, router_loader=router_loader_for(settings), backend=backend
    )


async def serve(settings: OdiaSettings) -> ConsumerCounters:
    """Serve until SIGINT/SIGTERM; then finish open requests and close."""
    ensure_topics(settings.kafka, settings.topics.all())
    runtime = await start_runtime(settings)
    server = start_metrics_server(runtime)
    consumer = ServingConsumer(settings, runtime)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, consumer.stop)
    try:
        return await consumer.run()
    finally:
        await runtime.aclose()
        if server is not None:
            server.shutdown()


def run(settings: OdiaSettings | None = None, loglevel: str = "info") -> ConsumerCounters:
    """Run the serving consumer in this process until interrupted."""
    settings = settings or get_settings()
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    counters = asyncio.run(serve(settings))
    log.info(
        "served %d request(s) (%d malformed), %d swap(s)",
        counters.answered,
        counters.malformed,
        sum(1 for s in counters.swaps if s.status == "swapped"),
    )
    return counters


def main() -> None:
    """``python -m serving``."""
    run()
