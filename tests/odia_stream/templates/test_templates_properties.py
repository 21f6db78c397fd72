"""Property tests: templating is total and its slots are real substrings of the query."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odia_stream.templates import EntityDictionary, NormalizedText, QueryTemplater, learn_from_call

# Values chosen to stress normalisation: ligatures, ß, dotted İ, combining marks,
# fullwidth forms, CJK, whitespace inside values, punctuation at the edges.
VALUES = [
    ("singer", "周杰伦"),
    ("song", "稻香"),
    ("song", "夜的钢琴曲五"),
    ("genre", "pop"),
    ("genre", "k-pop"),
    ("genre", "r&b"),
    ("singer", "Jay Chou"),
    ("word", "straße"),
    ("word", "ﬁre"),
    ("word", "İstanbul"),
    ("word", "café"),
    ("word", "ＱＱ音乐"),
    ("word", "Σίσυφος"),
    ("word", "a"),
    ("word", "ß"),
    ("word", "…"),
    ("word", "½"),
]
DICT = EntityDictionary()
for _t, _v in VALUES:
    DICT.add(_t, _v)
TEMPLATER = QueryTemplater(DICT)

fragments = st.sampled_from(
    [v for _, v in VALUES] + ["STRASSE", "FIRE", "i\u0307stanbul", "cafe\u0301", " ", "  ", "\t"]
)
queries = st.one_of(
    st.text(max_size=80),
    st.lists(st.one_of(fragments, st.text(max_size=4)), max_size=12).map("".join),
)


def check(query: str) -> None:
    t = TEMPLATER.template(query)
    pos = 0
    for span, (etype, value) in zip(t.spans, t.slots, strict=True):
        assert value and value in query
        assert query[span.start : span.end] == value
        assert span.start >= pos  # ordered, non-overlapping
        pos = span.end
        assert DICT.get(etype, value) is not None  # the slot is a known value of that type
    assert t.has_entities == bool(t.slots)
    assert t.text.count("<") >= len(t.slots)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries)
def test_templating_never_raises_and_slots_occur(query: str) -> None:
    check(query)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_normalized_text_maps_aligned_spans_back(text: str) -> None:
    nt = NormalizedText.of(text)
    n = len(nt.text)
    assert (n == 0) == (text == "")
    if n:
        assert nt.to_original(0, n) == (0, len(text))
    for start in range(n):
        for end in range(start + 1, min(n, start + 6) + 1):
            if nt.is_aligned(start, end):
                s, e = nt.to_original(start, end)
                assert 0 <= s < e <= len(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30), st.text(min_size=1, max_size=12), st.text(max_size=30))
def test_learned_values_are_found_again(prefix: str, value: str, suffix: str) -> None:
    d = EntityDictionary()
    query = f"{prefix} {value} {suffix}"
    learned = learn_from_call(d, query, {"thing": value})
    if learned:
        found = [s for s in QueryTemplater(d).matcher.match(query) if s.type == "thing"]
        assert found, (query, value)
