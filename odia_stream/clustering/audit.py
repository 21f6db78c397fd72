"""The ingest audit: what became of every input the learner was given, per partition.

Each input read from the FC-log topic gets exactly one outcome, counted in the learner's state in
the same transaction as the batch it came in (so the counts survive crashes and are never counted
twice):

* ``accepted``: applied to the clusters;
* ``duplicate``: an event id applied before, at a new offset (a producer sent it twice);
* ``replayed``: an offset read before (a restarted consumer re-reading), same content;
* ``dead_letter:<reason>``: rejected by validation and sent to the dead-letter topic.

``reused_offset`` counts, in addition, inputs at an offset at or below the partition's applied
watermark that were **new** (an event id never applied, or a rejected value never dead-lettered
there): the partition's offsets were reused (a topic recreated, a broker that lost its last
records, an unclean leader election). They are handled by event id, never taken for replays.

The audit adds up when every input has one outcome (``read`` = the sum of the four) and every
offset from the first one audited to the applied watermark is accounted for::

    offsets covered = accepted + duplicate + dead letters - reused_offset

A shortfall (``unaccounted`` > 0) is offsets that no input covered: records lost before the
learner saw them, or offsets Kafka itself skips (transaction markers, a compacted topic).

>>> a = PartitionAudit("fc", 0, first_offset=0, applied=9,
...                    counts=Counter(read=12, accepted=7, duplicate=1, replayed=2, **{"dead_letter:not_json": 2}))
>>> a.dead_letters, a.unaccounted, a.adds_up
({'not_json': 2}, 0, True)
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from schemas import IngestSummary, PartitionAuditRecord

if TYPE_CHECKING:  # views -> state_db -> this module
    from odia_stream.clustering.views import LearnerSummary

__all__ = [
    "ACCEPTED",
    "DEAD_LETTER",
    "DUPLICATE",
    "READ",
    "REPLAYED",
    "REUSED_OFFSET",
    "PartitionAudit",
    "Rejected",
    "audit_totals",
    "ingest_summary",
]

READ = "read"
ACCEPTED = "accepted"
DUPLICATE = "duplicate"
REPLAYED = "replayed"
REUSED_OFFSET = "reused_offset"
#: Prefix of the dead-letter outcomes (``dead_letter:<reason>``).
DEAD_LETTER = "dead_letter:"


@dataclass(frozen=True)
class Rejected:
    """An input the ingest agent dead-lettered, given to the learner with its batch so that the
    audit counts it and a re-read of the same value is not dead-lettered twice."""

    reason: str
    #: sha256 of the raw value (hex), which tells a re-read from new data at a reused offset.
    sha256: str

    @classmethod
    def of(cls, reason: str, raw: bytes | None) -> Rejected:
        """The rejection of raw value ``raw`` (``None``: a record without a value)."""
        return cls(reason, hashlib.sha256(raw or b"").hexdigest())


@dataclass(frozen=True)
class PartitionAudit:
    """The audit of one partition (see the module doc)."""

    topic: str
    partition: int
    #: The first offset audited (the start of the partition's range, or where auditing began).
    first_offset: int
    #: The highest offset applied.
    applied: int
    counts: Counter[str]

    @property
    def dead_letters(self) -> dict[str, int]:
        """Dead letters by reason."""
        return {k.removeprefix(DEAD_LETTER): n for k, n in sorted(self.counts.items()) if k.startswith(DEAD_LETTER)}

    @property
    def outcomes(self) -> int:
        """Inputs with an outcome: accepted, duplicates, replayed and dead letters."""
        c = self.counts
        return c[ACCEPTED] + c[DUPLICATE] + c[REPLAYED] + sum(self.dead_letters.values())

    @property
    def unaccounted(self) -> int:
        """Offsets from ``first_offset`` to ``applied`` that no input accounts for."""
        c = self.counts
        covered = c[ACCEPTED] + c[DUPLICATE] + sum(self.dead_letters.values()) - c[REUSED_OFFSET]
        return (self.applied - self.first_offset + 1) - covered

    @property
    def adds_up(self) -> bool:
        """Every input read has one outcome and every offset is accounted for."""
        return self.outcomes == self.counts[READ] and self.unaccounted == 0


def audit_totals(partitions: list[PartitionAudit]) -> Counter[str]:
    """The counts of all partitions summed."""
    total: Counter[str] = Counter()
    for p in partitions:
        total.update(p.counts)
    return total


def ingest_summary(summary: LearnerSummary, partitions: list[PartitionAudit]) -> IngestSummary:
    """The wire record of the learner's totals and audit (the cluster-state topic's summary)."""
    records = [
        PartitionAuditRecord(
            topic=a.topic, partition=a.partition, first_offset=a.first_offset, applied_offset=a.applied,
            counts=dict(sorted(a.counts.items())), unaccounted=a.unaccounted, adds_up=a.adds_up,
        )
        for a in partitions
    ]
    return IngestSummary(
        **asdict(summary), audit=records, totals=dict(sorted(audit_totals(partitions).items())),
        adds_up=all(a.adds_up for a in partitions),
    )
