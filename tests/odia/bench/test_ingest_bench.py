"""The ingest benchmark's parts: what the worker had to embed, and the bare-Faust floor."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kafka_runtime.topics import ensure_topics
from odia.bench.ingest_bench import faust_floor, worker_embed_calls
from odia.replay_producer import ReplayProducer
from odia_stream.settings import OdiaSettings
from odia_stream.templates import EntityDictionary, QueryTemplater
from schemas import FCLogEvent


def _ev(i: int, app: str, query: str) -> FCLogEvent:
    return FCLogEvent(event_id=f"{app}-{i}", app=app, query=query)


def test_each_micro_batch_embeds_its_new_texts_once() -> None:
    d = EntityDictionary()
    d.add("artist", "Adele")
    d.add("artist", "Sia")
    templaters = {"a": QueryTemplater(d), "b": QueryTemplater(EntityDictionary())}
    replay = [
        _ev(0, "a", "play Adele"), _ev(1, "b", "hello"), _ev(2, "a", "play Adele"),  # a repeat
        _ev(3, "a", "Play  Sia"),  # same template as "play adele": the worker's cache has it
        _ev(4, "a", "stop"), _ev(5, "b", "hello there"), _ev(6, "a", "next"),
    ]
    calls = worker_embed_calls(templaters.__getitem__, replay, batch_size=2, mode="app")
    # app a's windows of 2 events: [0, 2], [3, 4], [6]; app b's: [1, 5]
    assert calls == [["play <artist>"], ["hello", "hello there"], ["stop"], ["next"]]


@pytest.mark.slow
def test_the_faust_floor_reads_every_event_of_the_topic(make_settings: Callable[..., OdiaSettings]) -> None:
    s = make_settings()
    ensure_topics(s.kafka, s.topics.all())
    events = [_ev(i, "a", f"query {i}") for i in range(300)]
    with ReplayProducer(s.kafka, s.topics.fc_logs.name) as producer:
        assert producer.publish(events).ok
    floor = faust_floor(s, len(events), timeout_s=120)
    assert floor["events"] == len(events)
    assert floor["seconds"] > 0 and floor["events_per_s"] == pytest.approx(len(events) / floor["seconds"])
