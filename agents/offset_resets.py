"""Out-of-range fetches, said loudly: the consumer's position was no longer on the partition.

aiokafka (under Faust) answers a fetch whose offset the broker no longer has (records deleted by
retention, a topic deleted and recreated, a broker that lost its last records, an unclean leader
election) by moving to the ``auto_offset_reset`` end of the partition, and says so once at INFO
level. For the ingest worker that is a fault an operator must see: records may have been lost
before they were read, or offsets are reused. :class:`OutOfRangeAlarm` raises that line to a
WARNING that says what happened and what the learner does about it, and counts it per partition
(``odia_ingest_offset_resets_total``). What is read after the reset is handled by event id: new
events at reused offsets are applied and counted as ``reused_offset`` in the audit; offsets that
were skipped show as ``unaccounted``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

__all__ = ["FETCHER_LOGGER", "OutOfRangeAlarm", "install_out_of_range_alarm"]

#: The logger aiokafka's fetcher reports an out-of-range fetch on.
FETCHER_LOGGER = "aiokafka.consumer.fetcher"
_MARKER = "is out of range for partition"


class OutOfRangeAlarm(logging.Filter):
    """A filter for :data:`FETCHER_LOGGER` that turns its out-of-range line into a WARNING."""

    def __init__(self, reset_policy: str) -> None:
        super().__init__()
        self.reset_policy = reset_policy
        self._lock = threading.Lock()
        self._resets: Counter[tuple[str, int]] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and _MARKER in record.msg and len(record.args or ()) == 2):
            return True
        offset, tp = record.args  # type: ignore[misc]
        topic, partition = getattr(tp, "topic", str(tp)), getattr(tp, "partition", -1)
        with self._lock:
            self._resets[(topic, partition)] += 1
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.msg = (
            "offset reset on %s/%s: fetch offset %s is no longer on the partition (records deleted by "
            "retention, the topic recreated, or records lost by the broker); the consumer restarts at its "
            "'%s' end. The learner handles what it reads by event id: new events at reused offsets are "
            "applied (audit: reused_offset), skipped offsets show as unaccounted (odia ingest audit)."
        )
        record.args = (topic, partition, offset, self.reset_policy)
        return True

    def resets(self) -> dict[tuple[str, int], int]:
        """Out-of-range fetches seen, per (topic, partition)."""
        with self._lock:
            return dict(self._resets)


def install_out_of_range_alarm(reset_policy: str) -> OutOfRangeAlarm:
    """Attach an :class:`OutOfRangeAlarm` to aiokafka's fetcher logger (which is set to INFO so
    that its out-of-range line is emitted at all; the fetcher logs nothing else at INFO)."""
    logger = logging.getLogger(FETCHER_LOGGER)
    for existing in logger.filters:
        if isinstance(existing, OutOfRangeAlarm):
            return existing
    alarm = OutOfRangeAlarm(reset_policy)
    logger.addFilter(alarm)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    return alarm
