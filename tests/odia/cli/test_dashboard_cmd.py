"""``odia dashboard`` as a person runs it: its own process, the real broker, Ctrl-C to stop."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Producer

from kafka_runtime.topics import ensure_topics
from odia.runner import settings_env
from odia_stream.settings import OdiaSettings
from schemas import ClusterState

pytestmark = pytest.mark.slow

ODIA = str(Path(sys.executable).parent / "odia")


def _start(settings: OdiaSettings, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **settings_env(settings), "COLUMNS": "200", "TERM": "dumb", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [ODIA, "dashboard", "--host", "127.0.0.1", *args], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _url_of(proc: subprocess.Popen[str], timeout_s: float = 60) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if m := re.search(r"dashboard at (http://\S+/)", line):
            return m.group(1)
    raise AssertionError(f"no URL printed; output: {''.join(seen)}")


def test_the_command_serves_the_topics_and_stops_on_ctrl_c(settings: OdiaSettings) -> None:
    t = settings.topics
    ensure_topics(settings.kafka, [t.cluster_state, t.responses, t.model_updates])
    state = ClusterState(
        cluster_id="c1", scope="app:default|tools:t|ctx:-", size=12, unique_queries=3,
        function_counts={"get_weather": 11, "<none>": 1}, dominant_function="get_weather", dominant_share=11 / 12,
        share_lower_bound=0.64, label="undecided", training_examples=0, sample_queries=["weather in Paris"],
        version=1, embedder_id="test",
    )
    p = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    p.produce(t.cluster_state.name, key=b"c1", value=state.model_dump_json().encode())
    assert p.flush(30) == 0

    proc = _start(settings, "--port", "0")
    try:
        url = _url_of(proc)
        deadline = time.monotonic() + 30
        while True:
            with urllib.request.urlopen(url + "api/state", timeout=10) as resp:
                doc = json.loads(resp.read())
            if doc["clusters"] or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert [(c["cluster_id"], c["dominant_function"], c["label"]) for c in doc["clusters"]] == [
            ("c1", "get_weather", "undecided")
        ]
        # A second dashboard on the same port fails with a clear message and exit code 1.
        port = url.rstrip("/").rsplit(":", 1)[1]
        second = _start(settings, "--port", port)
        out, _ = second.communicate(timeout=60)
        assert second.returncode == 1 and "cannot serve the dashboard" in out and "address already in use" in out
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
