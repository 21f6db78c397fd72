"""Property: whatever malformed input arrives, each one lands in the DLQ with a reason, none is
lost, and the running worker stays up."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings as hyp_settings
from hypothesis import strategies as st

from odia.replay_producer import ReplayProducer
from odia.runner import WorkerProcess, group_lag
from kafka_runtime.topics import ensure_topics
from odia_stream.dead_letter_store import DeadLetterStore
from odia_stream.settings import OdiaSettings
from odia_stream.validation import InvalidEvent, parse_event
from schemas import DeadLetter

pytestmark = pytest.mark.slow

GOOD_TOOL = {"name": "play_song", "parameters": {"type": "object", "properties": {"song": {"type": "string"}}}}
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3), max_leaves=8)



def _rejected(raw: bytes) -> bool:
    """Whether the reference validator rejects ``raw`` (a generated field value may be valid,
    e.g. ``"tools": []``)."""
    try:
        parse_event(raw)
    except InvalidEvent:
        return True
    return False


malformed = st.one_of(
    st.binary(max_size=64).filter(lambda b: not b.strip().startswith(b"{")),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda q: json.dumps({"event_id": "x", "query": q, "tools": [GOOD_TOOL]}).encode(), st.text(" \t\n\u3000", max_size=5)),
    st.builds(
        lambda name: json.dumps({"event_id": "x", "query": "play", "tools": [GOOD_TOOL], "call": {"name": name}}).encode(),
        st.text(min_size=1, max_size=10).filter(lambda n: n != "play_song" and n.strip() == n),
    ),
    st.builds(lambda field, v: json.dumps({"event_id": "x", "query": "play", "tools": [GOOD_TOOL], field: v}).encode(),
              st.sampled_from(["tools", "history", "call", "timestamp", "latency_ms", "app"]), json_values),
).filter(_rejected)


@pytest.fixture(scope="module")
def live_worker(make_settings: Callable[..., OdiaSettings]) -> Iterator[tuple[OdiaSettings, WorkerProcess]]:
    s = make_settings(batch_timeout_s=0.5, batch_size=64)
    ensure_topics(s.kafka, s.topics.all())
    worker = WorkerProcess(s, s.state_dir / "worker.log")
    worker.start()
    yield s, worker
    rc = worker.stop()
    assert rc == 0, worker.log_tail()


@hyp_settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.lists(malformed, min_size=1, max_size=12))
def test_every_malformed_input_is_dead_lettered_with_a_reason(
    live_worker: tuple[OdiaSettings, WorkerProcess], read_topic: Callable[..., list], values: list[bytes]
) -> None:
    s, worker = live_worker
    before = len(read_topic(s.kafka.bootstrap_servers, s.topics.dead_letters.name))
    with ReplayProducer(s.kafka, s.topics.fc_logs.name) as producer:
        assert producer.publish_raw(values).ok
    deadline = time.monotonic() + 120
    while True:
        _, lag = group_lag(s.kafka, s.app_id, s.topics.fc_logs.name)
        if lag == 0:
            break
        assert worker.alive(), worker.log_tail()
        assert time.monotonic() < deadline, "worker did not catch up"
        time.sleep(0.3)
    letters = [DeadLetter.model_validate_json(v) for _, v in read_topic(s.kafka.bootstrap_servers, s.topics.dead_letters.name)]
    new = letters[before:]
    assert sorted(d.raw() for d in new) == sorted(values)
    assert all(d.reason and d.reason_code for d in new)
    assert worker.alive()


def test_rejected_values_near_the_message_limit_are_dead_lettered_and_kept_whole(
    live_worker: tuple[OdiaSettings, WorkerProcess], read_topic: Callable[..., list]
) -> None:
    """A dead letter carrying a 0.9 MB value inline outgrew the producer's limit and was lost (no
    record, no count). Now the record keeps the value's start, its size and sha256, and names the
    file that holds it whole."""
    s, worker = live_worker
    not_json = b"\x00not json " * 90_000  # 900 kB
    long_query = json.dumps({"event_id": "big", "query": "play " * 190_000, "tools": [GOOD_TOOL]}).encode()
    before = len(read_topic(s.kafka.bootstrap_servers, s.topics.dead_letters.name))
    with ReplayProducer(s.kafka, s.topics.fc_logs.name) as producer:
        assert producer.publish_raw([not_json, long_query]).ok
    deadline = time.monotonic() + 120
    while group_lag(s.kafka, s.app_id, s.topics.fc_logs.name)[1] != 0:
        assert worker.alive(), worker.log_tail()
        assert time.monotonic() < deadline, "worker did not catch up"
        time.sleep(0.3)
    new = [DeadLetter.model_validate_json(v)
           for _, v in read_topic(s.kafka.bootstrap_servers, s.topics.dead_letters.name)][before:]
    assert sorted(d.reason_code for d in new) == ["not_json", "schema"]  # the query is over 20,000 characters
    store = DeadLetterStore(str(s.state_dir / "dead-letters"))
    for letter, value in zip(sorted(new, key=lambda d: d.reason_code), (not_json, long_query), strict=True):
        assert letter.raw_truncated and letter.raw_size == len(value)
        assert letter.raw() == value[: s.dead_letters.max_inline_bytes]
        assert letter.raw_sha256 == hashlib.sha256(value).hexdigest()
        assert letter.raw_uri is not None and store.get(letter.raw_uri) == value
    assert worker.alive()
