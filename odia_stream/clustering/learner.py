"""``OnlineClusterLearner``: micro-batches of validated FC logs in, cluster changes out.

Per batch: skip what was applied before (by partition offset and by ``event_id``), group
records by normalised query within their scope, embed only new queries, cluster them
(first level), merge each new cluster into the nearest existing one of its scope through the
vector store (second level, weighted centroids) or create it, prune near-identical queries,
keep the best examples per query, relabel touched clusters, and decide retrain triggers.
All of it is committed in one SQLite transaction; the vector store follows and is reconciled
from SQLite on open, so a crash at any point recovers to a state equal to an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from odia_stream.clustering.batching import SourcedItem
from odia_stream.clustering.first_level import agglomerate
from odia_stream.clustering.merge import WeightedCentroidMerger, weighted_representative
from odia_stream.clustering.pruning import argument_completeness, near_duplicates, select_examples
from odia_stream.clustering.records import Cluster, QueryGroup, StoredExample
from odia_stream.clustering.state_db import LearnerStateDB
from odia_stream.clustering.views import LearnerViews, cluster_key
from odia_stream.context import scope_key
from odia_stream.embedding import Embedder
from odia_stream.labels import NO_CALL, WilsonLabeler
from odia_stream.normalize import normalize_query
from odia_stream.settings import ClusteringSettings, TriggerSettings
from odia_stream.store import ClusterIndex, ClusterPoint, EmbedderMismatchError, EmbedderSpec
from odia_stream.templates import EntityDictionary, QueryTemplater, learn_from_call
from schemas import ClusterState, FCLogEvent, RetrainTrigger


#: Batches between flushes of the vector store (it is rebuilt from SQLite after a crash anyway).
INDEX_FLUSH_EVERY_BATCHES = 20


def stable_id(*parts: str) -> int:
    """A 63-bit id derived from text (independent of arrival order)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 63) - 1)


@dataclass(frozen=True)
class _Candidate:
    """An event ranked for example selection before it is serialised."""

    event_id: str
    function: str
    timestamp: datetime
    completeness: int
    event: FCLogEvent

    @classmethod
    def of(cls, ev: FCLogEvent) -> _Candidate:
        return cls(
            ev.event_id, ev.call.name if ev.call else NO_CALL, ev.timestamp,
            argument_completeness(ev.call.arguments) if ev.call else 0, ev,
        )


@dataclass
class BatchOutcome:
    """What one batch did."""

    received: int = 0
    accepted: int = 0
    replayed: int = 0
    duplicates: int = 0
    new_queries: int = 0
    near_duplicate_queries: int = 0
    new_clusters: int = 0
    merged_clusters: int = 0
    label_flips: int = 0
    changed: list[ClusterState] = field(default_factory=list)
    triggers: list[RetrainTrigger] = field(default_factory=list)
    state_version: int = 0


class OnlineClusterLearner(LearnerViews):
    """The ingest learner's domain object (no Kafka): feed it batches, publish what it returns."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        index: ClusterIndex,
        db: LearnerStateDB,
        dictionary_factory: Callable[[], EntityDictionary] = EntityDictionary,
        clustering: ClusteringSettings,
        triggers: TriggerSettings,
        cluster_distance: float,
        merge_distance: float,
    ) -> None:
        self.embedder = embedder
        self.index = index
        self.db = db
        self._dictionary_factory = dictionary_factory
        self.settings = clustering
        self.trigger_settings = triggers
        self.cluster_distance = cluster_distance
        self.merge_distance = merge_distance
        self.merger = WeightedCentroidMerger(index, merge_distance)
        self.labeler = WilsonLabeler(clustering.simple_share, clustering.wilson_z, clustering.min_support)
        stored = db.get_meta("embedder_id")
        if stored is not None and stored != embedder.model_id:
            raise EmbedderMismatchError(
                stored=EmbedderSpec(stored, int(db.get_meta("embedder_dim", "0") or 0)),
                requested=EmbedderSpec(embedder.model_id, embedder.dim),
                where=str(db.path),
            )
        if stored is None:
            db.set_meta("embedder_id", embedder.model_id)
            db.set_meta("embedder_dim", str(embedder.dim))
        self._unflushed = 0
        self._load()

    # -- state ---------------------------------------------------------------------------------
    def _load(self) -> None:
        self.dictionaries: dict[str, EntityDictionary] = {}
        self._templaters: dict[str, QueryTemplater] = {}
        self.clusters: dict[int, Cluster] = {c.cluster_id: c for c in self.db.load_clusters()}
        self.groups: dict[int, QueryGroup] = {g.group_id: g for g in self.db.load_groups()}
        self._canonical: dict[tuple[str, str], int] = {
            (g.scope, g.norm): (g.alias_of if g.alias_of is not None else g.group_id) for g in self.groups.values()
        }
        self._applied = self.db.applied_offsets()
        self.state_version = int(self.db.get_meta("state_version", "0") or 0)
        self._trigger_state: dict[str, dict[str, object]] = json.loads(self.db.get_meta("trigger_state", "{}") or "{}")
        for app, etype, value, count in self.db.entities():
            self.dictionary_of(app).add(etype, value, source="learned", count=count)
        self.reconcile_index()

    @property
    def embedder_id(self) -> str:
        """Id of the embedder the state is built with."""
        return self.embedder.model_id

    def reconcile_index(self) -> int:
        """Bring the vector store in line with SQLite (after a crash between the two); returns
        the number of points written or deleted."""
        indexed = {p.cluster_id: int(p.payload.get("version", -1)) for p in self.index.iter_points()}
        stale = [c for cid, c in self.clusters.items() if indexed.get(cid) != c.version]
        orphans = [cid for cid in indexed if cid not in self.clusters]
        if stale:
            self.index.upsert([self._point(c) for c in stale])
        if orphans:
            self.index.delete(orphans)
        if stale or orphans:
            self.index.flush()
        return len(stale) + len(orphans)

    def _point(self, c: Cluster) -> ClusterPoint:
        return ClusterPoint(
            cluster_id=c.cluster_id,
            vector=c.representative(),
            payload={
                "scope": c.scope,
                "app": c.app,
                "label": c.label,
                "dominant_function": c.dominant_function or "",
                "size": c.size,
                "version": c.version,
            },
        )

    # -- the batch -----------------------------------------------------------------------------
    def process_batch(self, items: Sequence[SourcedItem[FCLogEvent]]) -> BatchOutcome:
        """Apply one micro-batch atomically; on error nothing of it is kept (and it re-raises)."""
        try:
            self.db.begin()
            outcome = self._apply(items)
            self.db.commit()
        except BaseException:
            self.db.rollback()
            self._load()
            raise
        if outcome.changed:
            # SQLite is the durable record and the index is reconciled from it on open, so the
            # index is flushed every few batches (and on close), not on every one.
            self.index.upsert([self._point(self.clusters[int(s.cluster_id[1:], 16)]) for s in outcome.changed])
            self._unflushed += 1
            if self._unflushed >= INDEX_FLUSH_EVERY_BATCHES:
                self.index.flush()
                self._unflushed = 0
        return outcome

    def _apply(self, items: Sequence[SourcedItem[FCLogEvent]]) -> BatchOutcome:
        out = BatchOutcome(received=len(items))
        fresh = [
            it for it in items
            if it.payload is not None and it.offset > self._applied.get((it.topic, it.partition), -1)
        ]
        out.received = sum(1 for it in items if it.payload is not None)
        out.replayed = out.received - len(fresh)
        already = self.db.seen_ids([it.payload.event_id for it in fresh])
        accepted: list[FCLogEvent] = []
        in_batch: set[str] = set()
        for it in fresh:
            eid = it.payload.event_id
            if eid in already or eid in in_batch:
                out.duplicates += 1
                continue
            in_batch.add(eid)
            accepted.append(it.payload)
        out.accepted = len(accepted)
        offsets: dict[tuple[str, int], int] = {}
        for it in items:
            key = (it.topic, it.partition)
            offsets[key] = max(offsets.get(key, -1), it.offset)

        mode = self.settings.scope
        existing: dict[int, list[FCLogEvent]] = defaultdict(list)
        new: dict[tuple[str, str], list[FCLogEvent]] = defaultdict(list)
        learned: list[tuple[str, str, str]] = []
        for ev in accepted:
            scope = scope_key(ev.app, ev.tools, ev.history, mode)
            norm = normalize_query(ev.query)
            gid = self._canonical.get((scope, norm))
            if gid is None:
                # Entities are learned once per query (its first call), so a value's count is the
                # number of distinct queries naming it, not how popular those queries are.
                if ev.call is not None and (scope, norm) not in new:
                    pairs = learn_from_call(self.dictionary_of(ev.app), ev.query, ev.call.arguments)
                    learned.extend((ev.app, t, v) for t, v in pairs)
                new[(scope, norm)].append(ev)
            else:
                existing[gid].append(ev)

        touched_groups: dict[int, list[FCLogEvent]] = dict(existing)
        changed_groups: set[int] = set(existing)
        keys = list(new)
        out.new_queries = len(keys)
        if keys:
            # What is embedded is the query's NER template, normalised: entity values replaced by
            # their types, so "play Jay Chou's Rice Fragrance" and "play Eason's Ten Years" coincide.
            templates = [self.templater_of(new[k][0].app).template(new[k][0].query) for k in keys]
            vectors = self.embedder.embed([normalize_query(t.text) for t in templates])
            slots_of = [tuple(sorted((ty, normalize_query(v)) for ty, v in t.slots)) for t in templates]
            by_scope: dict[str, list[int]] = defaultdict(list)
            for i, (scope, _) in enumerate(keys):
                by_scope[scope].append(i)
            first_level: list[tuple[str, list[int]]] = []
            for scope, idxs in by_scope.items():
                labels = agglomerate(vectors[idxs], self.cluster_distance)
                members: dict[int, list[int]] = defaultdict(list)
                for i, lab in zip(idxs, labels, strict=True):
                    members[int(lab)].append(i)
                first_level.extend((scope, m) for m in members.values())
            reps = np.stack(
                [weighted_representative(vectors[m], [len(new[keys[i]]) for i in m]) for _, m in first_level]
            )
            targets = self.merger.targets(reps, [s for s, _ in first_level])
            for (scope, members_idx), target in zip(first_level, targets, strict=True):
                if target is not None:
                    cluster = self.clusters[target[0]]
                    out.merged_clusters += 1
                else:
                    first_scope, first_norm = keys[members_idx[0]]
                    cid = stable_id("cluster", first_scope, first_norm)
                    cluster = Cluster(
                        cid, scope, new[keys[members_idx[0]]][0].app, np.zeros(self.embedder.dim, np.float32)
                    )
                    self.clusters[cid] = cluster
                    out.new_clusters += 1
                known_by_slots: dict[tuple[tuple[str, str], ...], tuple[list[np.ndarray], list[int]]] = defaultdict(
                    lambda: ([], [])
                )
                for g in cluster.group_ids:
                    group = self.groups[g]
                    known_by_slots[group.slots][0].append(group.embedding)
                    known_by_slots[group.slots][1].append(g)
                for i in members_idx:
                    scope_i, norm_i = keys[i]
                    evs = new[keys[i]]
                    gid = stable_id("group", scope_i, norm_i)
                    # Near-identical = nearly the same words AND the same entity values.
                    known, known_ids = known_by_slots[slots_of[i]]
                    dup = near_duplicates(
                        vectors[i : i + 1], np.stack(known) if known else np.zeros((0, self.embedder.dim)),
                        self.settings.near_duplicate_similarity,
                    )[0]
                    if dup is not None:
                        canonical = known_ids[dup]
                        self.groups[gid] = QueryGroup(
                            gid, scope_i, evs[0].app, norm_i, evs[0].query, cluster.cluster_id, vectors[i],
                            alias_of=canonical, slots=slots_of[i],
                        )
                        self._canonical[(scope_i, norm_i)] = canonical
                        changed_groups.add(gid)
                        touched_groups.setdefault(canonical, []).extend(evs)
                        changed_groups.add(canonical)
                        out.near_duplicate_queries += 1
                        continue
                    self.groups[gid] = QueryGroup(
                        gid, scope_i, evs[0].app, norm_i, evs[0].query, cluster.cluster_id, vectors[i], slots=slots_of[i]
                    )
                    self._canonical[(scope_i, norm_i)] = gid
                    cluster.group_ids.append(gid)
                    known.append(vectors[i])
                    known_ids.append(gid)
                    touched_groups[gid] = list(evs)
                    changed_groups.add(gid)

        touched_clusters: dict[int, Cluster] = {}
        tools_json: dict[str, str] = {}
        # Events of a batch often share their tool objects (the parser caches them): serialise
        # each list once. Keyed by object ids, which are stable while the batch holds the events.
        tools_key_of: dict[tuple[int, ...], str] = {}
        candidates: dict[int, list[StoredExample]] = defaultdict(list)
        cap = self.settings.max_examples_per_query
        for gid, evs in touched_groups.items():
            group = self.groups[gid]
            cluster = self.clusters[group.cluster_id]
            touched_clusters[cluster.cluster_id] = cluster
            for ev in evs:
                fn = ev.call.name if ev.call else NO_CALL
                group.count += 1
                group.function_counts[fn] += 1
                group.last_seen = max(group.last_seen or ev.timestamp, ev.timestamp)
                cluster.size += 1
                cluster.function_counts[fn] += 1
                cluster.weighted_sum = cluster.weighted_sum + group.embedding
                cluster.weight += 1.0
            # Only the batch's best `cap` events per function can survive selection: serialise those.
            ranked = select_examples([_Candidate.of(ev) for ev in evs], cap)
            for cand in ranked:
                ev = cand.event
                ids = tuple(map(id, ev.tools))
                tkey = tools_key_of.get(ids)
                if tkey is None:
                    payload = json.dumps([t.model_dump() for t in ev.tools], sort_keys=True, ensure_ascii=False)
                    tkey = tools_key_of[ids] = hashlib.sha1(payload.encode()).hexdigest()
                    tools_json.setdefault(tkey, payload)
                candidates[gid].append(
                    StoredExample(
                        event_id=ev.event_id, group_id=gid, function=cand.function, timestamp=ev.timestamp,
                        completeness=cand.completeness, query=ev.query,
                        history_json=json.dumps([m.model_dump(exclude_none=True) for m in ev.history], ensure_ascii=False),
                        call_json=ev.call.model_dump_json() if ev.call else "null", tools_key=tkey,
                    )
                )
        if candidates:
            kept_before: dict[int, list[StoredExample]] = defaultdict(list)
            for ex in self.db.examples_of(candidates):
                kept_before[ex.group_id].append(ex)
            kept = [
                e for gid in candidates
                for e in select_examples(kept_before[gid] + candidates[gid], self.settings.max_examples_per_query)
            ]
            self.db.replace_examples(candidates, kept)

        flips: list[str] = []
        for cluster in touched_clusters.values():
            decision = self.labeler.label(cluster.function_counts)
            if (cluster.label == "simple") != (decision.label == "simple") and cluster.version > 0:
                flips.append(cluster_key(cluster.cluster_id))
            cluster.label = decision.label
            cluster.dominant_function = decision.dominant_function
            cluster.dominant_share = decision.dominant_share
            cluster.share_lower_bound = decision.share_lower_bound
            cluster.version += 1
        out.label_flips = len(flips)

        self.state_version += 1
        for cluster in touched_clusters.values():
            cluster.changed_at = self.state_version
        out.state_version = self.state_version
        out.triggers = self._update_triggers(accepted, touched_groups, flips)
        if out.triggers:
            pending = json.loads(self.db.get_meta("pending_triggers", "[]") or "[]")
            pending.extend(t.model_dump(mode="json") for t in out.triggers)
            self.db.set_meta("pending_triggers", json.dumps(pending))

        self.db.save_groups(self.groups[g] for g in changed_groups | set(touched_groups))
        self.db.save_clusters(touched_clusters.values())
        self.db.save_tools(tools_json)
        self.db.mark_seen(ev.event_id for ev in accepted)
        self.db.set_applied(offsets)
        self.db.add_entities(learned)
        self.db.set_meta("state_version", str(self.state_version))
        self.db.set_meta("trigger_state", json.dumps(self._trigger_state, sort_keys=True))
        for key, off in offsets.items():
            self._applied[key] = max(self._applied.get(key, -1), off)
        out.changed = [self.cluster_state(c) for c in sorted(touched_clusters.values(), key=lambda c: c.cluster_id)]
        return out

    def _update_triggers(
        self, accepted: list[FCLogEvent], touched: dict[int, list[FCLogEvent]], flips: list[str]
    ) -> list[RetrainTrigger]:
        per_app_new: Counter[str] = Counter()
        for gid, evs in touched.items():
            cluster = self.clusters[self.groups[gid].cluster_id]
            if cluster.label != "simple":
                continue
            per_app_new[cluster.app] += sum(1 for e in evs if e.call and e.call.name == cluster.dominant_function)
        flips_by_app: dict[str, list[str]] = defaultdict(list)
        for key in flips:
            cid = int(key[1:], 16)
            flips_by_app[self.clusters[cid].app].append(key)
        triggers = []
        for app in sorted(set(per_app_new) | set(flips_by_app)):
            st = self._trigger_state.setdefault(app, {"new": 0, "flipped": []})
            st["new"] = int(st["new"]) + per_app_new[app]  # type: ignore[call-overload]
            st["flipped"] = sorted(set(st["flipped"]) | set(flips_by_app[app]))  # type: ignore[arg-type]
            n_new, flipped = int(st["new"]), list(st["flipped"])  # type: ignore[call-overload, arg-type]
            if n_new >= self.trigger_settings.min_new_examples or len(flipped) >= self.trigger_settings.min_label_flips:
                simple = [c for c in self.clusters.values() if c.app == app and c.label == "simple"]
                triggers.append(
                    RetrainTrigger(
                        trigger_id=f"{app}:{self.state_version}",
                        app=app,
                        reason="new_examples" if n_new >= self.trigger_settings.min_new_examples else "labels_changed",
                        new_examples=n_new,
                        total_examples=sum(self.training_examples(c) for c in simple),
                        simple_clusters=len(simple),
                        flipped_clusters=flipped,
                        store_version=self.state_version,
                        embedder_id=self.embedder.model_id,
                        created_at=datetime.now(UTC),
                    )
                )
                self._trigger_state[app] = {"new": 0, "flipped": []}
        return triggers

    def process(
        self, items: Sequence[SourcedItem[FCLogEvent]], also_applied: Sequence[tuple[str, int, int]] = ()
    ) -> BatchOutcome:
        """Like :meth:`process_batch`, also recording ``(topic, partition, offset)`` of inputs that
        were rejected (dead-lettered), so a replay does not dead-letter them twice."""
        marker = [SourcedItem(t, p, o, None) for t, p, o in also_applied]
        return self.process_batch([*items, *marker])  # type: ignore[list-item]

    def is_applied(self, topic: str, partition: int, offset: int) -> bool:
        """Whether the input at this position was applied (or dead-lettered) before."""
        return offset <= self._applied.get((topic, partition), -1)

    # -- publication bookkeeping ---------------------------------------------------------------
    def unpublished(self) -> tuple[list[ClusterState], list[RetrainTrigger]]:
        """States and triggers committed but not yet confirmed published (after a crash)."""
        published = int(self.db.get_meta("published_version", "0") or 0)
        states = [
            self.cluster_state(c)
            for c in sorted(self.clusters.values(), key=lambda c: c.cluster_id)
            if c.changed_at > published
        ]
        triggers = [RetrainTrigger.model_validate(t) for t in json.loads(self.db.get_meta("pending_triggers", "[]") or "[]")]
        return states, triggers

    def mark_published(self, state_version: int) -> None:
        """Everything up to ``state_version`` has reached the broker."""
        self.db.begin()
        self.db.set_meta("published_version", str(state_version))
        self.db.set_meta("pending_triggers", "[]")
        self.db.commit()

    def snapshot(self) -> dict[str, object]:
        """A canonical, comparable view of the learned state (for replay/restart equality)."""
        clusters = {
            cluster_key(c.cluster_id): {
                "scope": c.scope,
                "size": c.size,
                "function_counts": dict(sorted(c.function_counts.items())),
                "label": c.label,
                "queries": sorted(self.groups[g].norm for g in c.group_ids),
                "representative": [round(float(x), 4) for x in c.representative()[:8]],
            }
            for c in self.clusters.values()
        }
        aliases = sorted((g.norm, self.groups[g.alias_of].norm) for g in self.groups.values() if g.alias_of is not None)
        return {"clusters": dict(sorted(clusters.items())), "aliases": aliases, "index_points": self.index.count()}

    def close(self) -> None:
        """Flush and close the store and the database."""
        self.index.flush()
        self.index.close()
        self.db.close()
