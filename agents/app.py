"""The Faust application of odia-stream, built from settings (no module-level globals)."""

from __future__ import annotations

import socket

import faust

from kafka_runtime.security import faust_credentials
from odia_stream.settings import OdiaSettings

#: Where the consumer starts on a partition without a committed offset, or after an out-of-range
#: fetch (:mod:`agents.offset_resets`): the earliest record, so nothing still on the topic is skipped.
AUTO_OFFSET_RESET = "earliest"


def broker_url(bootstrap_servers: str) -> str:
    """Faust's broker URL for a Kafka bootstrap list (``h1:9092,h2:9092``)."""
    return ";".join(f"kafka://{h.strip()}" for h in bootstrap_servers.split(",") if h.strip())


def create_app(settings: OdiaSettings) -> faust.App:
    """A Faust app talking to ``settings.kafka.bootstrap_servers`` with the Kafka security settings
    (:func:`kafka_runtime.security.faust_credentials`); topics are created by ``odia topics
    create`` beforehand (Faust's own topic declaration is not relied upon)."""
    return faust.App(
        settings.app_id,
        broker=broker_url(settings.kafka.bootstrap_servers),
        broker_credentials=faust_credentials(settings.kafka),
        store="memory://",
        datadir=str(settings.state_dir / "faust"),  # not ./<app_id>-data in the working directory
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.topics.fc_logs.partitions,
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset=AUTO_OFFSET_RESET,
        web_enabled=False,
        producer_acks=-1,
        broker_commit_interval=1.0,
        stream_wait_empty=False,
        consumer_group_instance_id=settings.kafka.group_instance_id or f"{settings.app_id}-{socket.gethostname()}",
        broker_session_timeout=30.0,
    )
