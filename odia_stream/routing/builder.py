"""Build a router snapshot from the learner's state (the live learner or a read-only view).

1. The cluster table: every cluster's representative, scope, routing label and support.
   Known queries: query groups answered consistently with one function, with a threshold on their
   share bound calibrated by leaving one record out (:func:`~odia_stream.routing.holdout.leave_one_record_out`).
2. Stage 1, calibrated on held-out groups (leave one group out, :mod:`~odia_stream.routing.holdout`):
   the lowest similarity at which simple-cluster matches reach the target precision (aiming at
   ``router.match_error_share`` of the allowed error rate: that estimate runs optimistic).
3. Templates: simple template clusters (two queries or more), calibrated the same way on the
   groups stage 1 leaves undecided.
4. Stage 2: the classifier learns every group's own function ("complex" for complex clusters;
   ``router.classifier_learns = all``, the default) or, with ``simple``, "function F" for groups of
   simple clusters whose own calls agree with it and "complex" for the others (undecided clusters:
   per ``router.undecided``); its out-of-sample scores on the groups both earlier stages leave
   undecided choose its threshold.
5. The template tier: templates' argument programs valid at the target precision
   (:func:`live_programs`); serving answers from them when the router routes small with their
   function.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Protocol, TypedDict, Unpack

import numpy as np
from tqdm import tqdm

from odia_stream.clustering.records import Cluster, QueryGroup
from odia_stream.clustering.state_db import LearnerStateDB
from odia_stream.embedding import Embedder
from odia_stream.keys import TemplatedQuery, TemplateKey
from odia_stream.labels import NO_CALL, WilsonLabeler
from odia_stream.routing.calibration import Threshold, choose_threshold
from odia_stream.routing.classifier import COMPLEX, TrainedClassifier
from odia_stream.routing.classifier_training import train_river, train_sklearn
from odia_stream.routing.error_budget import ErrorBudget
from odia_stream.routing.features import context_features, feature_matrix
from odia_stream.routing.holdout import (
    HeldOutMatch,
    held_out_template,
    known_queries,
    leave_one_out_matches,
    leave_one_out_templates,
    leave_one_record_out,
    pool_templates,
    routing_label,
    taught_values,
    template_keys,
)
from odia_stream.routing.safety import ToolCatalog
from odia_stream.routing.snapshot import (
    ClusterTable,
    ProgramEntry,
    QueryEntry,
    RouterSnapshot,
    SnapshotInfo,
    TemplateEntry,
    as_written,
    write_snapshot,
)
from odia_stream.settings import ClusteringSettings, OdiaSettings, RouterSettings
from odia_stream.stats import dominant
from odia_stream.store import EmbedderMismatchError, EmbedderSpec
from odia_stream.templates import EntityDictionary, QueryTemplater
from odia_stream.templates.programs import Program
from schemas import ChatMessage, ToolSpec

#: Template clusters need at least this many distinct queries.
MIN_TEMPLATE_QUERIES = 2


class LearnerState(Protocol):
    """What the builder reads: satisfied by ``OnlineClusterLearner`` and ``LearnerView``."""

    clusters: dict[int, Cluster]
    groups: dict[int, QueryGroup]
    settings: ClusteringSettings
    labeler: WilsonLabeler
    store_version: int
    db: LearnerStateDB

    @property
    def embedder_id(self) -> str:
        """Id of the embedder the state was built with."""
        ...

    def templater_of(self, app: str) -> QueryTemplater:
        """The templater over ``app``'s dictionary."""
        ...

    def dictionary_of(self, app: str) -> EntityDictionary:
        """The entity dictionary of ``app``."""
        ...

    def template_programs(self, *, target: float, z: float) -> dict[TemplateKey, Program]:
        """Every template's argument program, valid or not."""
        ...


def snapshot_root(settings: OdiaSettings) -> Path:
    """Where router snapshots live (``router.snapshot_dir``, default ``<state_dir>/routers``)."""
    return settings.router.snapshot_dir or settings.state_dir / "routers"


def budget_of(rs: RouterSettings) -> ErrorBudget:
    """An empty error budget with the configured target, z and prior cap."""
    return ErrorBudget(target=rs.error_budget_target, z=rs.error_budget_z, prior_cap=rs.error_budget_prior_cap)


def group_context(
    state: LearnerState, groups: list[QueryGroup]
) -> tuple[np.ndarray, ToolCatalog, list[frozenset[str]]]:
    """Context features of each group (from one of its kept examples), the tool catalog, and the
    argument values each group's calls could have taught the entity dictionary."""
    tools_cache: dict[str, list[ToolSpec]] = {}

    def tools_of(key: str) -> list[ToolSpec]:
        if key not in tools_cache:
            raw = state.db.tools_json(key)
            tools_cache[key] = [ToolSpec.model_validate(t) for t in json.loads(raw)] if raw else []
        return tools_cache[key]

    example_of: dict[int, tuple[str, str]] = {}
    offered: list[tuple[str, list[ToolSpec]]] = []
    arguments: dict[int, list[dict[str, object]]] = {}
    app_of = {g.group_id: g.app for g in groups}
    for ex in state.db.examples_of([g.group_id for g in groups]):
        example_of.setdefault(ex.group_id, (ex.history_json, ex.tools_key))
        offered.append((app_of[ex.group_id], tools_of(ex.tools_key)))
        call = json.loads(ex.call_json)
        if isinstance(call, dict) and isinstance(call.get("arguments"), dict):
            arguments.setdefault(ex.group_id, []).append(call["arguments"])
    rows = []
    for g in groups:
        history_json, tools_key = example_of.get(g.group_id, ("[]", ""))
        history = [ChatMessage.model_validate(m) for m in json.loads(history_json)]
        rows.append(context_features(g.query, history, len(tools_of(tools_key)) if tools_key else 0))
    contexts = np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
    taught = [taught_values(arguments.get(g.group_id, [])) for g in groups]
    return contexts, ToolCatalog.from_tools(offered), taught


def held_out_embeddings(
    state: LearnerState, groups: list[QueryGroup], taught: list[frozenset[str]], embedder: Embedder,
    batch_size: int = 256, progress: bool = False,
) -> tuple[np.ndarray, list[TemplateKey | None]]:
    """Each group's query vector as a new request would get it, and its held-out template key."""
    texts: list[str] = []
    keys: list[TemplateKey | None] = []
    for g, values in zip(groups, taught, strict=True):
        template = held_out_template(g.query, state.templater_of(g.app), state.dictionary_of(g.app), values)
        held = TemplatedQuery.of(g.app, g.scope, template)
        texts.append(held.text)
        keys.append(held.template_key)
    chunks = []
    for start in tqdm(range(0, len(texts), batch_size), desc="router: embedding held-out queries", unit="batch",
                      disable=not progress):
        chunks.append(embedder.embed(texts[start : start + batch_size]))
    vectors = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, embedder.dim), np.float32)
    return vectors, keys


def classifier_label(
    group: QueryGroup, cluster: Cluster, routable: Callable[[str | None], bool], undecided: str,
    learns: str = "all",
) -> str | None:
    """What stage 2 learns from a group (``learns``: ``router.classifier_learns``).

    ``simple``: its cluster's function when the cluster is simple (and routable) and the group's
    own calls agree, :data:`COMPLEX` for complex clusters and disagreeing groups, ``None`` (not
    learned) or ``COMPLEX`` for undecided clusters (``undecided``).
    ``all``: the group's own most called function when the small model may answer it, else
    :data:`COMPLEX` (no call, another function); groups of complex clusters learn ``COMPLEX``.
    """
    label = routing_label(cluster.label, cluster.dominant_function, routable)
    top = dominant(group.function_counts)
    if learns == "all":
        return top if label != "complex" and routable(top) else COMPLEX
    if label == "simple":
        return cluster.dominant_function if top == cluster.dominant_function else COMPLEX
    if label == "complex" or cluster.label == "simple":
        return COMPLEX
    return None if undecided == "skip" else COMPLEX


def _stage_arrays(
    matches: list[HeldOutMatch], groups: list[QueryGroup], eligible: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = np.array(
        [m.score if ok and m.kind == "simple" and m.allowed else -math.inf for m, ok in zip(matches, eligible, strict=True)]
    )
    correct = np.array([g.function_counts.get(m.function or "", 0) for m, g in zip(matches, groups, strict=True)], float)
    total = np.array([g.count for g in groups], dtype=float)
    return scores, correct, total


def _threshold_report(t: Threshold) -> dict[str, Any]:
    return {
        "value": t.value if t.enabled else None, "precision": None if math.isnan(t.precision) else t.precision,
        "lower_bound": t.lower_bound, "routed_records": t.routed, "coverage": t.coverage, "items": t.items,
        "effective_n": None if math.isnan(t.effective_n) else t.effective_n, "z": None if math.isnan(t.z) else t.z,
    }


class SnapshotOptions(TypedDict, total=False):
    """The keyword options of :func:`build_snapshot`, for the functions that pass them on to it."""

    adapter_version: str | None
    adapter_functions: Collection[str] | None
    model_functions: Collection[str] | None
    progress: bool


def build_snapshot(
    state: LearnerState,
    settings: OdiaSettings,
    embedder: Embedder,
    *,
    adapter_version: str | None = None,
    adapter_functions: Collection[str] | None = None,
    model_functions: Collection[str] | None = None,
    progress: bool = False,
) -> RouterSnapshot:
    """A calibrated router snapshot of ``state`` (not yet written; see :func:`publish_router`).

    ``embedder`` must be the one ``state`` was built with (held-out queries are embedded again).
    ``adapter_functions``: the functions the paired adapter was trained on; clusters, templates and
    classes of other functions never route small. ``model_functions``: the functions the paired
    adapter is trusted with (per-function accuracy); other functions routed small are answered by
    the template tier or go large. Raises ``ValueError`` for an empty state.
    """
    rs = settings.router
    started = time.perf_counter()
    if not state.clusters:
        raise ValueError("the learner state holds no clusters: nothing to route with")
    if embedder.model_id != state.embedder_id:
        raise EmbedderMismatchError(
            stored=EmbedderSpec(state.embedder_id, len(next(iter(state.clusters.values())).weighted_sum)),
            requested=EmbedderSpec(embedder.model_id, embedder.dim), where="learner state",
        )
    served = None if adapter_functions is None else frozenset(adapter_functions)

    def routable(fn: str | None) -> bool:
        return fn is not None and fn != NO_CALL and (served is None or fn in served)

    clusters = [state.clusters[cid] for cid in sorted(state.clusters)]
    table = ClusterTable(
        ids=np.array([c.cluster_id for c in clusters], dtype=np.int64),
        scopes=tuple(c.scope for c in clusters),
        apps=tuple(c.app for c in clusters),
        labels=tuple(routing_label(c.label, c.dominant_function, routable) for c in clusters),
        functions=tuple(c.dominant_function for c in clusters),
        dominant=np.array([c.function_counts.get(c.dominant_function or "", 0) for c in clusters], dtype=np.int64),
        sizes=np.array([c.size for c in clusters], dtype=np.int64),
        vectors=np.stack([c.representative() for c in clusters]).astype(np.float32),
    )
    groups = sorted((g for g in state.groups.values() if g.alias_of is None), key=lambda g: g.group_id)
    budget = budget_of(rs)
    target, z, floor = rs.target_precision, rs.calibration_z, float(rs.min_calibration_records)
    # Leave-one-group-out runs optimistic for stage 1 (the clusters formed around the held-out group):
    # its thresholds aim for a share of the error rate the target allows.
    aim = 1.0 - rs.match_error_share * (1.0 - target)

    # Stage 0: known queries, each record predicted from its query's other records.
    t_query = Threshold.disabled(len(groups), float(sum(g.count for g in groups)))
    queries_known: tuple[QueryEntry, ...] = ()
    if rs.query_match:
        s0, c0, n0 = leave_one_record_out(groups, routable, z)
        t_query = as_written(
            choose_threshold(s0, c0, n0, target=target, z=z, min_routed=floor, method=rs.calibration)
        )
        queries_known = known_queries(groups, routable, z, t_query.value, rs.max_known_queries)

    contexts, catalog, taught = group_context(state, groups)
    queries, held_keys = held_out_embeddings(state, groups, taught, embedder, progress=progress)

    # Stage 1: clusters.
    matches = leave_one_out_matches(groups, queries, state.clusters, table, state.labeler, routable, budget)
    everyone = np.ones(len(groups), dtype=bool)
    s1, c1, total = _stage_arrays(matches, groups, everyone)
    t_match = as_written(
        choose_threshold(s1, c1, total, target=aim, z=z, min_routed=floor, method=rs.calibration)
    )
    decided = np.array([m.kind in ("simple", "complex") and m.score >= t_match.value for m in matches])

    # Stage 1b: templates.
    keys = template_keys(groups, state.templater_of)
    pooled = pool_templates(groups, keys)
    held_t = leave_one_out_templates(
        groups, keys, held_keys, pooled, state.labeler, routable, budget, MIN_TEMPLATE_QUERIES
    )
    s2, c2, _ = _stage_arrays(held_t, groups, ~decided)
    t_template = as_written(
        choose_threshold(s2, c2, total, target=aim, z=z, min_routed=floor, method=rs.calibration)
    )
    decided |= np.array([m.kind == "simple" and m.score >= t_template.value for m in held_t]) & ~decided
    programs = live_programs(state, rs, routable)
    templates = []
    for (app, scope, text), (n, counts) in sorted(pooled.items()):
        d = state.labeler.label(counts)
        if n >= MIN_TEMPLATE_QUERIES and routing_label(d.label, d.dominant_function, routable) == "simple":
            templates.append(
                TemplateEntry(app, scope, text, str(d.dominant_function), round(d.share_lower_bound, 9), n,
                              d.support, counts[str(d.dominant_function)])
            )

    # Stage 2: the classifier, on the held-out query vectors (what serving will embed).
    labels = [classifier_label(g, state.clusters[g.cluster_id], routable, rs.undecided, rs.classifier_learns)
              for g in groups]
    trained: TrainedClassifier | None = None
    t_classifier = Threshold.disabled(len(groups), float(total.sum()))
    if any(y is not None for y in labels):
        x = feature_matrix(queries, contexts)
        weights = np.array([g.count for g in groups], dtype=float)
        if rs.classifier == "river":
            trained = train_river(x, labels, weights, embedding_dim=table.vectors.shape[1],
                                  learning_rate=rs.river_learning_rate, l2=rs.river_l2, progress=progress)
        else:
            trained = train_sklearn(x, labels, weights, c=rs.sklearn_c, folds=rs.cv_folds, seed=rs.seed, progress=progress)
        ok = [cls is not None and cls != COMPLEX and routable(cls) for cls in trained.oos_class]
        s3 = np.where(np.array(ok) & ~decided, trained.oos_score, -math.inf)
        c3 = np.array([g.function_counts.get(cls or "", 0) for g, cls in zip(groups, trained.oos_class, strict=True)], float)
        t_classifier = as_written(
            choose_threshold(s3, c3, total, target=target, z=z, min_routed=floor, method=rs.calibration)
        )

    apps = sorted({c.app for c in clusters})
    report = {
        "clusters": len(clusters),
        "simple_clusters": sum(1 for label in table.labels if label == "simple"),
        "query_groups": len(groups),
        "records": int(total.sum()),
        "templates": len(templates),
        "programs": len(programs),
        "known_queries": len(queries_known),
        "classifier_training_items": sum(1 for y in labels if y is not None),
        "classifier_seconds": trained.train_seconds if trained else None,
        "calibration": {
            "query": _threshold_report(t_query),
            "match": _threshold_report(t_match),
            "template": _threshold_report(t_template),
            "classifier": _threshold_report(t_classifier),
        },
        "build_seconds": time.perf_counter() - started,
    }
    return RouterSnapshot(
        embedder_id=state.embedder_id,
        dim=int(table.vectors.shape[1]),
        scope_mode=state.settings.scope,
        store_version=state.store_version,
        adapter_version=adapter_version,
        adapter_functions=tuple(sorted(served)) if served is not None else None,
        target_precision=target,
        clusters=table,
        templates=tuple(templates),
        catalog=catalog,
        classifier=trained.model if trained else None,
        classifier_kind=trained.kind if trained else None,
        thresholds={"query": t_query, "match": t_match, "template": t_template, "classifier": t_classifier},
        dictionaries={app: state.dictionary_of(app) for app in sorted({*apps, *(p.app for p in programs)})},
        programs=programs,
        queries=queries_known,
        model_functions=tuple(sorted(model_functions)) if model_functions is not None else None,
        report=report,
    )


def live_programs(
    state: LearnerState, rs: RouterSettings, routable: Callable[[str | None], bool]
) -> tuple[ProgramEntry, ...]:
    """The template tier's programs: valid at the router's target precision (z =
    ``calibration_z``), of a function the small path may answer and not in ``never_small``."""
    never = frozenset(rs.never_small)
    return tuple(
        ProgramEntry(app, scope, text, p.function, tuple(sorted(p.sources_text().items())), p.support, p.agreement,
                     round(p.lower_bound, 9), p.pooled, p.family_support, p.family_agreement)
        for (app, scope, text), p in sorted(state.template_programs(target=rs.target_precision, z=rs.calibration_z).items())
        if p.valid and routable(p.function) and p.function not in never
    )


def publish_router(
    state: LearnerState, settings: OdiaSettings, embedder: Embedder, **options: Unpack[SnapshotOptions]
) -> SnapshotInfo:
    """Build a snapshot of ``state`` (options as in :func:`build_snapshot`) and write it under
    :func:`snapshot_root`; returns where it is."""
    return write_snapshot(build_snapshot(state, settings, embedder, **options), snapshot_root(settings))


def router_builder(
    settings: OdiaSettings, embedder: Embedder
) -> Callable[[LearnerState, str | None, Collection[str] | None], str]:
    """``(learner state, adapter version, functions the adapter is trusted with) -> router version``:
    what the trainer pairs with a promoted adapter (adapter ``None``: a router served alone)."""

    def build(state: LearnerState, adapter_version: str | None, model_functions: Collection[str] | None) -> str:
        return publish_router(
            state, settings, embedder, adapter_version=adapter_version, model_functions=model_functions
        ).version

    return build
