"""Learning entity values from the large model's calls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from odia_stream.templates import (
    EntityDictionary,
    EntityMatcher,
    EntryInfo,
    learn_from_call,
    learn_from_messages,
)


def entry(d: EntityDictionary, etype: str, value: str) -> EntryInfo:
    info = d.get(etype, value)
    assert info is not None, (etype, value)
    return info


# Shaped like a HammerBench zh MusicRadio record (user turn, then the large model's call).
MUSIC_RECORD: list[dict[str, Any]] = [
    {"role": "user", "content": "帮我在QQ音乐里搜一下周杰伦的《稻香》"},
    {
        "role": "function call",
        "content": {
            "name": "MusicRadio.OnlineMusic.searchSong",
            "arguments": {
                "keywords": "稻香",
                "singer_name": "周杰伦",
                "platform": "QQ音乐",
                "popularity": "3",
            },
        },
    },
]


def test_learns_singer_from_hammerbench_music_call() -> None:
    d = EntityDictionary()
    learned = learn_from_messages(d, MUSIC_RECORD)
    assert learned == [("keywords", "稻香"), ("singer_name", "周杰伦"), ("platform", "QQ音乐")]
    assert entry(d, "singer_name", "周杰伦").source == "learned"
    assert d.types_of("周杰伦") == ("singer_name",)


def test_learn_from_call_direct_and_counts() -> None:
    d = EntityDictionary()
    args = {"singer_name": "周杰伦", "keywords": "稻香"}
    assert learn_from_call(d, "播放周杰伦的稻香", args) == [("singer_name", "周杰伦"), ("keywords", "稻香")]
    learn_from_call(d, "我想听周杰伦的稻香", args)
    assert entry(d, "singer_name", "周杰伦").count == 2


def test_value_not_in_query_is_skipped() -> None:
    # Real HammerBench call: the model wrote "周杰伦演唱会", the user said "周杰伦在…的演唱会".
    d = EntityDictionary()
    query = "给我查一下周杰伦在今年12月20日的演唱会详情，谢谢"
    learned = learn_from_call(d, query, {"name": "周杰伦演唱会", "date": "今年12月20日"})
    assert learned == [("date", "今年12月20日")]  # dates are fine to keep
    assert d.get("name", "周杰伦演唱会") is None


@pytest.mark.parametrize(
    "value",
    [
        3,
        2.5,
        True,
        None,
        {"nested": "周杰伦"},
        "3",
        "-12.5",
        "1,000",
        "50%",
        "true",
        "null",
        "周",  # single character
        "a",
        "the",
        "这个",
        "我的",
        "周杰伦" * 14,  # 42 chars: too long
        "第一行\n第二行",
    ],
)
def test_unlearnable_values_are_skipped(value: object) -> None:
    d = EntityDictionary()
    query = (
        f"播放 {value} 周杰伦 the 这个 我的 true null 3 -12.5 1,000 50% a 周 第一行\n第二行 " + "周杰伦" * 14
    )
    assert learn_from_call(d, query, {"x": value}) == []
    assert len(d) == 0


def test_latin_values_case_insensitive_nfkc_and_word_bounded() -> None:
    d = EntityDictionary()
    assert learn_from_call(d, "play ＪＡＹ CHOU please", {"singer": "Jay Chou"}) == [("singer", "Jay Chou")]
    assert learn_from_call(d, "play popular songs", {"genre": "pop"}) == []  # only inside "popular"
    assert learn_from_call(d, "play pop songs", {"genre": "pop"}) == [("genre", "pop")]


def test_lists_quotes_type_map_and_dedup() -> None:
    d = EntityDictionary()
    query = "把稻香和《七里香》加到歌单，音量30"
    args = {"Songs": ["稻香", "《七里香》", ["稻香"], 7], "volume": 30, "playlist": "歌单"}
    learned = learn_from_call(d, query, args, type_map={"songs": "song", "playlist": None})
    assert learned == [("song", "稻香"), ("song", "七里香")]
    assert entry(d, "song", "稻香").count == 1  # repeated within one call counts once


def test_dates_and_times_are_kept() -> None:
    d = EntityDictionary()
    learned = learn_from_call(
        d, "明天 10:30 提醒我，2023-10-15 开会", {"time": "10:30", "date": "2023-10-15"}
    )
    assert learned == [("time", "10:30"), ("date", "2023-10-15")]


def test_openai_tool_call_shape() -> None:
    d = EntityDictionary()
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "play Rice Fragrance by Jay Chou"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "function": {
                        "name": "play",
                        "arguments": json.dumps({"song": "Rice Fragrance", "artist": "Jay Chou"}),
                    }
                }
            ],
        },
    ]
    assert learn_from_messages(d, messages) == [("song", "Rice Fragrance"), ("artist", "Jay Chou")]


def test_learned_values_are_matchable() -> None:
    d = EntityDictionary()
    m = EntityMatcher(d)
    learn_from_messages(d, MUSIC_RECORD)
    assert [s.value for s in m.match(MUSIC_RECORD[0]["content"])] == ["QQ音乐", "周杰伦", "稻香"]
