"""The template tier on a real router: programs in the snapshot, answers, and every fall-through."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from shop_app import TOOLS, shop_events

from odia_stream.embedding import Embedder
from odia_stream.labels import NO_CALL
from odia_stream.routing import Router, RouterSnapshot, load_snapshot, request_of, write_snapshot
from odia_stream.routing.builder import live_programs
from odia_stream.settings import RouterSettings
from odia_stream.stats import wilson_lower_bound
from schemas import ServeRequest, ToolSpec

if TYPE_CHECKING:
    from conftest import Built

#: The shop app is small: at this target its frequent templates have live programs.
TARGET = 0.9


def _with_programs(built: Built, **router: object) -> tuple[RouterSnapshot, RouterSettings]:
    rs = built.settings.router.model_copy(update={"target_precision": TARGET, **router})
    programs = live_programs(built.learner, rs, lambda f: f is not None and f != NO_CALL)
    return dataclasses.replace(built.snapshot, programs=programs), rs


def _request(query: str, tools: list[ToolSpec] = TOOLS) -> ServeRequest:
    ev = next(e for e in shop_events() if not e.history)
    return request_of(ev.model_copy(update={"query": query, "tools": tools, "event_id": "t"}))


def test_programs_go_into_the_snapshot_and_round_trip(shop: Built, embedder: Embedder, tmp_path: Path) -> None:
    snapshot, _ = _with_programs(shop)
    by_template = {p.template: p for p in snapshot.programs}
    play = by_template["play <song> by <singer>"]
    assert play.function == "play_music" and dict(play.sources) == {"singer": "slot:singer", "song": "slot:song"}
    assert play.agreement == play.support and play.lower_bound >= TARGET and play.key.startswith("p")
    # Each program is valid by its own evidence or, pooled, by its family's (and starts its budget there).
    assert all(
        p.lower_bound >= TARGET
        or (p.pooled and wilson_lower_bound(p.family_agreement, p.family_support, 1.645) >= TARGET)
        for p in snapshot.programs
    )
    assert any(p.pooled for p in snapshot.programs) and all(p.prior[1] >= p.support for p in snapshot.programs)
    loaded = load_snapshot(write_snapshot(snapshot, tmp_path).path)
    assert loaded.programs == snapshot.programs
    other = load_snapshot(write_snapshot(shop.snapshot, tmp_path).path)
    assert other.version != loaded.version, "programs are part of the content hash"


def test_a_live_program_answers_with_the_slots_of_the_request(shop: Built, embedder: Embedder) -> None:
    snapshot, rs = _with_programs(shop)
    router = Router(snapshot, embedder, rs)
    request = _request("play Lover by Adele")
    decision = router.decide(request)
    assert decision.route == "small" and decision.function == "play_music"
    answer = router.template_answer(request, decision.function)
    assert answer.miss is None and answer.call is not None
    assert answer.call.name == "play_music" and answer.call.arguments == {"song": "Lover", "singer": "Adele"}
    assert answer.program is not None and answer.assemble_ms > 0


def test_requests_fall_through_for_a_reason(shop: Built, embedder: Embedder) -> None:
    snapshot, rs = _with_programs(shop)
    router = Router(snapshot, embedder, rs)
    assert router.template_answer(_request("play something i have never heard of"), "play_music").miss == "no_program"
    other = router.template_answer(_request("play Lover by Adele"), "get_weather")
    assert other.miss == "other_function" and other.call is None
    never = Router(snapshot, embedder, rs.model_copy(update={"never_small": ["play_music"]}))
    assert never.template_answer(_request("play Lover by Adele"), "play_music").miss == "never_small"


def test_a_value_the_offered_schema_refuses_falls_through(shop_context: Built, embedder: Embedder) -> None:
    """In the ``context`` scope the tool set is not part of the template's key: a client may offer
    a stricter schema, and the assembled call must pass it like a model's call."""
    snapshot, rs = _with_programs(shop_context)
    router = Router(snapshot, embedder, rs)
    strict = [
        ToolSpec(function={**t.function.model_dump(), "parameters": {
            "type": "object",
            "properties": {"song": {"type": "string", "enum": ["Perfect"]}, "singer": {"type": "string"}},
        }}) if t.name == "play_music" else t
        for t in TOOLS
    ]
    ok = router.template_answer(_request("play Perfect by Adele", strict), "play_music")
    assert ok.call is not None, ok.detail
    refused = router.template_answer(_request("play Lover by Adele", strict), "play_music")
    assert refused.miss == "invalid_call" and refused.call is None and "Lover" in refused.detail


def test_a_program_whose_shadow_checks_disagree_is_demoted(shop: Built, embedder: Embedder) -> None:
    snapshot, rs = _with_programs(shop)
    router = Router(snapshot, embedder, rs)
    request = _request("play Lover by Adele")
    key = router.template_answer(request, "play_music").program
    assert key is not None
    for _ in range(200):
        router.record_agreement(key, False)
        if router.template_answer(request, "play_music").miss == "error_budget":
            break
    else:
        pytest.fail("the program was never demoted")
    assert not router.budget.allows(key)


def test_a_program_valid_by_its_family_starts_its_budget_from_the_familys_record(
    shop: Built, embedder: Embedder
) -> None:
    snapshot, rs = _with_programs(shop)
    router = Router(snapshot, embedder, rs)
    pooled = [p for p in snapshot.programs if p.pooled]
    assert pooled
    for p in pooled:
        state = router.budget.state(p.key)
        scale = min(1.0, rs.error_budget_prior_cap / p.family_support)
        assert state.prior_total == pytest.approx(p.family_support * scale)
        assert state.prior_successes == pytest.approx(p.family_agreement * scale)
        # Its own few answers alone would not have let it start.
        assert p.support < p.family_support
