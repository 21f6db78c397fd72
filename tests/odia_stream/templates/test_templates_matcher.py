"""EntityMatcher (pyahocorasick) and QueryTemplater."""

from __future__ import annotations

import pytest

from odia_stream.templates import EntityDictionary, EntityMatcher, EntitySpan, QueryTemplater, Template


def make(*entries: tuple[str, str]) -> EntityDictionary:
    d = EntityDictionary()
    for etype, value in entries:
        d.add(etype, value)
    return d


def spans(m: EntityMatcher, query: str) -> list[tuple[int, int, str, str]]:
    return [(s.start, s.end, s.type, s.value) for s in m.match(query)]


def test_cjk_needs_no_boundaries() -> None:
    m = EntityMatcher(make(("singer", "周杰伦"), ("song", "稻香")))
    assert m.match("播放周杰伦的稻香") == [
        EntitySpan(2, 5, "singer", "周杰伦"),
        EntitySpan(6, 8, "song", "稻香"),
    ]


def test_leftmost_longest_non_overlapping() -> None:
    m = EntityMatcher(
        make(
            ("genre", "rock"),
            ("genre", "rock and roll"),
            ("song", "and roll over"),
            ("city", "york"),
            ("city", "new york"),
            ("song", "夜的钢琴曲"),
            ("song", "夜的钢琴曲五"),
            ("song", "钢琴"),
        )
    )
    # longest at the same start wins; an overlapping later match is dropped
    assert spans(m, "rock and roll over") == [(0, 13, "genre", "rock and roll")]
    assert spans(m, "I love New York") == [(7, 15, "city", "New York")]
    assert spans(m, "播放夜的钢琴曲五") == [(2, 8, "song", "夜的钢琴曲五")]
    assert spans(m, "弹钢琴和夜的钢琴曲") == [(1, 3, "song", "钢琴"), (4, 9, "song", "夜的钢琴曲")]
    # leftmost wins even when a later overlapping candidate is longer
    m2 = EntityMatcher(make(("a", "周杰"), ("b", "杰伦演唱会")))
    assert spans(m2, "看周杰伦演唱会") == [(1, 3, "a", "周杰")]
    assert spans(m2, "看杰伦演唱会") == [(1, 6, "b", "杰伦演唱会")]
    # a candidate that fails its word boundary does not block a valid shorter one
    m3 = EntityMatcher(make(("a", "new"), ("b", "new yorker")))
    assert spans(m3, "new yorkers") == [(0, 3, "a", "new")]


def test_latin_word_boundaries() -> None:
    m = EntityMatcher(make(("genre", "pop"), ("genre", "k-pop"), ("genre", "r&b")))
    assert spans(m, "popular pop music") == [(8, 11, "genre", "pop")]
    assert spans(m, "lollipop") == []
    assert spans(m, "pop2 pop_ pop.") == [(10, 13, "genre", "pop")]
    assert spans(m, "I like k-pop and r&b") == [(7, 12, "genre", "k-pop"), (17, 20, "genre", "r&b")]
    assert spans(m, "播放pop音乐") == [(2, 5, "genre", "pop")]  # CJK neighbours are boundaries


def test_case_insensitive_nfkc_and_whitespace() -> None:
    m = EntityMatcher(make(("singer", "Jay Chou"), ("song", "straße"), ("app", "QQ音乐")))
    assert spans(m, "PLAY JAY CHOU") == [(5, 13, "singer", "JAY CHOU")]
    assert spans(m, "ｊａｙ　ｃｈｏｕ!") == [(0, 8, "singer", "ｊａｙ　ｃｈｏｕ")]
    assert spans(m, "jay   chou") == [(0, 10, "singer", "jay   chou")]
    assert spans(m, "STRASSE") == [(0, 7, "song", "STRASSE")]
    assert spans(m, "打开ＱＱ音乐") == [(2, 6, "app", "ＱＱ音乐")]


def test_expanding_normalisation_maps_back_to_original() -> None:
    m = EntityMatcher(make(("song", "fire"), ("x", "café")))
    q = "play the ﬁre now, at the cafe\u0301"  # 'ﬁ' ligature (NFKC -> 'fi'), decomposed é
    out = m.match(q)
    assert [(q[s.start : s.end], s.type) for s in out] == [("ﬁre", "song"), ("cafe\u0301", "x")]
    # a value that would start inside an expanded character is not matched
    assert EntityMatcher(make(("x", "ire"))).match("ﬁre") == []


def test_ambiguous_value_picks_most_frequent_type_and_exposes_alternatives() -> None:
    d = make(("singer_name", "周杰伦"), ("friend_name", "周杰伦"), ("name", "周杰伦"))
    m = EntityMatcher(d)
    assert m.match("周杰伦")[0].type == "friend_name"  # tie -> alphabetical
    assert m.types_of("周杰伦") == ("friend_name", "name", "singer_name")
    d.add("singer_name", "周杰伦")
    assert m.match("周杰伦")[0].type == "singer_name"  # most frequent
    assert m.types_of("周杰伦")[1:] == ("friend_name", "name")


def test_lazy_rebuild_after_add_and_remove() -> None:
    d = make(("singer", "周杰伦"))
    m = EntityMatcher(d, delta_limit=2)
    assert spans(m, "周杰伦的稻香") == [(0, 3, "singer", "周杰伦")]
    assert m.full_builds == 1
    d.add("song", "稻香")  # goes to the delta automaton
    assert spans(m, "周杰伦的稻香") == [(0, 3, "singer", "周杰伦"), (4, 6, "song", "稻香")]
    assert (m.full_builds, m.delta_builds) == (1, 1)
    m.match("周杰伦的稻香")
    assert (m.full_builds, m.delta_builds) == (1, 1)  # unchanged dictionary: no work
    d.add("song", "稻香")  # count change only: no automaton work, still matched
    d.add("singer", "林俊杰")
    d.add("song", "江南")  # delta would exceed 2 -> folded into a full build
    assert [s.value for s in m.match("林俊杰的江南和稻香")] == ["林俊杰", "江南", "稻香"]
    assert m.full_builds == 2 and m.stats()["delta_values"] == 0
    d.remove("song", "江南")
    assert [s.value for s in m.match("林俊杰的江南")] == ["林俊杰"]
    assert m.full_builds == 3
    m.add("song", "江南")
    assert [s.value for s in m.match("林俊杰的江南")] == ["林俊杰", "江南"]


def test_empty_dictionary_and_empty_query() -> None:
    d = EntityDictionary()
    m = EntityMatcher(d)
    assert m.match("播放周杰伦的稻香") == [] and m.match("") == []
    d.add("singer", "周杰伦")
    assert m.match("") == [] and len(m.match("周杰伦")) == 1
    d.clear()
    assert m.match("周杰伦") == []


@pytest.fixture()
def music() -> QueryTemplater:
    return QueryTemplater(
        make(
            ("singer", "周杰伦"),
            ("song", "稻香"),
            ("singer", "林俊杰"),
            ("song", "江南"),
            ("singer", "Jay Chou"),
            ("song", "Rice Fragrance"),
            ("singer", "JJ Lin"),
            ("song", "Jiangnan"),
        )
    )


def test_templater_chinese(music: QueryTemplater) -> None:
    t = music.template("播放周杰伦的稻香")
    assert t == Template("播放<singer>的<song>", (("singer", "周杰伦"), ("song", "稻香")), t.spans)
    assert t.has_entities
    assert music.template("播放林俊杰的江南").text == t.text


def test_templater_english(music: QueryTemplater) -> None:
    t = music.template("play Jay Chou's Rice Fragrance")
    assert t.text == "play <singer>'s <song>"
    assert t.slots == (("singer", "Jay Chou"), ("song", "Rice Fragrance"))
    assert music.template("play JJ Lin's Jiangnan").text == t.text


def test_templater_without_entities_and_determinism(music: QueryTemplater) -> None:
    t = music.template("今天天气怎么样")
    assert (t.text, t.slots, t.has_entities) == ("今天天气怎么样", (), False)
    q = "播放周杰伦的稻香和林俊杰的江南"
    assert music.template(q) == music.template(q) == QueryTemplater(music.dictionary).template(q)
    assert music.template(q).text == "播放<singer>的<song>和<singer>的<song>"


def test_templater_memo_follows_dictionary_changes() -> None:
    d = EntityDictionary()
    d.add("singer", "周杰伦")
    templater = QueryTemplater(d)
    first = templater.template("播放周杰伦的稻香")
    assert first.text == "播放<singer>的稻香"
    assert templater.template("播放周杰伦的稻香") is first  # unchanged dictionary: memoised
    d.add("song", "稻香")
    assert templater.template("播放周杰伦的稻香").text == "播放<singer>的<song>"
    d.remove("singer", "周杰伦")
    assert templater.template("播放周杰伦的稻香").text == "播放周杰伦的<song>"
    d.clear()
    assert templater.template("播放周杰伦的稻香").text == "播放周杰伦的稻香"
