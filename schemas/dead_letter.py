"""``DeadLetter``: an input that was rejected, with the reason and where it came from."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
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
    raw_b64: str = Field(
        description="The rejected value, base64-encoded, byte for byte; only its first bytes when raw_truncated"
    )
    raw_size: int | None = Field(default=None, ge=0, description="Bytes of the whole rejected value")
    raw_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                                   description="sha256 of the whole rejected value (hex)")
    raw_truncated: bool = Field(default=False, description="raw_b64 holds only the value's first bytes")
    raw_uri: str | None = Field(default=None, description="Where the whole value was written when it did not fit")
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
        max_inline_bytes: int | None = None,
        store: Callable[[bytes, str], str] | None = None,
        sha256: str | None = None,
    ) -> DeadLetter:
        """The dead letter of the record at ``topic``/``partition``/``offset``: its key verbatim, its
        value verbatim up to ``max_inline_bytes`` (``None``: whole), with the value's size and sha256.
        A longer value keeps its first ``max_inline_bytes`` here and is handed whole to
        ``store(value, sha256)``, whose answer (a URI) the letter names, so that the letter always
        fits a topic whatever the rejected value's size. ``sha256``: the value's digest when the
        caller has it already (hex), so a large value is not hashed twice.

        >>> DeadLetter.of_record("not_json", "not JSON", topic="t", partition=0, offset=7, key=None,
        ...                      value=b"{oops").raw()
        b'{oops'
        >>> big = DeadLetter.of_record("too_large", "too large", topic="t", partition=0, offset=8, key=None,
        ...                            value=b"x" * 100, max_inline_bytes=10)
        >>> big.raw(), big.raw_size, big.raw_truncated, big.raw_uri
        (b'xxxxxxxxxx', 100, True, None)
        """
        raw = value or b""
        digest = sha256 or hashlib.sha256(raw).hexdigest()
        truncated = max_inline_bytes is not None and len(raw) > max_inline_bytes
        return cls(
            reason_code=reason_code,
            reason=reason,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            source_key_b64=cls.encode(key) if key is not None else None,
            raw_b64=cls.encode(raw[:max_inline_bytes] if truncated else raw),
            raw_size=len(raw),
            raw_sha256=digest,
            raw_truncated=truncated,
            raw_uri=store(raw, digest) if truncated and store is not None else None,
            event_id=event_id,
        )

    @staticmethod
    def encode(raw: bytes | None) -> str:
        """Base64 text of ``raw`` (empty for ``None``)."""
        return base64.b64encode(raw or b"").decode("ascii")

    def raw(self) -> bytes:
        """The rejected value's original bytes (only the first ones when ``raw_truncated``: the whole
        value is at ``raw_uri``)."""
        return base64.b64decode(self.raw_b64)
