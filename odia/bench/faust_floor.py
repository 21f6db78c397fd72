"""The Faust floor: how fast a bare Faust agent reads a topic (count and ack, nothing else).

``odia bench ingest`` runs it on the replay topic after the real worker, so the report shows
how much of the end-to-end time Faust's own per-event path takes on this machine, the ceiling
any Faust-based ingest can reach. Run as ``python -m odia.bench.faust_floor BOOTSTRAP TOPIC N OUT``;
it writes ``{"events", "seconds", "events_per_s"}`` as JSON to the file ``OUT`` and exits.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

import faust

from agents.app import broker_url
from kafka_runtime.security import faust_credentials
from odia_stream.settings import get_settings


def main(argv: list[str]) -> None:
    """Read ``N`` events of ``TOPIC`` with a fresh consumer group and write the timing to ``OUT``."""
    bootstrap, topic, expected, out = argv[0], argv[1], int(argv[2]), Path(argv[3])
    app_id = f"odia-faust-floor-{uuid.uuid4().hex[:8]}"
    app = faust.App(
        app_id,
        broker=broker_url(bootstrap),
        # The security settings come from the environment, as in every process.
        broker_credentials=faust_credentials(get_settings().kafka),
        store="memory://",
        value_serializer="raw",
        key_serializer="raw",
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        web_enabled=False,
        datadir=str(out.parent / app_id),
    )
    source = app.topic(topic, allow_empty=True)
    seen = {"n": 0, "t0": 0.0}

    @app.agent(source, name="floor")
    async def count(stream: faust.StreamT) -> None:
        async for event in stream.noack().events():
            if seen["n"] == 0:
                seen["t0"] = time.perf_counter()
            seen["n"] += 1
            event.ack()
            if seen["n"] >= expected:
                seconds = time.perf_counter() - seen["t0"]
                out.write_text(json.dumps({"events": seen["n"], "seconds": seconds, "events_per_s": seen["n"] / seconds}))
                os._exit(0)  # a measurement process: nothing to clean up but the group, which expires

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()


if __name__ == "__main__":
    main(sys.argv[1:])
