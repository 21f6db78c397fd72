"""HammerBench reader on the real files (read by path from ../shared/datasets)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from odia_stream.context import previous_call
from odia_stream.datasets import DatasetError, ReadStats, group_of, read_hammerbench
from schemas import FCLogEvent


@pytest.fixture(scope="module")
def hb_dir(datasets_dir: Path) -> Path:
    return datasets_dir / "hammerbench"


@pytest.fixture(scope="module")
def zh_read(hb_zh_read: tuple[list[FCLogEvent], ReadStats]) -> tuple[list[FCLogEvent], ReadStats]:
    return hb_zh_read


@pytest.fixture(scope="module")
def zh_events(zh_read: tuple[list[FCLogEvent], ReadStats]) -> list[FCLogEvent]:
    return zh_read[0]


def _raw(path: Path) -> list[dict]:
    return json.loads(path.read_text("utf-8"))


def _file_of(event: FCLogEvent) -> str:
    assert event.source is not None
    return event.source.split("/")[2].split("#")[0]


def _turn_of(event: FCLogEvent) -> int:
    assert event.source is not None
    return int(event.source.split(";")[0].rsplit("/turn", 1)[1].split(".")[0])


def test_one_event_per_function_call_message(
    hb_dir: Path, zh_read: tuple[list[FCLogEvent], ReadStats]
) -> None:
    events, stats = zh_read
    per_file = Counter(_file_of(e) for e in events)
    files = sorted((hb_dir / "zh").glob("*.json"))
    assert len(files) == 7
    for f in files:
        expected = sum(m["role"] == "function call" for r in _raw(f) for m in r["messages"])
        assert per_file[f.name] == expected, f.name
        assert stats.per_file[f"zh/{f.name}"] == expected
    assert stats.events == len(events) == 7293
    assert stats.skipped == 0
    assert stats.tool_added == 0  # every call of the published files names an offered tool


def test_queries_history_and_calls(zh_events: list[FCLogEvent]) -> None:
    multi_turn = 0
    for e in zh_events:
        assert e.app == "hammerbench"
        assert e.query.strip() and not e.query.startswith("EK:")
        users = [m for m in e.history if m.role == "user"]
        assert len(users) <= 3
        if e.history and e.history[0].role != "system":
            assert e.history[0].role == "user"  # trimmed at a turn boundary
        if _file_of(e).startswith("ir_"):
            assert e.call is None
            assert e.history and e.history[-1].role == "system"  # the external knowledge
            assert e.history[-1].content and e.history[-1].content.startswith("External knowledge:")
        else:
            assert e.call is not None and e.call.name in {t.name for t in e.tools}
        if _turn_of(e) > 0:
            multi_turn += 1
            assert previous_call(e.history) is not None, e.source
            calls = [tc for m in e.history for tc in m.tool_calls or ()]
            assert all(tc.id and tc.id.startswith("call_") for tc in calls)
    assert multi_turn > 2000


def test_history_matches_the_dialogue(hb_dir: Path, zh_events: list[FCLogEvent]) -> None:
    records = _raw(hb_dir / "zh" / "HammerBench_SO_case2.json")
    events = [e for e in zh_events if _file_of(e) == "HammerBench_SO_case2.json"]
    by_record: dict[int, list[FCLogEvent]] = defaultdict(list)
    for e in events:
        assert e.source is not None
        by_record[int(e.source.split("#")[1].split("/")[0])].append(e)
    deep = 0
    for index, evs in by_record.items():
        msgs = records[index]["messages"]
        users = [i for i, m in enumerate(msgs) if m["role"] == "user"]
        calls = [m["content"] for m in msgs if m["role"] == "function call"]
        assert [e.call.model_dump() if e.call else None for e in evs] == [
            {"name": c["name"], "arguments": c["arguments"]} for c in calls
        ]
        for e in evs:
            k = _turn_of(e)
            assert e.query == msgs[users[k]]["content"]
            if k == 0:
                assert e.history == []
                continue
            first_kept = users[max(0, k - 3)]
            assert e.history[0].content == msgs[first_kept]["content"]
            if k >= 4:
                deep += 1
                assert sum(m.role == "user" for m in e.history) == 3
            if k >= 1:  # the previous turn's call is the last tool call in history
                last = [tc for m in e.history for tc in m.tool_calls or ()][-1]
                assert last.function.name == calls[k - 1]["name"]
                assert last.function.arguments == calls[k - 1]["arguments"]
                assert last.id == f"call_{k - 1}"
    assert deep > 0


def test_ids_unique_and_stable(hb_dir: Path, zh_events: list[FCLogEvent]) -> None:
    assert len({e.event_id for e in zh_events}) == len(zh_events)
    assert len({e.source for e in zh_events}) == len(zh_events)
    again = list(read_hammerbench(hb_dir / "zh"))
    assert [e.model_dump_json() for e in again] == [e.model_dump_json() for e in zh_events]


def test_groups_follow_base_dialogue_ids(hb_dir: Path, zh_events: list[FCLogEvent]) -> None:
    groups: dict[str, set[str]] = defaultdict(set)
    for e in zh_events:
        groups[group_of(e)].add(_file_of(e))
    # rewrites of one base dialogue (same id) in five HammerBench_* files share one group
    assert groups["hammerbench:id=1"] >= {
        "HammerBench_External.json",
        "HammerBench_SO_case2.json",
        "HammerBench_mQmA.json",
        "HammerBench_mQsA.json",
        "HammerBench_sQmA.json",
    }
    # id-less intent-shift rewrites that open like a base dialogue join its group
    is_groups = {group_of(e) for e in zh_events if _file_of(e) == "HammerBench_IS.json"}
    assert sum(g.startswith("hammerbench:id=") for g in is_groups) >= 400
    # ids are shared by the zh and en translations
    en_first = next(read_hammerbench(hb_dir / "en" / "HammerBench_mQsA.json"))
    zh_first = next(e for e in zh_events if _file_of(e) == "HammerBench_mQsA.json")
    assert group_of(en_first) == group_of(zh_first)


def test_single_file_and_root_with_lang(hb_dir: Path, zh_events: list[FCLogEvent]) -> None:
    ir = list(read_hammerbench(hb_dir / "zh" / "ir_ST_External.json"))
    assert ir == [e for e in zh_events if _file_of(e) == "ir_ST_External.json"]
    first = next(read_hammerbench(hb_dir, lang="zh"))
    assert first.source is not None and first.source.startswith("hammerbench/zh/")
    with pytest.raises(DatasetError):
        list(read_hammerbench(hb_dir, lang="fr"))


def test_no_call_turns_are_optional(hb_dir: Path) -> None:
    path = hb_dir / "zh" / "HammerBench_IS.json"
    base = list(read_hammerbench(path))
    more = list(read_hammerbench(path, include_no_call_turns=True))
    extra = [e for e in more if e.call is None]
    assert len(base) == 1141 and len(extra) == len(more) - len(base) == 881
    assert {e.event_id for e in base} <= {e.event_id for e in more}


def _write(tmp_path: Path, name: str, records: list[dict]) -> Path:
    folder = tmp_path / "zh"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(records, ensure_ascii=False), "utf-8")
    return path


TOOL_A = {
    "name": "a.b.playSong",
    "description": "play",
    "parameters": {"type": "object", "properties": {"song": {"type": "string"}}},
}
TOOL_B = {"name": "a.b.stop", "description": "stop", "parameters": {"type": "object", "properties": {}}}


def test_unoffered_call_gets_single_tool_added(tmp_path: Path) -> None:
    record = {
        "messages": [
            {"role": "user", "content": "play x"},
            {"role": "function call", "content": {"name": "a.b.playSong", "arguments": {"song": "x"}}},
        ],
        "multiple_tools": [TOOL_B],
        "single_tool": [TOOL_A],
        "id": 7,
    }
    path = _write(tmp_path, "HammerBench_syn.json", [record])
    stats = ReadStats()
    (event,) = list(read_hammerbench(path, stats=stats))
    assert stats.tool_added == 1
    assert [t.name for t in event.tools] == ["a.b.stop", "a.b.playSong"]
    assert event.call is not None and event.call.arguments == {"song": "x"}
    assert group_of(event) == "hammerbench:id=7"


def test_malformed_records_strict_and_lenient(tmp_path: Path) -> None:
    good = {
        "messages": [
            {"role": "user", "content": "stop"},
            {"role": "function call", "content": {"name": "a.b.stop", "arguments": {}}},
        ],
        "single_tool": [TOOL_B],
    }
    bad = {
        "messages": [{"role": "function call", "content": {"name": "a.b.stop", "arguments": {}}}],
        "single_tool": [TOOL_B],
    }
    unknown = {
        **good,
        "messages": [
            good["messages"][0],
            {"role": "function call", "content": {"name": "nope", "arguments": {}}},
        ],
    }
    path = _write(tmp_path, "HammerBench_bad.json", [good, bad, unknown, good])
    with pytest.raises(DatasetError, match="record 1"):
        list(read_hammerbench(path))
    stats = ReadStats()
    events = list(read_hammerbench(path, strict=False, stats=stats))
    assert len(events) == 2 and stats.skipped == 2 and len(stats.problems) == 2
