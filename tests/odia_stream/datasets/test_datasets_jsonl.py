"""JSONL reader/writer: round trip, strict and lenient handling of bad lines."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from odia_stream.datasets import DatasetError, ReadStats, load_dataset, read_jsonl, write_jsonl
from schemas import FCLogEvent


def _events(n: int = 5) -> list[FCLogEvent]:
    tools = [{"name": "play", "parameters": {"type": "object", "properties": {"song": {"type": "string"}}}}]
    return [
        FCLogEvent.model_validate(
            {
                "event_id": f"e{i}",
                "query": f"play song {i} ünïcode 🎵",
                "tools": tools,
                "call": {"name": "play", "arguments": {"song": str(i)}},
                "history": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            }
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("name", ["events.jsonl", "events.jsonl.gz"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    events = _events()
    path = tmp_path / name
    assert write_jsonl(events, path) == 5
    assert list(read_jsonl(path)) == events
    assert list(load_dataset(path, limit=2)) == events[:2]


def _bad_file(tmp_path: Path) -> Path:
    good = [e.model_dump_json().encode() for e in _events(3)]
    not_offered = json.loads(good[0])
    not_offered["call"]["name"] = "stop"
    empty_query = json.loads(good[0]) | {"query": "  "}
    lines = [
        good[0],
        b"",  # blank: ignored
        b"{not json",
        b"\xff\xfe\x00bad bytes",
        b"[1, 2]",
        json.dumps(not_offered).encode(),
        json.dumps(empty_query).encode(),
        json.dumps({"event_id": "x"}).encode(),
        good[1],
        good[2],
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_strict_raises_with_path_and_line(tmp_path: Path) -> None:
    path = _bad_file(tmp_path)
    reader = read_jsonl(path)
    assert next(reader).event_id == "e0"
    with pytest.raises(DatasetError) as info:
        next(reader)
    err = info.value
    assert err.path == path and err.line_no == 3 and "not JSON" in err.reason
    assert str(err).startswith(f"{path}:3:")


def test_lenient_counts_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _bad_file(tmp_path)
    stats = ReadStats()
    with caplog.at_level(logging.WARNING, logger="odia_stream.datasets.jsonl"):
        events = list(read_jsonl(path, strict=False, stats=stats))
    assert [e.event_id for e in events] == ["e0", "e1", "e2"]
    assert stats.skipped == 6 and stats.events == 3
    reasons = "\n".join(stats.problems)
    for needle in (
        ":3: not JSON",
        ":4: not UTF-8",
        ":5: line holds a JSON list",
        ":6: invalid event",
        ":7: invalid event",
        ":8: invalid event",
    ):
        assert needle in reasons
    assert "unknown_function" not in reasons and "not among the offered tools" in reasons
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 6
