"""Query normalisation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from odia_stream.normalize import normalize_query


def test_identical_queries_share_a_key() -> None:
    assert normalize_query("Play Jay Chou!") == normalize_query("  play   jay chou ")
    assert normalize_query("播放稻香。") == normalize_query("播放稻香")
    assert normalize_query("ＰＬＡＹ") == "play"


def test_inner_punctuation_is_kept() -> None:
    assert normalize_query("play jay chou's song") == "play jay chou's song"


def test_a_query_of_only_punctuation_is_not_emptied() -> None:
    assert normalize_query("???") == "???"


@given(st.text(min_size=1))
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalize_query(text)
    assert normalize_query(once) == once
