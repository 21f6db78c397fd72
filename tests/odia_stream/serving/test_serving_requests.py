"""Reading requests off the wire: every message yields an id to answer, malformed ones an error."""

from __future__ import annotations

import json

from odia_stream.serving.requests import parse_request
from schemas import ServeRequest


def _valid(**extra: object) -> bytes:
    body = {"request_id": "r-1", "query": "play jazz", "tools": [{"name": "play"}], **extra}
    return json.dumps(body).encode()


def test_a_valid_request_is_read() -> None:
    got = parse_request(_valid(reply_topic="my.replies"), b"r-1", "odia.requests", 0, 7)
    assert got.error is None and isinstance(got.request, ServeRequest)
    assert got.request_id == "r-1" and got.reply_topic == "my.replies"


def test_not_utf8_is_answered_by_key_or_position() -> None:
    got = parse_request(b"\xff\xfe\x00", b"key-9", "odia.requests", 1, 3)
    assert got.request is None and got.request_id == "key-9" and "not UTF-8" in (got.error or "")
    got = parse_request(b"\xff", None, "odia.requests", 1, 3)
    assert got.request_id == "odia.requests:1:3"


def test_not_json_and_empty_values() -> None:
    got = parse_request(b"{not json", None, "t", 0, 0)
    assert got.request is None and "not JSON" in (got.error or "") and got.request_id == "t:0:0"
    got = parse_request(None, b"k", "t", 0, 1)
    assert got.request is None and got.request_id == "k" and "empty" in (got.error or "")


def test_schema_errors_keep_the_readable_request_id_and_reply_topic() -> None:
    value = json.dumps({"request_id": "r-7", "query": "", "reply_topic": "client.replies"}).encode()
    got = parse_request(value, b"other-key", "t", 0, 2)
    assert got.request is None and got.request_id == "r-7" and got.reply_topic == "client.replies"
    assert "not a ServeRequest" in (got.error or "") and "query" in (got.error or "")


def test_unusable_ids_and_reply_topics_fall_back() -> None:
    value = json.dumps({"request_id": 12, "query": "x", "reply_topic": "bad topic!"}).encode()
    got = parse_request(value, None, "t", 3, 9)
    assert got.request_id == "t:3:9" and got.reply_topic is None
    got = parse_request(_valid(reply_topic="spaces are illegal"), None, "t", 0, 0)
    assert got.request is not None and got.reply_topic is None


def test_oversized_requests_get_one_short_error_that_fits_the_response_topic() -> None:
    """Values of about 1 MB (a huge query, a huge id, a huge non-JSON blob) are answered with an
    error of bounded size: the response never grows with the request (issue 17)."""
    from odia_stream.serving.engine import _error_response

    huge_query = _valid(query="x" * 1_000_000)
    huge_id = json.dumps({"request_id": "r" * 900_000, "query": "play"}).encode()
    blob = b"\x00not json" + b"y" * 1_000_000
    for value in (huge_query, huge_id, blob):
        got = parse_request(value, b"k-1", "odia.requests", 0, 5)
        assert got.request is None and got.error and len(got.error) < 500, got.error[:200] if got.error else None
        assert len(got.request_id) <= 200
        response = _error_response(got.request_id, got.error, route_reason="malformed")
        assert len(response.model_dump_json()) < 2048
    assert "at most 20000 characters" in (parse_request(huge_query, None, "t", 0, 0).error or "")
