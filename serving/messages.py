"""Messages of a ``consume()`` batch that carry data; the batch's consumer errors are logged
(end-of-partition events are dropped silently)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from confluent_kafka import KafkaError, Message

__all__ = ["with_data"]

log = logging.getLogger("odia.serving")


def with_data(batch: Iterable[Message]) -> list[Message]:
    """The messages of ``batch`` without an error (see the module docstring)."""
    out: list[Message] = []
    for msg in batch:
        err = msg.error()
        if err is None:
            out.append(msg)
        elif err.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error: %s", err)
    return out
