"""Leave-one-group-out scores equal a brute-force recomputation on a real learner."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from odia_stream.embedding import Embedder
from odia_stream.routing import holdout
from odia_stream.routing.builder import budget_of, group_context, held_out_embeddings
from odia_stream.templates import EntityDictionary, QueryTemplater

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Built


def _routable(fn: str | None) -> bool:
    return fn not in (None, "<none>")


def test_leave_one_out_matches_equal_recomputed_clusters(shop: Built, embedder: Embedder) -> None:
    learner, snap = shop.learner, shop.snapshot
    groups = sorted((g for g in learner.groups.values() if g.alias_of is None), key=lambda g: g.group_id)
    _, _, taught = group_context(learner, groups)
    queries, _ = held_out_embeddings(learner, groups, taught, embedder)
    budget = budget_of(shop.settings.router)
    got = holdout.leave_one_out_matches(
        groups, queries, learner.clusters, snap.clusters, learner.labeler, _routable, budget
    )
    for k, g in enumerate(groups):
        best: tuple[float, str, str | None] | None = None
        for c in learner.clusters.values():
            if c.scope != g.scope:
                continue
            ws, counts = c.weighted_sum.astype(np.float64), Counter(c.function_counts)
            if c.cluster_id == g.cluster_id:
                ws, counts = ws - g.count * g.embedding, counts - g.function_counts
                if not counts:
                    continue
            d = learner.labeler.label(counts)
            sim = float(ws @ queries[k] / np.linalg.norm(ws))
            if best is None or sim > best[0]:
                label = holdout.routing_label(d.label, d.dominant_function, _routable)
                best = (sim, label, d.dominant_function)
        assert best is not None
        assert got[k].score == pytest.approx(best[0], abs=1e-4)
        assert (got[k].kind, got[k].function) == best[1:]


def test_held_out_text_keeps_only_entities_others_taught_too() -> None:
    d = EntityDictionary()
    d.add("singer", "Jay Chou")                   # taught by one query only
    d.add("song", "Hello", count=3)               # named by three queries
    d.add("city", "Paris", source="file")         # from a user file
    templater = QueryTemplater(d)
    taught = holdout.taught_values([{"singer": "Jay Chou", "song": "Hello"}, {"city": ["paris"]}])
    query = "play Hello by Jay Chou"
    assert holdout.held_out_text(query, templater, d, taught) == ("play <song> by jay chou", True)
    assert holdout.held_out_text(query, templater, d, frozenset()) == ("play <song> by <singer>", True)
    assert holdout.held_out_text("weather in Paris", templater, d, taught) == ("weather in <city>", True)
    assert holdout.held_out_text("hi Jay Chou", templater, d, taught) == ("hi jay chou", False)


def test_templates_are_scored_without_the_held_out_group(shop: Built) -> None:
    learner = shop.learner
    groups = sorted((g for g in learner.groups.values() if g.alias_of is None), key=lambda g: g.group_id)
    keys = holdout.template_keys(groups, learner.templater_of)
    pooled = holdout.pool_templates(groups, keys)
    budget = budget_of(shop.settings.router)
    held = holdout.leave_one_out_templates(groups, keys, keys, pooled, learner.labeler, _routable, budget)
    checked = 0
    for g, key, h in zip(groups, keys, held, strict=True):
        if key is None:
            assert h.kind == "none" and h.score == -math.inf
            continue
        n, counts = pooled[key]
        rest = counts - g.function_counts
        if n - 1 < 2 or not rest:
            assert h.kind == "none"
            continue
        d = learner.labeler.label(rest)
        assert (h.function, h.score) == (d.dominant_function, d.share_lower_bound)
        checked += 1
    assert checked > 20


def _group(gid: int, calls: dict[str, int], norm: str = "") -> QueryGroup:
    from odia_stream.clustering.records import QueryGroup

    return QueryGroup(gid, "s", "app", norm or f"q{gid}", norm or f"q{gid}", gid, np.zeros(2), sum(calls.values()),
                      Counter(calls))


def test_known_queries_are_calibrated_by_predicting_each_record_from_the_others() -> None:
    from odia_stream.routing.calibration import choose_threshold

    groups = [
        _group(1, {"play": 5}),  # consistent: every record predicted right
        _group(2, {"play": 1}),  # seen once: nothing to predict it from
        _group(3, {"play": 1, "stop": 1}),  # a tie: each record predicted as the other's function
        _group(4, {"pay": 3}),  # a function the small model may not answer
        _group(5, {"play": 9, "stop": 1}),
    ]
    scores, correct, total = holdout.leave_one_record_out(groups, lambda f: f != "pay", z=1.645)
    assert total.sum() == sum(g.count for g in groups) and len(scores) == 7  # one item per group and function
    assert np.isinf(scores[[1, 4]]).all() and np.isfinite(scores[[0, 2, 3, 5, 6]]).all()  # seen once; "pay"
    assert correct.tolist() == [5.0, 0.0, 0.0, 0.0, 0.0, 9.0, 0.0]
    # the consistent group's records score as four agreeing records; the lone "stop" as nine "play"s
    assert scores[0] == pytest.approx(holdout.wilson_lower_bound(4, 4, 1.645))
    assert scores[-1] == pytest.approx(holdout.wilson_lower_bound(9, 9, 1.645))

    t = choose_threshold(scores, correct, total, target=0.5, z=0.0)
    known = holdout.known_queries(groups, lambda f: f != "pay", 1.645, t.value, limit=10)
    assert [(q.norm, q.function, q.size, q.dominant) for q in known] == [("q1", "play", 5, 5), ("q5", "play", 10, 9)]
    assert [q.norm for q in holdout.known_queries(groups, lambda f: True, 1.645, t.value, limit=1)] == ["q5"]
    assert holdout.known_queries(groups, lambda f: True, 1.645, math.inf, limit=10) == ()
