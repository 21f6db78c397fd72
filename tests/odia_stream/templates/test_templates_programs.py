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
    FamilyEvidence,
    Observation,
    Program,
    ProgramFamilies,
    ProgramRule,
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


# -- families ------------------------------------------------------------------------------------
SONGS = {"song": ["Lover", "Hello", "Perfect"], "artist": ["Taylor Swift", "Adele", "Ed Sheeran"]}


def _plays(pattern: str, times: int, *, wrong: int = 0) -> TemplateEvidence:
    """``times`` calls of ``play(song, artist)`` for queries of ``pattern`` (``{s}`` and ``{a}``);
    the last ``wrong`` of them call ``pause`` instead."""
    d = _dictionary(**SONGS)
    pairs = list(zip(SONGS["song"], SONGS["artist"], strict=True))
    calls = []
    for i in range(times):
        song, artist = pairs[i % len(pairs)]
        function = "pause" if i >= times - wrong else "play"
        calls.append((pattern.format(s=song, a=artist), function, {"song": song, "artist": artist}))
    return _feed(d, calls)


def _families(rule: ProgramRule, evidence: dict[tuple[str, str, str], TemplateEvidence]) -> ProgramFamilies:
    return rule.families({k: rule.program(ev) for k, ev in evidence.items()})


def _judged(rule: ProgramRule, families: ProgramFamilies, app: str, ev: TemplateEvidence) -> Program:
    p = rule.program(ev, families.of(app, rule.program(ev)))
    assert p is not None
    return p


def test_a_rare_template_is_valid_by_its_familys_evidence() -> None:
    rule = ProgramRule(min_support=5, target=0.95, z=1.645)
    evidence = {("app", "s", "common"): _plays("play {s} by {a}", 120), ("app", "s", "rare"): _plays("{a} {s} now", 6)}
    families = _families(rule, evidence)
    alone = rule.program(evidence["app", "s", "rare"])
    assert alone is not None and not alone.valid and "lower bound" in alone.reason
    rare = _judged(rule, families, "app", evidence["app", "s", "rare"])
    assert rare.valid and rare.pooled and rare.reason == ""
    assert (rare.family_templates, rare.family_support, rare.family_agreement) == (2, 126, 126)
    assert rare.family_lower_bound >= 0.95 and rare.lower_bound == alone.lower_bound  # its own bound is kept
    common = _judged(rule, families, "app", evidence["app", "s", "common"])
    assert common.valid and not common.pooled  # valid on its own evidence
    # Without pooling, the rule judges each template alone.
    no_pool = ProgramRule(min_support=5, target=0.95, z=1.645, pool=False)
    judged_alone = no_pool.program(evidence["app", "s", "rare"], families.of("app", alone))
    assert judged_alone is not None and not judged_alone.valid


def test_a_template_whose_own_answers_disagree_is_not_saved_by_its_family() -> None:
    rule = ProgramRule(min_support=5, target=0.95, z=1.645)
    evidence = {("app", "s", "common"): _plays("play {s} by {a}", 400),
                ("app", "s", "mixed"): _plays("{a} {s} now", 10, wrong=3)}
    mixed = _judged(rule, _families(rule, evidence), "app", evidence["app", "s", "mixed"])
    assert not mixed.valid and not mixed.pooled and "own upper bound" in mixed.reason
    # It is not a member: the family's evidence is that of the templates it may serve.
    assert (mixed.family_templates, mixed.family_support, mixed.family_agreement) == (1, 400, 400)
    # A member with one disagreement in ten stays a member, and counts against the family.
    one_off = _plays("{a} {s} now", 10, wrong=1)
    member = _judged(rule, _families(rule, {**evidence, ("app", "s", "mixed"): one_off}), "app", one_off)
    assert member.valid and member.pooled and (member.family_support, member.family_agreement) == (410, 409)


def test_families_need_support_an_explained_program_the_same_app_and_a_good_pool() -> None:
    rule = ProgramRule(min_support=5, target=0.95, z=1.645)
    common, few = _plays("play {s} by {a}", 120), _plays("{a} {s} now", 4)
    other_app = _judged(rule, _families(rule, {("a", "s", "x"): common, ("b", "s", "y"): _plays("{a} {s} now", 6)}),
                        "b", _plays("{a} {s} now", 6))
    assert not other_app.valid and other_app.family_templates == 1  # apps never pool
    below_support = _judged(rule, _families(rule, {("a", "s", "x"): common, ("a", "s", "y"): few}), "a", few)
    assert not below_support.valid and "minimum support" in below_support.reason
    noisy = {("a", "s", str(i)): _plays(p, 20, wrong=2) for i, p in enumerate(["play {s} by {a}", "{a} {s} now"])}
    weak = _judged(rule, _families(rule, noisy), "a", noisy["a", "s", "1"])
    assert not weak.valid and "family's (2 templates, 36/40)" in weak.reason
    # An argument that varies with nothing in the query: no family.
    d = _dictionary(**SONGS)
    vague = _feed(d, [(f"play more {i}", "play", {"song": f"song {i}"}) for i in range(8)])
    assert ProgramFamilies.key_of("a", rule.program(vague)) is None


def test_families_kept_one_template_at_a_time_equal_families_built_at_once() -> None:
    rule = ProgramRule(min_support=5, target=0.95, z=1.645)
    steps = [("a", "s", "x"), ("a", "s", "y"), ("a", "s", "x"), ("b", "s", "x"), ("a", "s", "y")]
    evidence: dict[tuple[str, str, str], TemplateEvidence] = {}
    kept = ProgramFamilies(rule.target, rule.z)
    for i, key in enumerate(steps):
        # Each step replaces the template's evidence; the third turns "y" into a pause template.
        evidence[key] = _plays("play {s} by {a}" if key[2] == "x" else "{a} {s} now", 6 + i, wrong=6 + i if i == 4 else 0)
        kept.update(key, key[0], rule.program(evidence[key]))
        built = _families(rule, evidence)
        assert len(kept) == len(built)
        for key2, ev in evidence.items():
            assert kept.of(key2[0], rule.program(ev)) == built.of(key2[0], rule.program(ev))
    assert kept.of("a", rule.program(evidence["a", "s", "x"])) == FamilyEvidence(1, 8, 8)
