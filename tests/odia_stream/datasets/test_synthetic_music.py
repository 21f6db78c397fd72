"""The built-in synthetic music-app traffic: determinism, validity, popularity, context, noise,
the ``synthetic:music`` dataset spec, and what the real learner makes of it."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import jsonschema
import pytest

from odia_stream.context import previous_call, tools_fingerprint
from odia_stream.datasets import DatasetError, ReadStats, detect_format, group_of, load_dataset
from odia_stream.datasets import synthetic_music as sm
from odia_stream.datasets.synthetic_music import (
    DEFAULT_EVENTS,
    SyntheticMusicRecord,
    generate_music_events,
    iter_music_events,
    iter_music_records,
    music_tools,
)
from odia_stream.keys import group_key_of
from odia_stream.normalize import normalize_query
from odia_stream.validation import parse_event

_CJK = re.compile(r"[\u4e00-\u9fff]")
DATA = Path(sm.__file__).resolve().parents[1] / "data" / "synthetic_music"


@pytest.fixture(scope="module")
def records() -> list[SyntheticMusicRecord]:
    """6,000 records with the default knobs."""
    return list(iter_music_records(6000, seed=11))


def _dump(events: list) -> list[str]:
    return [e.model_dump_json() for e in events]


def test_a_seed_fixes_the_stream_and_another_seed_changes_it() -> None:
    first = generate_music_events(800, seed=3)
    assert _dump(first) == _dump(generate_music_events(800, seed=3))
    # Streaming: the endless iterator starts with the same events.
    assert _dump(list(itertools.islice(iter_music_events(None, seed=3), 800))) == _dump(first)
    other = generate_music_events(800, seed=4)
    assert sum(a.query != b.query for a, b in zip(first, other, strict=True)) > 400
    assert len({e.event_id for e in first}) == 800


def test_every_event_is_a_valid_wire_event_marked_synthetic(records: list[SyntheticMusicRecord]) -> None:
    tools = music_tools()
    specs = {t.name: t.function for t in tools}
    assert 12 <= len(tools) == len(specs)
    validators = {name: jsonschema.Draft202012Validator(spec.parameters) for name, spec in specs.items()}
    for r in records:
        e = r.event
        assert parse_event(e.model_dump_json().encode()) == e
        assert e.event_id.startswith("synthetic-music-")
        assert e.source is not None and e.source.startswith("synthetic-music/")
        assert e.app == "music-app"
        assert e.tools == tools  # the app's fixed tool set: one fingerprint for all traffic
        assert e.latency_ms is not None and e.latency_ms > 0
        assert len([m for m in e.history if m.role == "user"]) <= 3
        # What a consistent model calls satisfies the tool's JSON schema.
        if r.intended_call is not None:
            validators[r.intended_call.name].validate(r.intended_call.arguments)
        if not r.inconsistent:
            assert e.call == r.intended_call
    assert len({tools_fingerprint(r.event.tools) for r in records}) == 1
    # Conversations stay on one side of a split.
    sessions = defaultdict(set)
    for r in records:
        sessions[r.session].add(group_of(r.event))
    assert all(len(g) == 1 for g in sessions.values())


def test_both_languages_are_mixed_and_can_be_chosen(records: list[SyntheticMusicRecord]) -> None:
    langs = Counter(r.lang for r in records)
    assert set(langs) == {"zh", "en"}
    assert 0.4 < langs["zh"] / len(records) < 0.6
    for r in records:
        if r.lang == "zh":
            assert _CJK.search(r.event.query), r.event.query
        else:
            assert r.event.query.isascii(), r.event.query
    zh_only = list(iter_music_records(300, seed=1, languages=("zh",)))
    assert {r.lang for r in zh_only} == {"zh"}
    assert all(_CJK.search(r.event.query) for r in zh_only)


def test_popular_queries_dominate_like_zipf(records: list[SyntheticMusicRecord]) -> None:
    counts = Counter(normalize_query(r.event.query) for r in records)
    ranked = [c for _, c in counts.most_common()]
    assert len(counts) < len(records) / 3  # heavy repetition, as in production
    top_tenth = sum(ranked[: max(1, len(ranked) // 10)])
    assert top_tenth / len(records) > 0.5
    assert ranked[0] / len(records) > 0.02
    # Entities too: the most popular artist is named far more often than the median one.
    artists = Counter(r.event.call.arguments["artist"] for r in records
                      if r.kind == "plain" and r.event.call and r.event.call.name == "play_artist"
                      and "artist" in r.event.call.arguments)
    values = sorted(artists.values(), reverse=True)
    assert values[0] > 5 * values[len(values) // 2]


def test_calls_carry_the_entity_values_of_the_query(records: list[SyntheticMusicRecord]) -> None:
    checked = 0
    for r in records:
        if r.kind == "plain" and r.intended_call is not None:
            for name in ("song", "artist", "playlist", "genre", "mood"):
                value = r.intended_call.arguments.get(name)
                if value is not None:
                    assert isinstance(value, str) and value.lower() in r.event.query.lower()
                    checked += 1
    assert checked > 1000


def test_follow_ups_depend_on_the_previous_call_in_history(records: list[SyntheticMusicRecord]) -> None:
    follow_ups = [r for r in records if r.kind == "follow_up"]
    assert len(follow_ups) / len(records) > 0.1
    by_session: dict[int, list[SyntheticMusicRecord]] = defaultdict(list)
    for r in records:
        by_session[r.session].append(r)
    for r in follow_ups:
        turns = by_session[r.session]
        before = turns[turns.index(r) - 1]
        # History ends with the previous turn: its assistant tool call and the tool's result.
        assert r.event.history[-2].role == "assistant" and r.event.history[-2].tool_calls
        assert r.event.history[-1].role == "tool"
        assert r.event.history[-1].tool_call_id == r.event.history[-2].tool_calls[0].id
        assert before.event.call is not None
        assert r.event.history[-2].tool_calls[0].function == before.event.call
        assert previous_call(r.event.history) == before.event.call.name
        assert r.event.history[-3].content == before.event.query
    # The same words call different functions after different calls, one function per context.
    per_context: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    per_query: dict[str, set[str]] = defaultdict(set)
    for r in follow_ups:
        q = normalize_query(r.event.query)
        per_context[(q, previous_call(r.event.history))].add(r.intended_call.name)  # type: ignore[union-attr]
        per_query[q].add(r.intended_call.name)  # type: ignore[union-attr]
    assert all(len(fns) == 1 for fns in per_context.values())
    assert any(len(fns) > 1 for fns in per_query.values())
    assert per_query["换一首"] >= {"next_track", "recommend_music"}
    assert per_query["another one"] >= {"next_track", "recommend_music"}


def test_ambiguous_requests_split_between_functions(records: list[SyntheticMusicRecord]) -> None:
    ambiguous = [r for r in records if r.kind == "ambiguous"]
    assert 0.02 < len(ambiguous) / len(records) < 0.1
    per_family: dict[str, Counter[str]] = defaultdict(Counter)
    per_query: dict[str, Counter[str]] = defaultdict(Counter)
    for r in ambiguous:
        per_family[r.intent][r.event.call.name] += 1  # type: ignore[union-attr]
        per_query[normalize_query(r.event.query)][r.event.call.name] += 1  # type: ignore[union-attr]
    assert set(per_family) == {"bare_song", "bare_artist", "some_music", "go_on"}
    for family, c in per_family.items():
        assert len(c) == 2 and max(c.values()) / sum(c.values()) < 0.7, (family, c)
    frequent = {q: c for q, c in per_query.items() if sum(c.values()) >= 10}
    assert len(frequent) >= 3 and all(len(c) == 2 for c in frequent.values()), frequent


def test_chitchat_is_answered_without_a_call(records: list[SyntheticMusicRecord]) -> None:
    chat = [r for r in records if r.kind == "chitchat"]
    assert chat and all(r.event.call is None and r.intended_call is None for r in chat)
    assert all(r.event.call is not None for r in records if r.kind != "chitchat")


@pytest.mark.parametrize("share", [0.0, 0.03, 0.2, 1.0])
def test_inconsistency_share_follows_the_setting(share: float) -> None:
    recs = list(iter_music_records(6000, seed=5, inconsistency_share=share))
    eligible = [r for r in recs if r.kind in ("plain", "follow_up")]
    wrong = [r for r in eligible if r.inconsistent]
    assert abs(len(wrong) / len(eligible) - share) <= max(0.012, 0.15 * share)
    for r in wrong:
        rec, intended = r.event.call, r.intended_call
        assert rec is not None and intended is not None and rec != intended
        if rec.name == intended.name:  # a dropped argument
            assert set(rec.arguments) < set(intended.arguments)
    assert not any(r.inconsistent for r in recs if r.kind in ("ambiguous", "chitchat"))
    if share == 1.0:
        # Every function the app calls has a plausible wrong variant.
        assert {r.intended_call.name for r in wrong} == {r.intended_call.name for r in eligible}  # type: ignore[union-attr]
        assert len({r.event.call.name for r in wrong}) > 10  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "options",
    [
        {"languages": ("fr",)},
        {"languages": ()},
        {"languages": ("zh", "zh")},
        {"inconsistency_share": 1.5},
        {"follow_up_rate": 1.0},
        {"ambiguous_share": 0.6, "chitchat_share": 0.6},
        {"zipf_exponent": 0.0},
        {"app": " "},
    ],
)
def test_bad_knobs_are_refused_at_the_call(options: dict) -> None:
    with pytest.raises(ValueError):
        iter_music_records(10, seed=0, **options)


def test_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="n must be"):
        generate_music_events(-1, seed=0)


def test_load_dataset_builds_it_from_the_synthetic_spec() -> None:
    assert detect_format(Path("synthetic:music")) == "synthetic"
    stats = ReadStats()
    events = list(load_dataset(Path("synthetic:music:n=300,seed=2,inconsistency=0.1"), stats=stats))
    assert _dump(events) == _dump(generate_music_events(300, seed=2, inconsistency_share=0.1))
    assert stats.events == 300 and sum(stats.per_file.values()) == 300
    assert len(list(load_dataset(Path("synthetic:music"), limit=40))) == 40
    assert len(list(load_dataset(Path("synthetic:music:n=30"), limit=40))) == 30
    zh = list(load_dataset(Path("synthetic:music"), lang="zh", limit=50))
    assert all(_CJK.search(e.query) for e in zh)
    assert sum(1 for _ in load_dataset(Path("synthetic:music:seed=9"))) == DEFAULT_EVENTS


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("synthetic:weather", "unknown synthetic dataset"),
        ("synthetic:music:colour=red", "bad option"),
        ("synthetic:music:n", "bad option"),
        ("synthetic:music:n=many", "not a valid int"),
        ("synthetic:music:inconsistency=2", "inconsistency_share"),
    ],
)
def test_bad_synthetic_specs_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        list(load_dataset(Path(spec)))


def test_bad_language_for_the_synthetic_spec() -> None:
    with pytest.raises(DatasetError, match="languages"):
        load_dataset(Path("synthetic:music"), lang="fr")


def test_vocabulary_files_are_marked_synthetic_and_unambiguous() -> None:
    for lang in sm.LANGUAGES:
        data = json.loads((DATA / f"{lang}.json").read_text(encoding="utf-8"))
        assert "SYNTHETIC" in data["_about"]
        values: dict[str, str] = {}
        for artist in data["artists"]:
            values[artist["name"].casefold()] = "artist"
            for song in artist["songs"]:
                assert song.casefold() not in values, song
                values[song.casefold()] = "song"
        for kind in ("playlists", "genres", "moods"):
            for v in data[kind]:
                assert v.casefold() not in values, v
                values[v.casefold()] = kind
        # No entity is a whole-word part of an entity of another type (templates stay unambiguous).
        for a, b in itertools.permutations(values, 2):
            if values[a] != values[b]:
                pattern = re.escape(a) if _CJK.search(a) else rf"\b{re.escape(a)}\b"
                assert not re.search(pattern, b), (a, b)
        assert 100 <= len(values) <= 600


@pytest.mark.slow
def test_the_learner_finds_popular_intents_simple_and_ambiguous_ones_not(model_cache: Path, tmp_path: Path) -> None:
    from odia_stream.clustering import OffsetAlignedBatcher, SourcedItem
    from odia_stream.clustering.factory import open_embedder, open_learner
    from odia_stream.settings import OdiaSettings

    recs = list(iter_music_records(8000, seed=0))
    settings = OdiaSettings(state_dir=tmp_path / "state")
    assert settings.clustering.scope == "tools+context"
    learner = open_learner(settings, embedder=open_embedder(OdiaSettings(state_dir=model_cache.parent)))
    try:
        batcher: OffsetAlignedBatcher = OffsetAlignedBatcher(settings.clustering.batch_size)
        for offset, r in enumerate(recs):
            for ready in batcher.add(SourcedItem("fc-logs", 0, offset, r.event)):
                learner.process_batch(ready)
        for ready in batcher.flush():
            learner.process_batch(ready)

        canonical = {}
        for g in learner.groups.values():
            root = g
            while root.alias_of is not None:
                root = learner.groups[root.alias_of]
            canonical[g.key] = root.cluster_id

        def cluster_of(r: SyntheticMusicRecord):
            e = r.event
            return learner.clusters[canonical[group_key_of(e, "tools+context")]]

        outcome: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for r in recs:
            c = cluster_of(r)
            right = c.label == "simple" and r.intended_call is not None and c.dominant_function == r.intended_call.name
            outcome[(r.kind, r.intent)]["right" if right else c.label] += 1
    finally:
        learner.close()

    def share(key: tuple[str, str], what: str) -> float:
        return outcome[key][what] / sum(outcome[key].values())

    popular = [k for k, _ in Counter({k: sum(v.values()) for k, v in outcome.items() if k[0] == "plain"}).most_common(8)]
    assert ("plain", "play_song") in popular and ("plain", "next") in popular
    shares = {k[1]: round(share(k, "right"), 2) for k in popular}
    assert sum(shares.values()) / len(shares) >= 0.8, shares
    assert min(shares.values()) >= 0.5, shares
    # Ambiguous requests (a bare song or artist, "music", "继续") are not called simple.
    for key in [k for k in outcome if k[0] == "ambiguous"]:
        assert outcome[key]["simple"] + outcome[key]["right"] <= 0.1 * sum(outcome[key].values()), (key, outcome[key])
    # Follow-ups resolved through their context: simple ones name the right function.
    follow = [k for k in outcome if k[0] == "follow_up"]
    right = sum(outcome[k]["right"] for k in follow)
    assert right > 0.2 * sum(sum(outcome[k].values()) for k in follow)
    assert right >= 0.95 * (right + sum(outcome[k]["simple"] for k in follow))
