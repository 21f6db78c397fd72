"""The simulated replay large model on real datasets: recorded calls, fallbacks, seeded latencies."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from odia_stream.datasets import load_dataset
from odia_stream.large_model import (
    LargeModel,
    ReplaySimulatedLargeModel,
    build_large_model,
    history_signature,
    lognormal_params,
)
from odia_stream.large_model.replay import _call_key
from odia_stream.normalize import normalize_query
from odia_stream.settings import LargeModelSettings, OdiaSettings
from schemas import ChatMessage, FCLogEvent, ServeRequest


def _request(ev: FCLogEvent, request_id: str | None = None, **changes: object) -> ServeRequest:
    fields: dict[str, object] = {
        "request_id": request_id or f"req-{ev.event_id}",
        "app": ev.app,
        "query": ev.query,
        "history": ev.history,
        "tools": ev.tools,
    }
    fields.update(changes)
    return ServeRequest(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def hb_events(datasets_dir: Path) -> list[FCLogEvent]:
    hb = datasets_dir / "hammerbench" / "zh"
    return [ev for name in ("HammerBench_mQmA.json", "ir_ST_External.json") for ev in load_dataset(hb / name)]


@pytest.fixture(scope="module")
def hb_model(hb_events: list[FCLogEvent]) -> ReplaySimulatedLargeModel:
    return ReplaySimulatedLargeModel(hb_events, dataset_name="hammerbench/zh", seed=3, sleep=False)


def test_replays_the_recorded_call_of_every_multi_turn_record(
    hb_events: list[FCLogEvent], hb_model: ReplaySimulatedLargeModel
) -> None:
    # Records sharing a full key (query, history, tools) answer with their majority call; every
    # other record must get exactly its own call back, no-call records (ir_*) included.
    keyed: dict[tuple[object, ...], Counter[str]] = {}
    for ev in hb_events:
        key = (
            ev.app,
            normalize_query(ev.query),
            history_signature(ev.history),
            frozenset(t.name for t in ev.tools),
        )
        keyed.setdefault(key, Counter())[_call_key(ev.call)] += 1

    async def run() -> tuple[int, int, int]:
        same = unique = no_call = 0
        for ev in hb_events:
            answer = await hb_model.call(_request(ev))
            assert answer.simulated and "simulated" in answer.model and "simulated" in (answer.reason or "")
            key = (
                ev.app,
                normalize_query(ev.query),
                history_signature(ev.history),
                frozenset(t.name for t in ev.tools),
            )
            if len(keyed[key]) == 1:
                unique += 1
                assert answer.call == ev.call, ev.event_id
                assert "replayed the recorded answer" in (answer.reason or "")
                no_call += ev.call is None
            same += answer.call == ev.call
        return same, unique, no_call

    same, unique, no_call = asyncio.run(run())
    assert unique > 0.9 * len(hb_events)
    assert no_call > 50  # the ir_ST_External records: "no offered tool fits" is replayed too
    assert same >= unique


def test_history_decides_follow_ups_and_query_only_is_the_fallback(
    hb_events: list[FCLogEvent], hb_model: ReplaySimulatedLargeModel
) -> None:
    follow_up = next(ev for ev in hb_events if ev.history and ev.call is not None)
    other_history = [ChatMessage(role="user", content="something else entirely")]

    async def run() -> None:
        exact = await hb_model.call(_request(follow_up))
        assert exact.call == follow_up.call and "replayed" in (exact.reason or "")
        loose = await hb_model.call(_request(follow_up, history=other_history))
        assert loose.call is not None and loose.call.name in {t.name for t in follow_up.tools}
        assert "(app, query) only" in (loose.reason or "")
        # The fallback never answers with a function the request does not offer.
        offered = [t for t in follow_up.tools if t.name != follow_up.call.name]  # type: ignore[union-attr]
        none = await hb_model.call(_request(follow_up, history=other_history, tools=offered))
        if none.call is not None:
            assert none.call.name in {t.name for t in offered}
        else:
            assert "name no offered tool" in (none.reason or "")

    asyncio.run(run())


def test_unknown_request_gets_no_call_and_says_why(hb_model: ReplaySimulatedLargeModel) -> None:
    answer = asyncio.run(
        hb_model.call(ServeRequest(request_id="x", app="hammerbench", query="never recorded zzz"))
    )
    assert answer.call is None and answer.simulated
    assert "no recorded record" in (answer.reason or "") and "never recorded zzz" in (answer.reason or "")
    other_app = asyncio.run(
        hb_model.call(ServeRequest(request_id="y", app="elsewhere", query="看看我的交通违章情况怎么样"))
    )
    assert other_app.call is None and "no recorded record" in (other_app.reason or "")


def test_latency_is_seeded_per_request_and_fits_median_and_p90(hb_events: list[FCLogEvent]) -> None:
    a = ReplaySimulatedLargeModel(hb_events[:5], dataset_name="t", seed=11, sleep=False)
    b = ReplaySimulatedLargeModel(hb_events[:5], dataset_name="t", seed=11, sleep=False)
    c = ReplaySimulatedLargeModel(hb_events[:5], dataset_name="t", seed=12, sleep=False)
    ids = [f"r{i}" for i in range(20_000)]
    la = [a.latency_ms(i) for i in ids]
    assert la == [b.latency_ms(i) for i in ids]  # same seed, same ids: identical, in any order
    assert la[::-1] == [b.latency_ms(i) for i in reversed(ids)]
    assert sum(x != y for x, y in zip(la, (c.latency_ms(i) for i in ids), strict=True)) > 19_900
    q = statistics.quantiles(la, n=10)
    assert statistics.median(la) == pytest.approx(1600, rel=0.03)
    assert q[8] == pytest.approx(2500, rel=0.04)
    # Answers carry the drawn latency, and a repeated request answers the same way.
    req = _request(hb_events[0], request_id="r7")
    first, second = asyncio.run(a.call(req)), asyncio.run(b.call(req))
    assert first == second and first.latency_ms == la[7]


def test_sleep_mode_waits_the_drawn_latency(hb_events: list[FCLogEvent]) -> None:
    model = ReplaySimulatedLargeModel(hb_events[:5], dataset_name="t", median_ms=40, p90_ms=60, sleep=True)
    req = _request(hb_events[0], request_id="sleepy")
    start = time.perf_counter()
    answer = asyncio.run(model.call(req))
    assert (time.perf_counter() - start) * 1000 >= answer.latency_ms * 0.99
    assert answer.latency_ms == model.latency_ms("sleepy")


def test_lognormal_params_and_bad_input() -> None:
    mu, sigma = lognormal_params(1600, 2500)
    assert mu == pytest.approx(7.3778, abs=1e-3) and sigma == pytest.approx(0.3483, abs=1e-3)
    with pytest.raises(ValueError, match="median < p90"):
        lognormal_params(1600, 1500)
    with pytest.raises(ValueError, match="no recorded events"):
        ReplaySimulatedLargeModel([], dataset_name="empty")
    with pytest.raises(ValidationError, match="greater than replay_median_ms"):
        LargeModelSettings(replay_median_ms=2000, replay_p90_ms=1000)


def test_factory_builds_replay_from_settings_and_refuses_incomplete_ones(
    datasets_dir: Path, tmp_path: Path
) -> None:
    base = OdiaSettings(state_dir=tmp_path)
    with pytest.raises(ValueError, match="no dataset is set"):
        build_large_model(base)
    with pytest.raises(ValueError, match="no model is set"):
        build_large_model(base.model_copy(update={"large_model": LargeModelSettings(kind="openai")}))
    settings = base.model_copy(
        update={
            "large_model": LargeModelSettings(
                replay_dataset=datasets_dir / "snips", seed=5, replay_median_ms=900
            )
        }
    )
    model = build_large_model(settings, sleep=False)
    assert isinstance(model, LargeModel) and model.name == "replay-simulated(snips)"
    ev = next(iter(load_dataset(datasets_dir / "snips")))
    answer = asyncio.run(model.call(_request(ev)))
    assert answer.call == ev.call and answer.model == "replay-simulated(snips)"
    assert model.records > 10_000  # type: ignore[attr-defined]
