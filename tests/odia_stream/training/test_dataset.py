"""The training-set builder on a real learner fed with real SNIPS records (real embedder and store)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from odia_stream.clustering import OffsetAlignedBatcher, OnlineClusterLearner, SourcedItem
from odia_stream.clustering.factory import open_embedder, open_learner, open_learner_view
from odia_stream.normalize import normalize_query
from odia_stream.settings import OdiaSettings, TrainingDataSettings
from odia_stream.keys import cluster_key, group_key
from odia_stream.training.dataset import TrainingSet, build_training_set, held_out_groups
from schemas import FCLogEvent, FunctionCall

#: SNIPS events per intent: frequent and rare functions.
PER_INTENT = {
    "AddToPlaylist": 200,
    "GetWeather": 200,
    "PlayMusic": 120,
    "RateBook": 120,
    "BookRestaurant": 80,
    "SearchCreativeWork": 50,
    "SearchScreeningEvent": 50,
}
OPTIONS = TrainingDataSettings(max_per_function=60, min_per_function=40, eval_share=0.1, seed=3)


@dataclass
class Fed:
    """A learner fed with real records, and the records the test planted in it."""

    settings: OdiaSettings
    learner: OnlineClusterLearner
    recency_group: str
    recency_winner: str
    invalid_event: str


def _feed(learner: OnlineClusterLearner, events: list[FCLogEvent], start: int) -> None:
    batcher: OffsetAlignedBatcher[FCLogEvent] = OffsetAlignedBatcher(256)
    for i, ev in enumerate(events):
        for ready in batcher.add(SourcedItem("fc", 0, start + i, ev)):
            learner.process_batch(ready)
    for ready in batcher.flush():
        learner.process_batch(ready)


@pytest.fixture(scope="module")
def fed(
    snips_by_function: Mapping[str, Sequence[FCLogEvent]], model_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fed]:
    rng = random.Random(11)
    base = [e for fn, n in PER_INTENT.items() for e in rng.sample(snips_by_function[fn], n)]
    # Near-duplicates: the same words with a comma inserted (the learner aliases them to their original).
    variants = []
    for ev in rng.sample(base, 90):
        words = ev.query.split()
        if len(words) >= 4:
            query = " ".join(words[:2]) + ", " + " ".join(words[2:])
            variants.append(ev.model_copy(update={"event_id": ev.event_id + "-nd", "query": query}))
    events = base + variants
    rng.shuffle(events)
    settings = OdiaSettings(state_dir=tmp_path_factory.mktemp("training-state"))
    settings = settings.model_copy(
        update={"clustering": settings.clustering.model_copy(update={"max_examples_per_query": 5})}
    )
    embedder = open_embedder(OdiaSettings(state_dir=model_cache.parent))
    learner = open_learner(settings, embedder=embedder)
    _feed(learner, events, 0)
    # Recency: a query of a simple cluster logged again later, complete twice, then less complete.
    simple = {c.cluster_id: c for c in learner.clusters.values() if c.label == "simple"}
    by_norm = {normalize_query(e.query): e for e in base}
    group = next(
        g
        for g in sorted(learner.groups.values(), key=lambda g: g.group_id)
        if g.alias_of is None
        and g.cluster_id in simple
        and g.norm in by_norm
        and by_norm[g.norm].call is not None
        and len(by_norm[g.norm].call.arguments) >= 2  # type: ignore[union-attr]
        and by_norm[g.norm].call.name == simple[g.cluster_id].dominant_function  # type: ignore[union-attr]
        and g.count == 1
    )
    original = by_norm[group.norm]
    call = original.call
    assert call is not None
    later = [
        original.model_copy(
            update={"event_id": "recency-old", "timestamp": datetime(2026, 1, 1, tzinfo=UTC)}
        ),
        original.model_copy(
            update={"event_id": "recency-new", "timestamp": datetime(2026, 2, 1, tzinfo=UTC)}
        ),
        original.model_copy(
            update={
                "event_id": "recency-newest-partial",
                "timestamp": datetime(2026, 3, 1, tzinfo=UTC),
                "call": FunctionCall(name=call.name, arguments=dict(list(call.arguments.items())[1:])),
            }
        ),
        # A large-model mistake in a simple cluster: an argument the function does not declare.
        original.model_copy(
            update={
                "event_id": "invalid-call",
                "query": original.query + " now",
                "call": FunctionCall(name=call.name, arguments={**call.arguments, "not_declared": "x"}),
            }
        ),
    ]
    _feed(learner, later, 1_000_000)
    yield Fed(settings, learner, group_key(group.group_id), "recency-new", "invalid-call")
    learner.close()


@pytest.fixture(scope="module")
def built(fed: Fed) -> TrainingSet:
    return build_training_set(fed.learner, "snips", OPTIONS)


def test_records_call_their_simple_cluster_dominant_function(fed: Fed, built: TrainingSet) -> None:
    clusters = {cluster_key(c.cluster_id): c for c in fed.learner.clusters.values()}
    assert built.train and built.eval
    for r in built.train + built.eval:
        assert clusters[r.cluster].label == "simple"
        assert r.call.name == r.function == clusters[r.cluster].dominant_function
    assert built.stats.other_function_dropped > 0  # real SNIPS records landing in another intent's cluster
    assert built.stats.invalid_call_dropped >= 1
    assert fed.invalid_event not in {r.event_id for r in built.train + built.eval}
    assert build_training_set(fed.learner, "another-app", OPTIONS).train == []


def test_balance_downsamples_frequent_functions_and_keeps_rare_ones(built: TrainingSet) -> None:
    s = built.stats
    eval_by_fn = Counter(r.function for r in built.eval)
    downsampled = [f for f in s.available if s.available[f] - eval_by_fn[f] > OPTIONS.max_per_function]
    kept_whole = [f for f in s.available if s.available[f] - eval_by_fn[f] <= OPTIONS.max_per_function]
    assert downsampled and kept_whole, s
    for f in downsampled:
        assert s.train_distinct[f] == s.train[f] == OPTIONS.max_per_function
        # One record per query before a second one of any query.
        groups = Counter(r.group for r in built.train if r.function == f)
        assert max(groups.values()) == 1
    for f in kept_whole:
        assert s.train_distinct[f] == s.available[f] - eval_by_fn[f]
        assert s.train[f] == max(s.train_distinct[f], OPTIONS.min_per_function)
    rows = Counter(r.function for r in built.train)
    assert rows == Counter(s.train)
    # Repeats only where a function had fewer distinct records than the floor.
    repeats = Counter(r.event_id for r in built.train)
    assert {
        built.train[i].function for i in range(len(built.train)) if repeats[built.train[i].event_id] > 1
    } <= {f for f in s.train if s.train_distinct[f] < OPTIONS.min_per_function}
    assert max(rows.values()) / min(rows.values()) <= OPTIONS.max_per_function / OPTIONS.min_per_function
    assert max(s.available.values()) / min(s.available.values()) > 3


def test_identical_queries_keep_the_most_complete_then_most_recent_record(
    fed: Fed, built: TrainingSet
) -> None:
    in_group = [r for r in built.train + built.eval if r.group == fed.recency_group]
    assert {r.event_id for r in in_group} == {fed.recency_winner}
    assert built.stats.duplicate_input_dropped >= 3  # the original, the older copy, the newer partial one


def test_split_is_by_query_group_and_near_duplicates_stay_together(fed: Fed, built: TrainingSet) -> None:
    train_groups = {r.group for r in built.train}
    eval_groups = {r.group for r in built.eval}
    assert train_groups.isdisjoint(eval_groups)
    assert {normalize_query(r.query) for r in built.train}.isdisjoint(
        {normalize_query(r.query) for r in built.eval}
    )
    aliases = {g.norm: group_key(g.alias_of) for g in fed.learner.groups.values() if g.alias_of is not None}
    planted = [r for r in built.train + built.eval if normalize_query(r.query) in aliases]
    assert planted, "no near-duplicate record reached the training set"
    for r in planted:
        assert r.group == aliases[normalize_query(r.query)]
    # Every function has held-out records, about eval_share of its records.
    assert built.stats.no_eval == []
    for f, n in built.stats.available.items():
        assert 0 < built.stats.eval[f] <= max(0.3 * n, 5)


def test_a_group_keeps_its_side_as_the_store_grows(built: TrainingSet) -> None:
    keys_of: dict[str, set[str]] = {}
    for r in built.train + built.eval:
        keys_of.setdefault(r.function, set()).add(r.group)
    for function, keys in keys_of.items():
        ordered = sorted(keys)
        held = held_out_groups(ordered, OPTIONS.eval_share, OPTIONS.seed)
        assert {r.group for r in built.eval if r.function == function} <= held
        assert not held & {r.group for r in built.train if r.function == function}
        # The store knew only half of these groups before: the same groups were held out then
        # (but for the one group a function with none held out lends to eval).
        early = ordered[: len(ordered) // 2]
        assert len(held_out_groups(early, OPTIONS.eval_share, OPTIONS.seed) ^ (held & set(early))) <= 1


def test_deterministic_for_a_snapshot_and_seed(fed: Fed, built: TrainingSet) -> None:
    again = build_training_set(fed.learner, "snips", OPTIONS)
    assert again.fingerprint == built.fingerprint and again == built
    fed.learner.index.flush()
    with open_learner_view(fed.settings) as view:
        assert build_training_set(view, "snips", OPTIONS).fingerprint == built.fingerprint
    other = build_training_set(fed.learner, "snips", OPTIONS, seed=OPTIONS.seed + 1)
    assert other.fingerprint != built.fingerprint
    assert {r.group for r in other.eval} != {r.group for r in built.eval}
    assert len(built.fingerprint) == 64


def test_contradictory_options_are_refused(fed: Fed) -> None:
    with pytest.raises(ValueError, match="exceeds max_per_function"):
        build_training_set(fed.learner, None, TrainingDataSettings(max_per_function=5, min_per_function=10))
