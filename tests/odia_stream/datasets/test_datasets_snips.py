"""SNIPS reader on the real files (read by path from ../shared/datasets)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from odia_stream.datasets import ReadStats, decode_bytes, group_of, read_snips, snips_tools
from odia_stream.datasets.base import decode_bytes as base_decode
from schemas import FCLogEvent

INTENTS = {
    "AddToPlaylist",
    "BookRestaurant",
    "GetWeather",
    "PlayMusic",
    "RateBook",
    "SearchCreativeWork",
    "SearchScreeningEvent",
}


@pytest.fixture(scope="module")
def snips_dir(datasets_dir: Path) -> Path:
    return datasets_dir / "snips"


@pytest.fixture(scope="module")
def snips_read(snips_dir: Path) -> tuple[list[FCLogEvent], ReadStats]:
    stats = ReadStats()
    return list(read_snips(snips_dir, stats=stats)), stats


def test_counts_and_functions(snips_dir: Path, snips_read: tuple[list[FCLogEvent], ReadStats]) -> None:
    events, stats = snips_read
    for f in sorted(snips_dir.glob("*.json")):
        (records,) = json.loads(decode_bytes(f.read_bytes())).values()
        assert stats.per_file[f.name] == len(records), f.name
    assert len(events) == stats.events == 14484 and stats.skipped == 0
    assert {e.call.name for e in events if e.call} == INTENTS
    assert all(e.app == "snips" and e.call is not None for e in events)
    assert len({e.event_id for e in events}) == len(events)


def test_tools_identical_for_every_event(snips_read: tuple[list[FCLogEvent], ReadStats]) -> None:
    events, _ = snips_read
    first = events[0].tools
    assert [t.name for t in first] == sorted(INTENTS)
    assert all(e.tools == first for e in events)
    required = {t.name: t.function.required_arguments() for t in first}
    assert required["AddToPlaylist"] == ("playlist",)
    assert required["RateBook"] == ("rating_value",)
    assert required["SearchCreativeWork"] == ("object_name",)
    assert required["PlayMusic"] == ()
    for tool in first:
        props = tool.function.parameters["properties"]
        assert props and all(p["type"] == "string" and p["description"] for p in props.values())
        assert tool.function.description


def test_arguments_are_slots_found_in_the_query(snips_read: tuple[list[FCLogEvent], ReadStats]) -> None:
    events, _ = snips_read
    with_args = 0
    for e in events:
        assert e.call is not None
        slots = next(t for t in e.tools if t.name == e.call.name).function.argument_names()
        assert e.query == " ".join(e.query.split())
        for slot, value in e.call.arguments.items():
            assert slot in slots
            assert isinstance(value, str) and value and value in e.query, (e.query, slot, value)
        with_args += bool(e.call.arguments)
    assert with_args > 14000


def test_encoding_is_repaired(snips_read: tuple[list[FCLogEvent], ReadStats]) -> None:
    events, _ = snips_read
    text = "\n".join(e.query for e in events)
    assert "Pop Punk Perfection \U0001f355" in text  # CESU-8 surrogate pair in train_PlayMusic_full.json
    assert "\ufffd" not in text and "Ã" not in text  # nothing lost, no mojibake
    assert "Cita Romántica" in text
    for e in events:
        e.model_dump_json()  # every string is encodable


def test_decode_bytes_variants() -> None:
    assert base_decode("café".encode()) == "café"
    assert base_decode(b"\xef\xbb\xbf{}") == "{}"
    assert base_decode(b"x \xed\xa0\xbc\xed\xbd\x95 y") == "x \U0001f355 y"
    assert base_decode(b"lone \xed\xa0\xbc!") == "lone \ufffd!"
    assert base_decode(b"caf\xe9 \x93q\x94") == "café “q”"  # cp1252
    assert base_decode(b"\x81\x8d") == "\x81\x8d"  # latin-1, never fails


def test_repeated_slots_and_groups(snips_dir: Path, snips_read: tuple[list[FCLogEvent], ReadStats]) -> None:
    events, _ = snips_read
    path = snips_dir / "train_BookRestaurant_full.json"
    joined = {e.event_id: e for e in read_snips(path, repeated_slots="join")}
    differ = [e for e in events if e.event_id in joined and e.call != joined[e.event_id].call]
    assert 20 <= len(differ) <= 40  # utterances tagging one slot twice
    for e in differ:
        other = joined[e.event_id].call
        assert e.call is not None and other is not None
        assert any(len(other.arguments[k]) > len(v) for k, v in e.call.arguments.items())
    groups = Counter(group_of(e) for e in events)
    assert len(groups) < len(events)  # repeated utterances share a group
    assert snips_tools(path) == events[0].tools  # a single file still gets the folder's tools
    with pytest.raises(ValueError):
        list(read_snips(path, repeated_slots="list"))  # type: ignore[arg-type]
