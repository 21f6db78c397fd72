"""Out-of-range fetches are said loudly (issue 17): a real aiokafka consumer, on the real broker,
whose group's committed offset is past the end of its partition (as after a topic was recreated)."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer, Producer, TopicPartition

from agents.app import AUTO_OFFSET_RESET
from agents.offset_resets import FETCHER_LOGGER, OutOfRangeAlarm, install_out_of_range_alarm
from kafka_runtime.topics import ensure_topics
from odia_stream.settings import TopicSpec


def test_other_fetcher_lines_pass_unchanged() -> None:
    alarm = OutOfRangeAlarm("earliest")
    record = logging.LogRecord(FETCHER_LOGGER, logging.WARNING, __file__, 1, "Not authorized to read from topic %s.", ("t",), None)
    assert alarm.filter(record) and record.getMessage() == "Not authorized to read from topic t."
    assert alarm.resets() == {}


@pytest.mark.slow
def test_an_out_of_range_fetch_is_a_counted_warning(kafka_bootstrap: str, caplog: pytest.LogCaptureFixture) -> None:
    topic, group = f"oor-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, [TopicSpec(name=topic, partitions=1)])
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(3):
        producer.produce(topic, value=b"v%d" % i)
    assert producer.flush(10) == 0
    # The group committed offset 100 of a partition that now ends at 3: its records were reused.
    committer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group, "enable.auto.commit": False})
    committer.commit(offsets=[TopicPartition(topic, 0, 100)], asynchronous=False)
    committer.close()

    alarm = install_out_of_range_alarm(AUTO_OFFSET_RESET)
    assert install_out_of_range_alarm(AUTO_OFFSET_RESET) is alarm  # installed once

    async def read_three() -> list[int]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, group_id=group,
            auto_offset_reset=AUTO_OFFSET_RESET, enable_auto_commit=False,
        )
        await consumer.start()
        offsets: list[int] = []
        try:
            async with asyncio.timeout(30):
                async for message in consumer:
                    offsets.append(message.offset)
                    if len(offsets) == 3:
                        return offsets
        finally:
            await consumer.stop()
        return offsets

    with caplog.at_level(logging.INFO, logger=FETCHER_LOGGER):  # as install_out_of_range_alarm sets it
        assert asyncio.run(read_three()) == [0, 1, 2]  # from the earliest record, nothing skipped
    warnings = [r for r in caplog.records if r.name == FETCHER_LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    text = warnings[0].getMessage()
    assert f"offset reset on {topic}/0: fetch offset 100" in text and "'earliest'" in text and "reused_offset" in text
    assert alarm.resets()[(topic, 0)] == 1
