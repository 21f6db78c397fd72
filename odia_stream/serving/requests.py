"""Reading a request off the wire; a request that cannot be read still gets an answer.

A value that is not UTF-8, not JSON or not a valid :class:`~schemas.ServeRequest` is answered with
an error response, addressed by the request id when one can be read from the value, else by the
message key, else by ``<topic>:<partition>:<offset>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pydantic import ValidationError

from schemas import ServeRequest

__all__ = ["TOPIC_NAME", "IncomingRequest", "parse_request"]

#: A legal Kafka topic name.
TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


@dataclass(frozen=True)
class IncomingRequest:
    """A request read from the wire, or why it could not be (``error``), and where to answer."""

    request_id: str
    request: ServeRequest | None
    reply_topic: str | None
    error: str | None = None


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    parts = []
    for e in errors[:3]:
        where = ".".join(str(x) for x in e.get("loc", ())) or "value"
        parts.append(f"{where}: {e.get('msg', '')}")
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


def _readable_id(data: object) -> str | None:
    if isinstance(data, dict):
        rid = data.get("request_id")
        if isinstance(rid, str) and 0 < len(rid.strip()) <= 200:
            return rid
    return None


def _reply_topic(data: object) -> str | None:
    if isinstance(data, dict):
        topic = data.get("reply_topic")
        if isinstance(topic, str) and TOPIC_NAME.match(topic):
            return topic
    return None


def parse_request(
    value: bytes | None, key: bytes | None, topic: str, partition: int, offset: int
) -> IncomingRequest:
    """Read one request message (see the module docstring); never raises."""
    fallback = f"{topic}:{partition}:{offset}"
    if key:
        try:
            text_key = key.decode("utf-8").strip()
        except UnicodeDecodeError:
            text_key = ""
        if 0 < len(text_key) <= 200:
            fallback = text_key
    if value is None:
        return IncomingRequest(fallback, None, None, "malformed request: empty message (no value)")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return IncomingRequest(
            fallback, None, None, f"malformed request: not UTF-8 ({exc.reason} at byte {exc.start})"
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return IncomingRequest(
            fallback, None, None, f"malformed request: not JSON ({exc.msg} at char {exc.pos})"
        )
    request_id = _readable_id(data) or fallback
    try:
        request = ServeRequest.model_validate(data)
    except ValidationError as exc:
        return IncomingRequest(
            request_id,
            None,
            _reply_topic(data),
            f"malformed request: not a ServeRequest: {_first_error(exc)}",
        )
    reply = request.reply_topic if request.reply_topic and TOPIC_NAME.match(request.reply_topic) else None
    return IncomingRequest(request.request_id, request, reply)
