"""``OnlineClusterLearner``: micro-batches of validated FC logs in, cluster changes out.

Per batch (:meth:`OnlineClusterLearner._apply`, one method per step): give every input one
audited outcome (:mod:`~odia_stream.clustering.audit`: accepted, duplicate by event id, replayed
offset, or dead letter; new data at a reused offset is applied by event id), group records by normalised query within their
scope (:mod:`odia_stream.keys`), learn entity values from new queries' calls, embed only new
queries (their NER templates), cluster them (first level), merge each new cluster into the
nearest existing one of its scope through the vector store (second level, weighted centroids) or
create it, alias near-identical queries, count the records, keep the best examples per query,
relabel touched clusters, decide retrain triggers (:mod:`~odia_stream.clustering.triggers`), and
count each record's call under its template (the evidence of the template tier's argument programs,
:mod:`odia_stream.templates.programs`).
All of it is committed in one SQLite transaction; the vector store follows and is reconciled
from SQLite on open, so a crash at any point recovers to a state equal to an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from odia_stream.clustering.audit import (
    ACCEPTED,
    DEAD_LETTER,
    DUPLICATE,
    READ,
    REPLAYED,
    REUSED_OFFSET,
    PartitionAudit,
    Rejected,
    ingest_summary,
)
from odia_stream.clustering.batching import SourcedItem
from odia_stream.clustering.first_level import agglomerate
from odia_stream.clustering.merge import WeightedCentroidMerger, weighted_representative
from odia_stream.clustering.pruning import argument_completeness, near_duplicates, select_examples
from odia_stream.clustering.records import Cluster, QueryGroup, StoredExample
from odia_stream.clustering.state_db import STORE_VERSION_KEY, LearnerStateDB
from odia_stream.clustering.triggers import RetrainTriggerPolicy, retrain_trigger
from odia_stream.clustering.views import LearnerViews
from odia_stream.embedding import Embedder
from odia_stream.keys import (
    GroupKey,
    Slots,
    TemplatedQuery,
    TemplateKey,
    cluster_id_for,
    cluster_key,
    group_id_for,
    group_key_of,
    parse_cluster_key,
    stable_id,
)
from odia_stream.labels import NO_CALL, WilsonLabeler
from odia_stream.settings import ClusteringSettings, TemplateTierSettings, TriggerSettings
from odia_stream.store import ClusterIndex, ClusterPoint, EmbedderMismatchError, EmbedderSpec
from odia_stream.templates import EntityDictionary, QueryTemplater, learn_from_call
from odia_stream.templates.programs import ProgramFamilies, ProgramRule, TemplateEvidence, observe
from schemas import ClusterState, FCLogEvent, IngestSummary, RetrainTrigger

log = logging.getLogger("odia.learner")

__all__ = ["INDEX_FLUSH_EVERY_BATCHES", "BatchOutcome", "OnlineClusterLearner", "stable_id"]

#: Batches between flushes of the vector store (it is rebuilt from SQLite after a crash anyway).
INDEX_FLUSH_EVERY_BATCHES = 20

#: Highest offset per ``(topic, partition)``.
Offsets = dict[tuple[str, int], int]
#: A learned entity value: ``(app, type, value)``.
LearnedEntity = tuple[str, str, str]


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


@dataclass(frozen=True)
class _Admitted:
    """The records of a batch to apply (not applied before), the offsets the batch covers, and
    its audit (:mod:`~odia_stream.clustering.audit`)."""

    events: list[FCLogEvent]
    offsets: Offsets
    #: Outcome counts per partition.
    audit: dict[tuple[str, int], Counter[str]]
    #: First offsets of partitions audited for the first time.
    audit_starts: dict[tuple[str, int], int]
    #: Newly dead-lettered inputs: ``(topic, partition, offset, sha256, reason)``.
    dead_lettered: list[tuple[str, int, int, str, str]]

    def total(self, outcome: str) -> int:
        """One outcome summed over partitions."""
        return sum(c[outcome] for c in self.audit.values())


@dataclass(frozen=True)
class _Grouped:
    """Admitted records by query: of known groups (by canonical group id) and of new queries (by
    group key, in first-seen order)."""

    known: dict[int, list[FCLogEvent]]
    new: dict[GroupKey, list[FCLogEvent]]


@dataclass(frozen=True)
class _NewQueries:
    """The batch's new queries, row ``i`` of each: group key, records, template, embedding."""

    keys: list[GroupKey]
    events: list[list[FCLogEvent]]
    templated: list[TemplatedQuery]
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class _FirstLevelCluster:
    """New queries (rows of :class:`_NewQueries`) clustered together within one scope."""

    scope: str
    members: list[int]


@dataclass
class _Placement:
    """Where the batch's records went: each touched canonical group with its new records, the
    groups to save, and what was created, merged or aliased."""

    touched: dict[int, list[FCLogEvent]]
    changed: set[int]
    new_clusters: int = 0
    merged_clusters: int = 0
    near_duplicates: int = 0


@dataclass(frozen=True)
class _Examples:
    """Candidate examples per touched group, and the offered-tool sets they refer to (by key)."""

    candidates: dict[int, list[StoredExample]]
    tools_json: dict[str, str]

@dataclass
class BatchOutcome:
    """What one batch did: its counts, the cluster states it changed and the triggers it raised."""

    #: Inputs and what became of them, by name: ``received``, ``accepted``, ``replayed``,
    #: ``duplicates``, ``new_queries``, ``near_duplicate_queries``, ``new_clusters``,
    #: ``merged_clusters``, ``label_flips`` (a name that did not happen reads 0).
    counts: Counter[str] = field(default_factory=Counter)
    changed: list[ClusterState] = field(default_factory=list)
    triggers: list[RetrainTrigger] = field(default_factory=list)
    store_version: int = 0


class OnlineClusterLearner(LearnerViews):
    """The ingest learner's domain object (no Kafka): feed it batches, publish what it returns."""

    def __init__(
        self,
        *,
        embedder: Embedder, index: ClusterIndex, db: LearnerStateDB,
        dictionary_factory: Callable[[], EntityDictionary] = EntityDictionary,
        clustering: ClusteringSettings, triggers: TriggerSettings,
        cluster_distance: float, merge_distance: float,
        templates: TemplateTierSettings | None = None,
        program_rule: ProgramRule | None = None,
    ) -> None:
        self.embedder = embedder
        self.index = index
        self.db = db
        self.merger = WeightedCentroidMerger(index, merge_distance)
        self._dictionary_factory = dictionary_factory
        self.settings = clustering
        self.template_settings = templates if templates is not None else TemplateTierSettings()
        self.program_rule = program_rule if program_rule is not None else ProgramRule(
            self.template_settings.min_support, pool=self.template_settings.pool_families
        )
        self.trigger_policy = RetrainTriggerPolicy(triggers)
        self.cluster_distance = cluster_distance
        self.merge_distance = merge_distance
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
        self._canonical: dict[GroupKey, int] = {
            g.key: (g.alias_of if g.alias_of is not None else g.group_id) for g in self.groups.values()
        }
        self._applied = self.db.applied_offsets()
        #: The audit as of the last committed batch (replaced whole, so other threads can read it).
        self._audit: tuple[PartitionAudit, ...] = tuple(self.db.audit())
        self._audit_started = {(a.topic, a.partition) for a in self._audit}
        self.store_version = int(self.db.get_meta(STORE_VERSION_KEY, "0") or 0)
        self.trigger_policy.restore(self.db.get_meta("trigger_state", "{}") or "{}")
        for app, etype, value, count in self.db.entities():
            self.dictionary_of(app).add(etype, value, source="learned", count=count)
        self.template_evidence = self.db.template_evidence(self.template_settings.max_observations)
        self.program_families = ProgramFamilies(self.program_rule.target, self.program_rule.z)
        self._refresh_families(self.template_evidence)
        self.reconcile_index()

    @property
    def embedder_id(self) -> str:
        """Id of the embedder the state is built with."""
        return self.embedder.model_id

    @property
    def trigger_settings(self) -> TriggerSettings:
        """The retrain-trigger thresholds (settable)."""
        return self.trigger_policy.settings

    @trigger_settings.setter
    def trigger_settings(self, value: TriggerSettings) -> None:
        self.trigger_policy.settings = value

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
            self.index.upsert([self._point(self.clusters[parse_cluster_key(s.cluster_id)]) for s in outcome.changed])
            self._unflushed += 1
            if self._unflushed >= INDEX_FLUSH_EVERY_BATCHES:
                self.index.flush()
                self._unflushed = 0
        return outcome

    def _apply(self, items: Sequence[SourcedItem[FCLogEvent]]) -> BatchOutcome:
        """The batch's steps, inside the open transaction (see the module doc)."""
        admitted = self._admit(items)
        grouped = self._group(admitted.events)
        learned = self._learn_entities(grouped.new)
        templates = self._count_template_calls(admitted.events)
        new = self._embed_new_queries(grouped.new)
        placement = self._place(grouped.known, new)
        touched = self._count_records(placement.touched)
        examples = self._example_candidates(placement.touched)
        self._keep_examples(examples.candidates)
        flipped = self._relabel(touched)
        self._advance_store_version(touched)
        triggers = self._retrain_triggers(placement.touched, flipped)
        self._persist(admitted, placement, touched, examples, learned, templates, triggers)
        counts = Counter(
            received=admitted.total(READ),
            accepted=len(admitted.events),
            replayed=admitted.total(REPLAYED),
            duplicates=admitted.total(DUPLICATE),
            dead_lettered=len(admitted.dead_lettered),
            reused_offsets=admitted.total(REUSED_OFFSET),
            new_queries=len(new),
            near_duplicate_queries=placement.near_duplicates,
            new_clusters=placement.new_clusters,
            merged_clusters=placement.merged_clusters,
            label_flips=len(flipped),
        )
        return BatchOutcome(
            counts=counts,
            changed=[self.cluster_state(c) for c in sorted(touched, key=lambda c: c.cluster_id)],
            triggers=triggers,
            store_version=self.store_version,
        )

    def _admit(self, items: Sequence[SourcedItem[FCLogEvent | Rejected]]) -> _Admitted:
        """Give each input one outcome (:mod:`~odia_stream.clustering.audit`) and keep the events
        to apply: an input at an offset applied before is a replay only when its event id was
        applied (or its value dead-lettered) there before; otherwise the partition's offsets were
        reused and it is new data, applied by event id."""
        ids = [it.payload.event_id for it in items if not isinstance(it.payload, Rejected)]
        already = self.db.seen_ids(ids)
        audit: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
        accepted: list[FCLogEvent] = []
        in_batch: set[str] = set()
        dead: list[tuple[str, int, int, str, str]] = []
        for it in items:
            key = (it.topic, it.partition)
            counts = audit[key]
            counts[READ] += 1
            old_offset = it.offset <= self._applied.get(key, -1)
            if isinstance(it.payload, Rejected):
                r = it.payload
                if old_offset and self.db.was_dead_lettered(it.topic, it.partition, it.offset, r.sha256):
                    counts[REPLAYED] += 1
                    continue
                counts[DEAD_LETTER + r.reason] += 1
                counts[REUSED_OFFSET] += old_offset
                dead.append((it.topic, it.partition, it.offset, r.sha256, r.reason))
                continue
            eid = it.payload.event_id
            if eid in already:
                counts[REPLAYED if old_offset else DUPLICATE] += 1
            elif eid in in_batch:
                counts[DUPLICATE] += 1
            else:
                counts[ACCEPTED] += 1
                counts[REUSED_OFFSET] += old_offset
                in_batch.add(eid)
                accepted.append(it.payload)
        offsets: Offsets = {}
        starts: dict[tuple[str, int], int] = {}
        for it in items:
            key = (it.topic, it.partition)
            offsets[key] = max(offsets.get(key, -1), it.offset)
            if key not in self._audit_started:
                prior = self._applied.get(key)  # state from before auditing began: audit what follows
                starts[key] = prior + 1 if prior is not None else min(starts.get(key, it.offset), it.offset)
        skipped = _skipped_offsets(items, self._applied)
        if skipped:
            log.warning(
                "offsets never read: %s (records deleted by retention before they were read, an "
                "out-of-range reset, or offsets Kafka itself skips: transaction markers, compaction); "
                "the audit shows them as unaccounted",
                ", ".join(f"{t}/{p}: {n}" for (t, p), n in sorted(skipped.items())),
            )
        reused = sum(c[REUSED_OFFSET] for c in audit.values())
        if reused:
            log.warning(
                "offset reset: %d new input(s) at offsets at or below the applied watermark of %s; "
                "the partition's offsets were reused (topic recreated, records lost by the broker?). "
                "Handled by event id, not taken for replays.",
                reused, sorted(k for k, c in audit.items() if c[REUSED_OFFSET]),
            )
        return _Admitted(accepted, offsets, dict(audit), starts, dead)

    def _group(self, events: list[FCLogEvent]) -> _Grouped:
        """Records by the canonical group of their group key, or by the key when it is new."""
        known: dict[int, list[FCLogEvent]] = defaultdict(list)
        new: dict[GroupKey, list[FCLogEvent]] = defaultdict(list)
        for ev in events:
            key = group_key_of(ev, self.settings.scope)
            gid = self._canonical.get(key)
            if gid is None:
                new[key].append(ev)
            else:
                known[gid].append(ev)
        return _Grouped(dict(known), dict(new))

    def _learn_entities(self, new: dict[GroupKey, list[FCLogEvent]]) -> list[LearnedEntity]:
        """Teach each app's dictionary the argument values of its new queries' first calls."""
        # Entities are learned once per query (its first call), so a value's count is the number
        # of distinct queries naming it, not how popular those queries are.
        learned: list[LearnedEntity] = []
        for evs in new.values():
            first = evs[0]
            if first.call is not None:
                pairs = learn_from_call(self.dictionary_of(first.app), first.query, first.call.arguments)
                learned.extend((first.app, t, v) for t, v in pairs)
        return learned

    def _count_template_calls(self, events: list[FCLogEvent]) -> set[TemplateKey]:
        """Count each record's answer under its query's template (after this batch's entities were
        learned): how the call's arguments come from the template's slots. The touched templates."""
        touched: set[TemplateKey] = set()
        cap = self.template_settings.max_observations
        for ev in events:
            q = TemplatedQuery.of_record(ev, self.settings.scope, self.templater_of(ev.app))
            key = (q.app, q.scope, q.text)
            evidence = self.template_evidence.get(key)
            if evidence is None:
                evidence = self.template_evidence[key] = TemplateEvidence(cap)
            if ev.call is None:
                evidence.add_no_call(NO_CALL)
            else:
                evidence.add(observe(ev.call.name, ev.call.arguments, q.template.slots, self.dictionary_of(ev.app)))
            touched.add(key)
        self._refresh_families(touched)
        return touched

    def _embed_new_queries(self, new: dict[GroupKey, list[FCLogEvent]]) -> _NewQueries:
        """Template and embed the new queries (after this batch's entities were learned)."""
        if not new:
            return _NewQueries([], [], [], np.zeros((0, self.embedder.dim), np.float32))
        keys = list(new)
        events = [new[k] for k in keys]
        # What is embedded is the query's NER template, normalised: entity values replaced by
        # their types, so "play Jay Chou's Rice Fragrance" and "play Eason's Ten Years" coincide.
        templated = [
            TemplatedQuery.of(evs[0].app, scope, self.templater_of(evs[0].app).template(evs[0].query))
            for (scope, _), evs in zip(keys, events, strict=True)
        ]
        return _NewQueries(keys, events, templated, self.embedder.embed([q.text for q in templated]))

    def _place(self, known: dict[int, list[FCLogEvent]], new: _NewQueries) -> _Placement:
        """Put new queries into clusters: first-level clusters of the batch merge into an existing
        cluster of their scope or become one; each query joins as a group or as an alias."""
        placement = _Placement(touched=dict(known), changed=set(known))
        if not new.keys:
            return placement
        first_level = self._first_level(new)
        for fl, (cluster, merged) in zip(first_level, self._target_clusters(new, first_level), strict=True):
            if merged:
                placement.merged_clusters += 1
            else:
                placement.new_clusters += 1
            self._add_queries(cluster, fl.members, new, placement)
        return placement

    def _first_level(self, new: _NewQueries) -> list[_FirstLevelCluster]:
        """Agglomerative clusters of the new queries, per scope."""
        by_scope: dict[str, list[int]] = defaultdict(list)
        for i, (scope, _) in enumerate(new.keys):
            by_scope[scope].append(i)
        out: list[_FirstLevelCluster] = []
        for scope, idxs in by_scope.items():
            labels = agglomerate(new.vectors[idxs], self.cluster_distance)
            members: dict[int, list[int]] = defaultdict(list)
            for i, lab in zip(idxs, labels, strict=True):
                members[int(lab)].append(i)
            out.extend(_FirstLevelCluster(scope, m) for m in members.values())
        return out

    def _target_clusters(self, new: _NewQueries, first_level: list[_FirstLevelCluster]) -> list[tuple[Cluster, bool]]:
        """Per first-level cluster: the existing cluster it merges into (``True``), else a new
        cluster named after its first query (``False``)."""
        reps = np.stack([
            weighted_representative(new.vectors[fl.members], [len(new.events[i]) for i in fl.members])
            for fl in first_level
        ])
        targets = self.merger.targets(reps, [fl.scope for fl in first_level])
        out: list[tuple[Cluster, bool]] = []
        for fl, target in zip(first_level, targets, strict=True):
            if target is not None:
                out.append((self.clusters[target[0]], True))
                continue
            first = fl.members[0]
            cid = cluster_id_for(*new.keys[first])
            cluster = Cluster(cid, fl.scope, new.events[first][0].app, np.zeros(self.embedder.dim, np.float32))
            self.clusters[cid] = cluster
            out.append((cluster, False))
        return out

    def _add_queries(self, cluster: Cluster, members: list[int], new: _NewQueries, placement: _Placement) -> None:
        """Add new queries to ``cluster``: as an alias of a near-identical group (nearly the same
        words AND the same entity values), else as a group of their own."""
        known_by_slots: dict[Slots, tuple[list[np.ndarray], list[int]]] = defaultdict(lambda: ([], []))
        for g in cluster.group_ids:
            group = self.groups[g]
            known_by_slots[group.slots][0].append(group.embedding)
            known_by_slots[group.slots][1].append(g)
        for i in members:
            (scope, norm), evs, slots = new.keys[i], new.events[i], new.templated[i].slots
            gid = group_id_for(scope, norm)
            known, known_ids = known_by_slots[slots]
            dup = near_duplicates(
                new.vectors[i : i + 1], np.stack(known) if known else np.zeros((0, self.embedder.dim)),
                self.settings.near_duplicate_similarity,
            )[0]
            alias_of = known_ids[dup] if dup is not None else None
            self.groups[gid] = QueryGroup(
                gid, scope, evs[0].app, norm, evs[0].query, cluster.cluster_id, new.vectors[i],
                alias_of=alias_of, slots=slots,
            )
            placement.changed.add(gid)
            if alias_of is not None:
                self._canonical[(scope, norm)] = alias_of
                placement.touched.setdefault(alias_of, []).extend(evs)
                placement.changed.add(alias_of)
                placement.near_duplicates += 1
            else:
                self._canonical[(scope, norm)] = gid
                cluster.group_ids.append(gid)
                known.append(new.vectors[i])
                known_ids.append(gid)
                placement.touched[gid] = list(evs)

    def _count_records(self, touched: dict[int, list[FCLogEvent]]) -> list[Cluster]:
        """Count the records into their groups and clusters; the touched clusters."""
        clusters: dict[int, Cluster] = {}
        for gid, evs in touched.items():
            group = self.groups[gid]
            cluster = self.clusters[group.cluster_id]
            clusters[cluster.cluster_id] = cluster
            for ev in evs:
                fn = ev.call.name if ev.call else NO_CALL
                group.count += 1
                group.function_counts[fn] += 1
                group.last_seen = max(group.last_seen or ev.timestamp, ev.timestamp)
                cluster.size += 1
                cluster.function_counts[fn] += 1
                cluster.weighted_sum = cluster.weighted_sum + group.embedding
                cluster.weight += 1.0
        return list(clusters.values())

    def _example_candidates(self, touched: dict[int, list[FCLogEvent]]) -> _Examples:
        """The batch's best records per touched group, serialised as examples."""
        tools_json: dict[str, str] = {}
        # Events of a batch often share their tool objects (the parser caches them): serialise
        # each list once. Keyed by object ids, which are stable while the batch holds the events.
        tools_key_of: dict[tuple[int, ...], str] = {}
        candidates: dict[int, list[StoredExample]] = defaultdict(list)
        for gid, evs in touched.items():
            # Only the batch's best `cap` events per function can survive selection: serialise those.
            for cand in select_examples([_Candidate.of(ev) for ev in evs], self.settings.max_examples_per_query):
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
        return _Examples(dict(candidates), tools_json)

    def _keep_examples(self, candidates: dict[int, list[StoredExample]]) -> None:
        """Re-select each group's kept examples among those kept before and the candidates."""
        if not candidates:
            return
        kept_before: dict[int, list[StoredExample]] = defaultdict(list)
        for ex in self.db.examples_of(candidates):
            kept_before[ex.group_id].append(ex)
        kept = [
            e for gid in candidates
            for e in select_examples(kept_before[gid] + candidates[gid], self.settings.max_examples_per_query)
        ]
        self.db.replace_examples(candidates, kept)

    def _relabel(self, clusters: list[Cluster]) -> list[Cluster]:
        """Label the touched clusters again; those published before whose label flipped
        (simple or not)."""
        flipped: list[Cluster] = []
        for cluster in clusters:
            decision = self.labeler.label(cluster.function_counts)
            if (cluster.label == "simple") != (decision.label == "simple") and cluster.version > 0:
                flipped.append(cluster)
            cluster.label = decision.label
            cluster.dominant_function = decision.dominant_function
            cluster.dominant_share = decision.dominant_share
            cluster.share_lower_bound = decision.share_lower_bound
            cluster.version += 1
        return flipped

    def _advance_store_version(self, clusters: list[Cluster]) -> None:
        """A new state version, stamped on the touched clusters."""
        self.store_version += 1
        for cluster in clusters:
            cluster.changed_at = self.store_version

    def _retrain_triggers(self, touched: dict[int, list[FCLogEvent]], flipped: list[Cluster]) -> list[RetrainTrigger]:
        """The triggers the policy says are due after this batch."""
        by_cluster = ((self.clusters[self.groups[gid].cluster_id], evs) for gid, evs in touched.items())
        return [retrain_trigger(self, due) for due in self.trigger_policy.record_batch(by_cluster, flipped)]

    def _persist(
        self,
        admitted: _Admitted,
        placement: _Placement,
        clusters: list[Cluster],
        examples: _Examples,
        learned: list[LearnedEntity],
        templates: set[TemplateKey],
        triggers: list[RetrainTrigger],
    ) -> None:
        """Write the batch's changes (within the open transaction) and advance the applied offsets."""
        if triggers:
            pending = json.loads(self.db.get_meta("pending_triggers", "[]") or "[]")
            pending.extend(t.model_dump(mode="json") for t in triggers)
            self.db.set_meta("pending_triggers", json.dumps(pending))
        self.db.save_groups(self.groups[g] for g in placement.changed | set(placement.touched))
        self.db.save_clusters(clusters)
        self.db.save_tools(examples.tools_json)
        self.db.mark_seen(ev.event_id for ev in admitted.events)
        self.db.set_applied(admitted.offsets)
        self.db.add_audit(admitted.audit, admitted.audit_starts, admitted.dead_lettered)
        self.db.add_entities(learned)
        self.db.save_template_evidence({k: self.template_evidence[k] for k in sorted(templates)})
        self.db.set_meta(STORE_VERSION_KEY, str(self.store_version))
        self.db.set_meta("trigger_state", self.trigger_policy.to_json())
        for key, off in admitted.offsets.items():
            self._applied[key] = max(self._applied.get(key, -1), off)
        self._audit_started.update(admitted.audit_starts)
        self._audit = _merge_audit(self._audit, admitted, self._applied)

    def process(
        self, items: Sequence[SourcedItem[FCLogEvent]], rejected: Sequence[SourcedItem[Rejected]] = ()
    ) -> BatchOutcome:
        """Like :meth:`process_batch`, also recording the inputs of the batch that were rejected
        (dead-lettered): the audit counts them, and a re-read does not dead-letter them twice."""
        return self.process_batch([*items, *rejected])  # type: ignore[list-item]

    def is_applied(self, topic: str, partition: int, offset: int) -> bool:
        """Whether this position is at or below the partition's applied watermark (read before,
        unless the partition's offsets were reused)."""
        return offset <= self._applied.get((topic, partition), -1)

    def was_dead_lettered(self, topic: str, partition: int, offset: int, sha256: str) -> bool:
        """Whether this value (by sha256) at this position was dead-lettered before (a re-read).
        Reads the state file when the position :meth:`is_applied`: call it where the learner's
        batches run (one thread), not beside them."""
        if not self.is_applied(topic, partition, offset):
            return False
        return self.db.was_dead_lettered(topic, partition, offset, sha256)

    def audit(self) -> list[PartitionAudit]:
        """The ingest audit per partition (:mod:`~odia_stream.clustering.audit`), as of the last
        committed batch; safe to call from another thread (a metrics scrape)."""
        return list(self._audit)

    def ingest_summary(self) -> IngestSummary:
        """The totals and the audit as the cluster-state topic's summary record carries them."""
        return ingest_summary(self.summary(), self.audit())

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

    def mark_published(self, store_version: int) -> None:
        """Everything up to ``store_version`` has reached the broker."""
        self.db.begin()
        self.db.set_meta("published_version", str(store_version))
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
        programs = {
            "\x1f".join(key): {
                "calls": dict(sorted(ev.calls.items())),
                "observations": sorted(
                    (f, o.to_json(), n) for f, seen in ev.observations.items() for o, n in seen.items()
                ),
            }
            for key, ev in sorted(self.template_evidence.items())
        }
        return {
            "clusters": dict(sorted(clusters.items())),
            "aliases": aliases,
            "template_calls": programs,
            "index_points": self.index.count(),
        }

    def close(self) -> None:
        """Flush and close the store and the database."""
        self.index.flush()
        self.index.close()
        self.db.close()


def _skipped_offsets(
    items: Sequence[SourcedItem[object]], applied: Mapping[tuple[str, int], int]
) -> dict[tuple[str, int], int]:
    """Per partition, offsets above its applied watermark that the batch jumps over (between the
    watermark and the batch's first new offset, and between its new offsets).

    >>> from odia_stream.clustering.batching import SourcedItem
    >>> _skipped_offsets([SourcedItem("t", 0, o, None) for o in (3, 4, 7, 2)], {("t", 0): 1})
    {('t', 0): 2}
    """
    new: dict[tuple[str, int], set[int]] = defaultdict(set)
    for it in items:
        key = (it.topic, it.partition)
        if it.offset > applied.get(key, it.offset):
            new[key].add(it.offset)
    out = {}
    for key, offsets in new.items():
        span = max(offsets) - applied[key]
        if span > len(offsets):
            out[key] = span - len(offsets)
    return out


def _merge_audit(
    current: tuple[PartitionAudit, ...], admitted: _Admitted, applied: Mapping[tuple[str, int], int]
) -> tuple[PartitionAudit, ...]:
    """``current`` with a committed batch's counts added (new partitions start where it says)."""
    by_key = {(a.topic, a.partition): a for a in current}
    for key, counts in admitted.audit.items():
        old = by_key.get(key)
        first = old.first_offset if old is not None else admitted.audit_starts.get(key, 0)
        merged = Counter(old.counts if old is not None else {})
        merged.update(counts)
        by_key[key] = PartitionAudit(key[0], key[1], first, applied.get(key, -1), +merged)
    return tuple(by_key[k] for k in sorted(by_key))

