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
