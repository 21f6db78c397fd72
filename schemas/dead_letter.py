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

    @staticmethod
    def encode(raw: bytes | None) -> str:
        """Base64 text of ``raw`` (empty for ``None``)."""
        return base64.b64encode(raw or b"").decode("ascii")

    def raw(self) -> bytes:
        """The rejected value's original bytes."""
        return base64.b64decode(self.raw_b64)
