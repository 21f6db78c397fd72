"""What a serving replica did since it started: one :class:`ConsumerCounters`, shared by the
consumer's parts (each counts its own fields; all run on the consumer's event loop or its
request-consumer thread)."""

from __future__ import annotations

from dataclasses import dataclass, field

from odia_stream.serving import SwapOutcome

__all__ = ["ConsumerCounters"]


@dataclass
class ConsumerCounters:
    """What the consumer did since it started."""

    #: Requests taken up (a message the client delivered again in the same assignment is not:
    #: it counts in ``redelivered`` and is not answered twice).
    consumed: int = 0
    redelivered: int = 0
    answered: int = 0
    malformed: int = 0
    redirected: int = 0
    delivery_retries: int = 0
    commits: int = 0
    #: Times partitions were taken from this replica (rebalances, and closing), and the requests
    #: open on them then (let finish before the partitions were given up, up to
    #: ``serving.drain_timeout_s``; at shutdown they already had that time).
    revocations: int = 0
    open_at_revocation: int = 0
    updates_seen: int = 0
    updates_invalid: int = 0
    swaps: list[SwapOutcome] = field(default_factory=list)
