"""Argument programs: how a template's calls are explained by its slots, and when one is valid."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odia_stream.labels import NO_CALL
from odia_stream.templates import EntityDictionary, QueryTemplater
from odia_stream.templates.programs import (
    ArgSource,
    AssemblyError,
    Observation,
    TemplateEvidence,
    best_program,
    observe,
)

STRICT = {"min_support": 5, "target": 0.9, "z": 1.645}


def _dictionary(**values: list[str]) -> EntityDictionary:
    d = EntityDictionary()
    for etype, vals in values.items():
        for v in vals:
            d.add(etype, v)
    return d


def _feed(d: EntityDictionary, calls: list[tuple[str, str, dict[str, Any]]], times: int = 1) -> TemplateEvidence:
    """``(query, function, arguments)`` counted ``times`` each, all under one evidence (the caller
    makes sure they share a template)."""
    templater = QueryTemplater(d)
    ev = TemplateEvidence()
    for _ in range(times):
        for query, function, arguments in calls:
            ev.add(observe(function, arguments, templater.template(query).slots, d))
    return ev


def test_slots_are_read_by_type_whatever_their_order_in_the_query() -> None:
    d = _dictionary(song=["Lover", "Hello"], artist=["Taylor Swift", "Adele"])
    t = QueryTemplater(d)
    by = _feed(d, [("play Lover by Taylor Swift", "play", {"song": "Lover", "artist": "Taylor Swift"}),
                   ("play Hello by Adele", "play", {"song": "Hello", "artist": "Adele"})], times=15)
    possessive = _feed(d, [("Taylor Swift's Lover", "play", {"song": "Lover", "artist": "Taylor Swift"}),
                           ("Adele's Hello", "play", {"song": "Hello", "artist": "Adele"})], times=15)
    for ev in (by, possessive):
        p = best_program(ev, **STRICT)
        assert p is not None and p.valid
        assert p.sources_text() == {"artist": "slot:artist", "song": "slot:song"}
    p = best_program(possessive, **STRICT)
    assert p is not None
    assert p.assemble(t.template("Adele's Lover").slots, d) == {"artist": "Adele", "song": "Lover"}


def test_repeated_types_are_told_apart_by_position() -> None:
    d = _dictionary(city=["Paris", "Berlin", "Rome"])
    t = QueryTemplater(d)
    ev = _feed(d, [("from Paris to Berlin", "route", {"origin": "Paris", "destination": "Berlin"}),
                   ("from Rome to Paris", "route", {"origin": "Rome", "destination": "Paris"})], times=15)
    p = best_program(ev, **STRICT)
    assert p is not None and p.valid
    assert p.sources_text() == {"destination": "slot:city#2", "origin": "slot:city"}
    assert p.assemble(t.template("from Berlin to Rome").slots, d) == {"origin": "Berlin", "destination": "Rome"}


def test_a_value_written_otherwise_in_the_query_comes_from_the_dictionary_form() -> None:
    d = _dictionary(artist=["Taylor Swift"])
    t = QueryTemplater(d)
    ev = _feed(d, [("play taylor swift", "play_artist", {"artist": "Taylor Swift"})], times=30)
    p = best_program(ev, **STRICT)
    assert p is not None and p.valid
    assert p.sources_text() == {"artist": "slot:artist/canonical"}
    assert p.assemble(t.template("play TAYLOR SWIFT").slots, d) == {"artist": "Taylor Swift"}


def test_the_dictionary_form_does_not_depend_on_arrival_order() -> None:
    a = _dictionary(artist=["adele", "Adele", "Adele"])
    b = _dictionary(artist=["Adele", "adele", "Adele"])
    c = EntityDictionary()
    c.add("artist", "Adele", count=2)
    c.add("artist", "adele")
    assert a.get("artist", "ADELE") == b.get("artist", "ADELE") == c.get("artist", "ADELE")
    assert a.get("artist", "adele").value == "Adele"  # type: ignore[union-attr]


def test_constants_and_calls_without_arguments() -> None:
    d = _dictionary(city=["Paris", "Oslo"])
    t = QueryTemplater(d)
    ev = _feed(d, [("weather in Paris", "weather", {"city": "Paris", "unit": "celsius", "days": 1}),
                   ("weather in Oslo", "weather", {"city": "Oslo", "unit": "celsius", "days": 1})], times=15)
    p = best_program(ev, **STRICT)
    assert p is not None and p.valid
    assert p.sources_text() == {"city": "slot:city", "days": "const:1", "unit": 'const:"celsius"'}
    assert p.assemble(t.template("weather in Oslo").slots, d) == {"city": "Oslo", "unit": "celsius", "days": 1}
    pause = _feed(d, [("pause", "pause", {})], times=30)
    p = best_program(pause, **STRICT)
    assert p is not None and p.valid and p.sources == () and p.assemble((), d) == {}


def test_a_counterexample_lowers_the_agreement_below_the_target() -> None:
    d = _dictionary(song=["Lover"])
    good = [("play Lover", "play", {"song": "Lover"})]
    ev = _feed(d, good, times=30)
    p = best_program(ev, **STRICT)
    assert p is not None and p.valid and (p.support, p.agreement) == (30, 30)
    ev.add(observe("play", {"song": "Lover (Remix)"}, QueryTemplater(d).template("play Lover").slots, d))
    ev.add(observe("search", {"song": "Lover"}, QueryTemplater(d).template("play Lover").slots, d))
    ev.add_no_call(NO_CALL)
    p = best_program(ev, **STRICT)
    assert p is not None and (p.support, p.agreement) == (33, 30)
    assert not p.valid and "lower bound" in p.reason
    assert p.lower_bound < 0.9


def test_optional_arguments_count_as_part_of_the_call() -> None:
    d = _dictionary(song=["Lover", "Hello"])
    # Sometimes the model adds shuffle=true: a call without it is a different call.
    ev = _feed(d, [("play Lover", "play", {"song": "Lover"}), ("play Hello", "play", {"song": "Hello"})], times=15)
    for _ in range(4):
        ev.add(observe("play", {"song": "Lover", "shuffle": True}, QueryTemplater(d).template("play Lover").slots, d))
    p = best_program(ev, **STRICT)
    assert p is not None and p.sources_text() == {"song": "slot:song"} and (p.support, p.agreement) == (34, 30)
    assert not p.valid
    # An optional argument that varies with nothing in the query: unexplained, never valid.
    notes = _feed(d, [("play Lover", "play", {"song": "Lover", "note": f"n{i}"}) for i in range(40)])
    p = best_program(notes, min_support=5, target=0.01, z=0.0)
    assert p is not None and p.unexplained == ("note",) and not p.valid and "unexplained" in p.reason


def test_no_program_below_the_minimum_support_and_none_without_calls() -> None:
    d = _dictionary(song=["Lover"])
    ev = _feed(d, [("play Lover", "play", {"song": "Lover"})], times=4)
    p = best_program(ev, min_support=5, target=0.01, z=0.0)
    assert p is not None and not p.valid and "minimum support" in p.reason
    only_chat = TemplateEvidence()
    only_chat.add_no_call(NO_CALL, 50)
    assert best_program(only_chat, **STRICT) is None


def test_a_missing_slot_is_an_assembly_error() -> None:
    d = _dictionary(city=["Paris", "Rome"])
    t = QueryTemplater(d)
    ev = _feed(d, [("from Paris to Rome", "route", {"origin": "Paris", "destination": "Rome"})], times=15)
    p = best_program(ev, **STRICT)
    assert p is not None
    with pytest.raises(AssemblyError, match="city #2"):
        p.assemble(t.template("from Paris").slots, d)


def test_calls_beyond_the_observation_cap_count_against_every_program() -> None:
    d = _dictionary(song=["Lover"])
    ev = TemplateEvidence(max_observations=2)
    slots = QueryTemplater(d).template("play Lover").slots
    for i in range(10):
        ev.add(observe("play", {"song": "Lover"}, slots, d))
        ev.add(observe("play", {"song": "Lover", "take": i}, slots, d))
    assert sum(ev.overflow.values()) == 9 and ev.calls["play"] == 20
    p = best_program(ev, **STRICT)
    assert p is not None and (p.support, p.agreement) == (20, 10)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=6,
    )
)
def test_sources_and_observations_round_trip_through_text(value: Any) -> None:
    d = _dictionary(song=["Lover"])
    obs = observe("f", {"a": value, "song": "Lover"}, QueryTemplater(d).template("play Lover").slots, d)
    assert Observation.from_json("f", obs.to_json()) == obs
    for _, sources in obs.arguments:
        for source in sources:
            assert ArgSource.parse(str(source)) == source


@pytest.mark.parametrize("text", ["slot:", "slot:song#1", "slot:song#x", "song", "const:{bad"])
def test_malformed_source_texts_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        ArgSource.parse(text)
