"""``DeadLetter``: an input that was rejected, with the reason and where it came from."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.common import WireModel, utc_now

#: Why an input was rejected (``reason_code``).
ReasonCode = Literal["not_json", "not_utf8", "schema", "empty_query", "unknown_function", "too_large", "processing_error"]


class DeadLetter(WireModel):
    """A rejected input kept verbatim (base64) with a machine code and a human reason."""

    schema_version: Literal[1] = 1
    reason_code: ReasonCode
    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    source_key_b64: str | None = None
    raw_b64: str = Field(description="The rejected value, base64-encoded, byte for byte")
    event_id: str | None = Field(default=None, description="The event id, when one could be read")
    rejected_at: datetime = Field(default_factory=utc_now)

    @classmethod
    def of_record(
        cls,
        reason_code: ReasonCode,
        reason: str,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        event_id: str | None = None,
    ) -> DeadLetter:
        """The dead letter of the record at ``topic``/``partition``/``offset`` (its key and value kept
        verbatim).

        >>> DeadLetter.of_record("not_json", "not JSON", topic="t", partition=0, offset=7, key=None,
        ...                      value=b"{oops").raw()
        b'{oops'
        """
        return cls(
            reason_code=reason_code,
            reason=reason,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            source_key_b64=cls.encode(key) if key is not None else None,
            raw_b64=cls.encode(value),
            event_id=event_id,
        )

    @staticmethod
    def encode(raw: bytes | None) -> str:
        """Base64 text of ``raw`` (empty for ``None``)."""
        return base64.b64encode(raw or b"").decode("ascii")

    def raw(self) -> bytes:
        """The rejected value's original bytes."""
        return base64.b64decode(self.raw_b64)
