"""The online learner on real data, a real embedder and the real embedded store (no Kafka)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

from odia_stream.cluster_quality import cluster_purity
from odia_stream.clustering import OnlineClusterLearner
from odia_stream.store import EmbedderMismatchError
from schemas import FCLogEvent

MakeLearner = Callable[..., OnlineClusterLearner]


def _cluster_of(learner: OnlineClusterLearner) -> dict[str, int]:
    return {g.norm: g.cluster_id for g in learner.groups.values()}


@pytest.fixture()
def snips_learner(
    as_items: Callable[..., list], feed: Callable[..., None], make_learner: MakeLearner, snips_events: list[FCLogEvent]
) -> OnlineClusterLearner:
    """A learner (``make_learner()``'s default state) fed every event of ``snips_events``."""
    learner = make_learner()
    feed(learner, as_items(snips_events))
    return learner


def test_snips_intents_become_simple_clusters_with_the_right_function(
    snips_learner: OnlineClusterLearner, snips_events: list[FCLogEvent]
) -> None:
    learner = snips_learner
    s = learner.summary()
    assert s.events == len(snips_events)
    assert 7 <= s.clusters < len(snips_events) / 2, s
    # Most traffic sits in simple clusters, each dominated by the intent of its members.
    simple = [c for c in learner.clusters.values() if c.label == "simple"]
    in_simple = sum(c.size for c in simple)
    assert in_simple / s.events > 0.5, s
    intents = {e.call.name for e in snips_events if e.call}
    assert {c.dominant_function for c in simple} <= intents
    assert len({c.dominant_function for c in simple}) >= 5
    # Precision: records in simple clusters call the cluster's dominant function.
    agree = sum(c.function_counts[c.dominant_function] for c in simple)  # type: ignore[index]
    assert agree / in_simple >= 0.97
    # Purity of the clustering against the intents.
    assignment = _cluster_of(learner)
    from odia_stream.normalize import normalize_query

    truth = [e.call.name for e in snips_events]  # type: ignore[union-attr]
    pred = [assignment[normalize_query(e.query)] for e in snips_events]
    assert cluster_purity(truth, pred) > 0.9
    # The store holds one point per cluster, searchable by scope.
    assert learner.index.count() == s.clusters
    c = max(simple, key=lambda c: c.size)
    hit = learner.index.search(c.representative(), scope=c.scope, limit=1)[0]
    assert hit.cluster_id == c.cluster_id and hit.payload["label"] == "simple"


def test_context_dependent_follow_ups_are_not_all_simple(as_items: Callable[..., list], feed: Callable[..., None],
    make_learner: MakeLearner, hammerbench_events: list[FCLogEvent]
) -> None:
    from odia_stream.normalize import normalize_query

    follow_ups = {normalize_query(e.query) for e in hammerbench_events if e.history}
    # Query-only scopes: "the city is Guangzhou" pools across functions; the labeler must not
    # call those clusters simple wholesale.
    naive = make_learner("naive", scope="app")
    feed(naive, as_items(hammerbench_events))
    decided = [
        c for c in naive.clusters.values()
        if c.label != "undecided" and any(naive.groups[g].norm in follow_ups for g in c.group_ids)
    ]
    labels = Counter(c.label for c in decided)
    assert labels["complex"] > 0, labels
    # Context scopes (previous call, assistant asking): what is simple there is precise.
    ctx = make_learner("context", scope="context")
    feed(ctx, as_items(hammerbench_events))
    assert all("ctx:" in c.scope for c in ctx.clusters.values())
    simple = [c for c in ctx.clusters.values() if c.label == "simple" and ":ask" in c.scope]
    assert simple
    agree = sum(c.function_counts[c.dominant_function] for c in simple)  # type: ignore[index]
    assert agree / sum(c.size for c in simple) >= 0.95


def test_replaying_the_same_events_changes_nothing(as_items: Callable[..., list], feed: Callable[..., None], make_learner: MakeLearner, snips_events: list[FCLogEvent]) -> None:
    learner = make_learner()
    items = as_items(snips_events[:600])
    feed(learner, items)
    before = learner.snapshot()
    feed(learner, items)  # same offsets: skipped as applied
    feed(learner, as_items(snips_events[:600], start=10_000))  # same event ids at new offsets
    assert learner.snapshot() == before


def test_restart_mid_stream_equals_an_uninterrupted_run(as_items: Callable[..., list], feed: Callable[..., None], 
    make_learner: MakeLearner, snips_events: list[FCLogEvent]
) -> None:
    items = as_items(snips_events[:900])
    whole = make_learner("whole")
    feed(whole, items)

    first = make_learner("restarted")
    feed(first, items[:512])  # two full batches, then "crash": state only on disk
    first.close()
    second = make_learner("restarted")
    feed(second, items[300:])  # the consumer resumes from an older committed offset
    assert second.snapshot() == whole.snapshot()


def test_a_failing_batch_leaves_no_trace(as_items: Callable[..., list], feed: Callable[..., None], make_learner: MakeLearner, snips_events: list[FCLogEvent]) -> None:
    learner = make_learner()
    feed(learner, as_items(snips_events[:256]))
    before = learner.snapshot()
    real_embed = learner.embedder.embed

    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("embedder down")

    learner.embedder.embed = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="embedder down"):
        learner.process_batch(as_items(snips_events[256:512], start=256))
    learner.embedder.embed = real_embed  # type: ignore[method-assign]
    assert learner.snapshot() == before
    learner.process_batch(as_items(snips_events[256:512], start=256))  # and it recovers
    assert learner.summary().events == 512


def test_examples_are_capped_per_query(as_items: Callable[..., list], feed: Callable[..., None], make_learner: MakeLearner, snips_events: list[FCLogEvent]) -> None:
    learner = make_learner(max_examples_per_query=2)
    ev = snips_events[0]
    copies = [ev.model_copy(update={"event_id": f"{ev.event_id}-{i}"}) for i in range(5)]
    feed(learner, as_items(copies))
    (group,) = [g for g in learner.groups.values()]
    assert group.count == 5
    assert len(learner.db.examples_of([group.group_id])) == 2


def test_opening_a_store_with_another_embedder_is_refused(as_items: Callable[..., list], feed: Callable[..., None], 
    make_learner: MakeLearner, snips_events: list[FCLogEvent]
) -> None:
    learner = make_learner()
    feed(learner, as_items(snips_events[:10]))
    learner.close()

    class Renamed:
        model_id = "another-model"
        dim = learner.embedder.dim

        def embed(self, texts: list[str]) -> np.ndarray:
            raise AssertionError("never called")

    from odia_stream.clustering.factory import open_learner
    from odia_stream.settings import OdiaSettings

    with pytest.raises(EmbedderMismatchError):
        s = OdiaSettings(state_dir=learner.db.path.parent.parent)
        s = s.model_copy(update={"clustering": s.clustering.model_copy(update={"cluster_distance": 0.2, "merge_distance": 0.2})})
        open_learner(s, embedder=Renamed())  # type: ignore[arg-type]


def test_retrain_trigger_fires_when_enough_simple_examples_accumulate(as_items: Callable[..., list], feed: Callable[..., None], 
    make_learner: MakeLearner, snips_events: list[FCLogEvent]
) -> None:
    from odia_stream.settings import OdiaSettings

    learner = make_learner()
    learner.trigger_settings = OdiaSettings().triggers.model_copy(update={"min_new_examples": 300, "min_label_flips": 10_000})
    triggers = []
    for start in range(0, 1024, 256):
        triggers += learner.process_batch(as_items(snips_events[start : start + 256], start=start)).triggers
    assert triggers, "1,024 SNIPS events should give at least one trigger at 300 examples"
    t = triggers[0]
    assert t.app == "snips" and t.reason == "new_examples" and t.new_examples >= 300 and t.simple_clusters > 0
    assert t.embedder_id == learner.embedder.model_id


def test_template_clusters_pool_queries_that_differ_only_in_entities(
    snips_learner: OnlineClusterLearner, make_learner: MakeLearner
) -> None:
    learner = snips_learner
    templates = learner.template_clusters()
    assert templates, "SNIPS slots should give templates shared by several queries"
    top = templates[0]
    assert top.queries >= 2 and "<" in top.template
    # Their labels follow the same rule as semantic clusters, and simple ones are precise.
    simple = [t for t in templates if t.label == "simple"]
    assert simple
    assert sum(t.function_counts[t.dominant_function] for t in simple) / sum(t.size for t in simple) >= 0.97  # type: ignore[index]
    # Derived from durable state: a reopened learner sees the same template clusters.
    learner.close()
    assert make_learner().template_clusters() == templates


def test_template_programs_are_learned_and_survive_a_restart(
    snips_learner: OnlineClusterLearner, make_learner: MakeLearner, tmp_path
) -> None:
    from odia_stream.clustering.views import LearnerView

    programs = snips_learner.template_programs(target=0.5, z=1.645)
    slot_filled = [p for p in programs.values() if p.valid and any(s.kind != "const" for _, s in p.sources)]
    assert slot_filled, "SNIPS calls take their arguments from the query's slots"
    for p in slot_filled:
        assert p.agreement <= p.support and p.lower_bound >= 0.5 and not p.unexplained
    # The families kept batch by batch at the learner's own target are those built from scratch.
    rule = snips_learner.program_rule
    own = {k: rule.program(ev) for k, ev in snips_learner.template_evidence.items()}
    fresh = rule.families(own)
    assert len(snips_learner.program_families) == len(fresh) > 0
    assert all(snips_learner.program_families.of(k[0], p) == fresh.of(k[0], p) for k, p in own.items())
    at_target = snips_learner.template_programs(target=rule.target, z=rule.z)
    snips_learner.close()
    restarted = make_learner()
    assert restarted.template_programs(target=0.5, z=1.645) == programs
    assert restarted.template_programs(target=rule.target, z=rule.z) == at_target
    with LearnerView(tmp_path / "state" / "learner" / "learner.sqlite", clustering=snips_learner.settings) as view:
        assert view.template_programs(target=0.5, z=1.645) == programs


def test_cluster_states_show_their_templates_programs(snips_learner: OnlineClusterLearner) -> None:
    shown = [tp for c in snips_learner.clusters.values() for tp in snips_learner.cluster_state(c).template_programs]
    assert shown, "templated clusters publish their programs"
    for tp in shown:
        assert 0 <= tp.agreement <= tp.support and 0 <= tp.lower_bound <= 1 and tp.sources is not None
        assert 0 <= tp.family_agreement <= tp.family_support and 0 <= tp.family_lower_bound <= 1
        # At the default 0.99 target a live program has the evidence on its own or by its family.
        if tp.live:
            assert not tp.reason and (
                tp.lower_bound >= 0.99 or (tp.pooled and tp.family_templates >= 2 and tp.family_lower_bound >= 0.99)
            )
        else:
            assert tp.reason and not tp.pooled
